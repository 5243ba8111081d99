"""`clspec verify` end to end at the smoke preset, its bad-input handling, and the ledger's claim IDs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import mutations
import pytest

from experiments.ledger import checks
from experiments.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One whole `clspec verify --preset smoke`, its check modules' rows and data taken from the session's
    saved smoke runs (computed once, shared with the check and mutation tests): this tests the job around
    the checks (outputs, figures, ledger), which the tests of each check module do not."""
    out = tmp_path_factory.mktemp("verify")
    saved = {m.__name__: mutations.saved_run(m.__name__, "smoke", 0) for m in checks.load()}
    with pytest.MonkeyPatch.context() as mp:
        for module in checks.load():
            mp.setattr(module, "run", lambda preset, seed=0, progress=None, name=module.__name__: saved[name])
        code = main(["verify", "--preset", "smoke", "--out", str(out / "run"), "--figures", str(out / "fig"),
                     "--ledger", str(out / "paper_checks.md"), "--no-progress", "--jobs", "1"])
    return code, out


def test_smoke_run_writes_every_output(smoke_run):
    code, out = smoke_run
    assert code == 0
    for name in ("config.json", "env.json", "metrics.json"):
        assert (out / "run" / name).exists()
    env = json.loads((out / "run" / "env.json").read_text())
    assert env["x64"] is True
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert metrics["meta"]["summary"]["ERROR"] == 0
    pngs = sorted((out / "fig").glob("*.png"))
    assert len(pngs) >= 3
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_smoke_run_evaluates_every_claim_with_finite_numbers(smoke_run):
    _, out = smoke_run
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    rows = [r for sec in metrics["sections"] for r in sec["rows"]]
    evaluated = {r["claim"] for r in rows}
    assert evaluated == {c.id for c in checks.all_claims()}
    for r in rows:
        # an evidence row whose runs are not there yet is INFO "skipped: ..." with no number
        skipped = r["verdict"] == "INFO" and r["note"].startswith("skipped")
        assert isinstance(r["measured"], float) or (skipped and r["measured"] == "nan"), r
    ledger = (out / "paper_checks.md").read_text()
    for c in checks.all_claims():
        assert f"| {c.id} |" in ledger


def test_claim_ids_are_unique():
    ids = [c.id for c in checks.all_claims()]
    assert len(ids) == len(set(ids))


def test_every_claim_in_the_committed_ledger_is_evaluated_by_code():
    ledger = (ROOT / "paper_checks.md").read_text()
    in_ledger = set(re.findall(r"^\| (C\d+) \|", ledger, flags=re.M))
    in_code = {c.id for c in checks.all_claims()}
    assert in_ledger, "paper_checks.md lists no claims: run `clspec verify`"
    assert in_ledger <= in_code, f"claims in the ledger that no check evaluates: {sorted(in_ledger - in_code)}"
    assert in_code <= in_ledger, f"claims evaluated by code but missing from the ledger: {sorted(in_code - in_ledger)}"


@pytest.mark.parametrize("argv, fragment", [
    (["verify", "--preset", "huge"], "--preset must be one of smoke, cpu, large, got 'huge'"),
    (["verify", "--seed", "-1"], "argument --seed: must be in [0, 4294967295], got -1"),
    (["verify", "--seed", "99999999999999999999999"], "argument --seed: must be in [0, 4294967295]"),
    (["verify", "--only", "nope"], "--only must name check modules"),
    (["verify", "--replot", "/nonexistent/run"], "no metrics.json in /nonexistent/run"),
    (["verify", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_arguments_exit_2_with_one_line(argv, fragment):
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_explains_the_job():
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "verify", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for phrase in ("--preset", "--out", "paper_checks.md", "Exit status: 0 when every check ran"):
        assert phrase in text


def test_unwritable_output_folder_is_a_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "verify", "--preset", "smoke", "--out", "/dev/null/x"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "/dev/null/x" in proc.stderr


# ----------------------------------------------------------------------------- the ledger is never clobbered


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A stand-in project root holding the committed ledger (a full cpu run) and a figure."""
    from experiments.ledger import verify

    root = tmp_path / "project"
    (root / "figures").mkdir(parents=True)
    (root / "paper_checks.md").write_bytes((ROOT / "paper_checks.md").read_bytes())
    (root / "figures" / "thm43_spectrum.png").write_bytes(b"\x89PNG\r\n\x1a\n committed figure")
    monkeypatch.setattr(verify, "_project_root", lambda: root)
    monkeypatch.chdir(tmp_path)
    return root


def _snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_partial_smoke_run_leaves_the_committed_ledger_and_figures_alone(project, tmp_path, capsys):
    before = _snapshot(project)
    code = main(["verify", "--preset", "smoke", "--only", "tables", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    assert _snapshot(project) == before
    own = tmp_path / "run" / "paper_checks.md"
    assert own.exists() and "| C" in own.read_text()
    assert str(own) in err and "left as it is" in err  # says where it wrote
    assert (tmp_path / "run" / "README.md").exists()


@pytest.mark.parametrize("argv", [
    ["--preset", "cpu", "--only", "tables"],  # the ledger's preset, but partial
    ["--preset", "smoke", "--only", "tables"],
])
def test_naming_the_committed_ledger_or_figures_for_another_run_is_refused(project, tmp_path, capsys, argv):
    before = _snapshot(project)
    for target in (["--ledger", str(project / "paper_checks.md")], ["--figures", str(project / "figures")]):
        code = main(["verify", *argv, *target, "--out", str(tmp_path / "run"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "full cpu-preset ledger" in err[0], err
    assert _snapshot(project) == before
    assert not (tmp_path / "run").exists()  # refused before any work


def test_only_a_full_run_of_the_ledgers_preset_rewrites_it(project, tmp_path, monkeypatch):
    """A ledger that records a full smoke run: a full smoke run (all of checks.MODULES) replaces it."""
    from experiments.ledger import checks

    monkeypatch.setattr(checks, "MODULES", ("experiments.ledger.checks.tables",))  # "full" = every module listed
    (project / "paper_checks.md").write_text("<!-- clspec-ledger preset=smoke seed=0 modules=all -->\nold\n")
    assert main(["verify", "--preset", "smoke", "--seed", "1", "--out", str(tmp_path / "s1"), "--no-progress"]) == 0
    assert (project / "paper_checks.md").read_text().endswith("old\n")  # another seed: its own folder
    assert main(["verify", "--preset", "smoke", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    text = (project / "paper_checks.md").read_text()
    assert text.startswith("<!-- clspec-ledger preset=smoke seed=0 modules=all -->") and "| C" in text
    assert not (tmp_path / "run" / "paper_checks.md").exists()


def test_replot_of_a_metrics_file_without_a_key_is_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"meta": {"preset": "smoke"}, "sections": []}))
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "verify", "--replot", str(run)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lacks seed" in lines[0] and "Traceback" not in proc.stderr


def test_a_directory_as_ledger_is_refused_before_any_check_runs(tmp_path, capsys, monkeypatch):
    from experiments.ledger import checks

    def boom(*a, **k):
        raise AssertionError("a check ran")

    monkeypatch.setattr(checks, "load", lambda: [type("M", (), {"__name__": "experiments.ledger.checks.tables", "run": boom,
                                                                  "CLAIMS": ()})])
    code = main(["verify", "--preset", "smoke", "--ledger", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "is a folder" in err and str(tmp_path) in err
