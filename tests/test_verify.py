"""`clspec verify` end to end at the smoke preset, its bad-input handling, and the ledger's claim IDs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import checks
from experiments.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    code = main(["verify", "--preset", "smoke", "--out", str(out / "run"), "--figures", str(out / "fig"),
                 "--ledger", str(out / "paper_checks.md"), "--no-progress"])
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
        assert isinstance(r["measured"], float), r
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
    (["verify", "--seed", "-1"], "--seed must be >= 0, got -1"),
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
