"""Fault injection: a full disk during `clspec verify` and during a checkpoint write, a corrupted
checkpoint, kill -9 in the middle of a checkpoint write.

After each fault every file a good run wrote before is byte-identical, no temporary file is
left, and the run either resumes (to the numbers of an uninterrupted run) or fails with one
line naming the path. The full disk is a patched writer (``experiments.common.runs._write``, the one
function every clspec file write goes through) raising ``ENOSPC`` at the k-th write, for every
k a run has.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.common import runs
from experiments.cli import main

ROOT = Path(__file__).resolve().parent.parent


def snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` with its bytes (temporary files included, so leftovers show)."""
    return {p: p.read_bytes() for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()}


class DiskFull:
    """``runs._write`` that raises ENOSPC at the ``fail_at``-th call (0-based); counts the calls."""

    def __init__(self, fail_at: int | None = None, when=lambda path: True):
        self.fail_at, self.when, self.calls, self.real = fail_at, when, 0, runs._write

    def __call__(self, f, data, path):
        if self.when(path):
            if self.calls == self.fail_at:
                self.calls += 1
                f.write(data[: len(data) // 2])  # part of it made it to disk
                raise OSError(errno.ENOSPC, "No space left on device")
            self.calls += 1
        return self.real(f, data, path)


# ----------------------------------------------------------------------------- verify


@pytest.fixture
def fake_project(tmp_path, monkeypatch):
    """A project root whose ledger records a full smoke run of one quick check module with two figures."""
    from experiments.ledger import checks, verify
    from experiments.common import plotting
    from experiments.ledger.claims import LE, Claim, row

    claim = Claim("C900", "test", "a quick claim with two figures")

    def run(preset, *, seed=0, progress=None):
        return [row(claim, 0.5 + seed, 1.0, LE)], {"x": [1.0, 2.0, 3.0]}

    def plot(data, outdir):
        plt = plotting.pyplot()
        paths = []
        for name in ("fake_a", "fake_b"):
            fig, ax = plt.subplots()
            ax.plot(data["x"])
            paths.append(plotting.save(fig, Path(outdir) / f"{name}.png"))
        return paths

    module = types.ModuleType("tests_fake_check", "A quick check module.")
    module.CLAIMS, module.run, module.plot = (claim,), run, plot
    monkeypatch.setitem(sys.modules, "tests_fake_check", module)
    monkeypatch.setattr(checks, "MODULES", ("tests_fake_check",))
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(verify, "_project_root", lambda: root)
    monkeypatch.chdir(tmp_path)
    (root / "paper_checks.md").write_text("<!-- clspec-ledger preset=smoke seed=0 modules=all -->\n")
    return root


def test_disk_full_at_any_write_of_verify_keeps_every_earlier_file(fake_project, tmp_path, monkeypatch, capsys):
    out = tmp_path / "results" / "verify-smoke"
    argv = ["verify", "--preset", "smoke", "--no-progress"]
    counter = DiskFull()
    monkeypatch.setattr(runs, "_write", counter)
    assert main(argv) == 0  # a good run: figures, ledger, config/env/metrics/README
    assert (fake_project / "figures" / "fake_a.png").exists() and (out / "metrics.json").exists()
    writes = counter.calls
    assert writes == 7
    good = snapshot(fake_project, out)
    capsys.readouterr()
    for k in range(writes):
        monkeypatch.setattr(runs, "_write", DiskFull(fail_at=k))
        code = main(argv + ["--seed", "0"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1, (k, err)
        assert "No space left on device" in err[-1] and "cannot write " in err[-1], err
        named = Path(err[-1].split("cannot write ")[1].split(": No space")[0])
        assert named.name in {"fake_a.png", "fake_b.png", "config.json", "env.json", "metrics.json", "README.md",
                              "paper_checks.md"}, err
        assert len([line for line in err if "error" in line]) == 1
        assert snapshot(fake_project, out) == good, f"write {k} failed and changed an earlier file"


def test_an_unwritable_ledger_folder_fails_before_the_checks_run(fake_project, tmp_path, capsys):
    (fake_project / "paper_checks.md").unlink()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code = main(["verify", "--preset", "smoke", "--ledger", str(locked / "l.md"), "--out", str(tmp_path / "o")])
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "[tests_fake_check] running" not in err


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults") / "gen"
    rng = np.random.default_rng(1)
    for split, per_class in (("train", 8), ("test", 4)):
        for c in range(10):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{c}_{i}.png")
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))


def _pretrain(folder, out, *extra):
    return ["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--out", str(out), "--no-progress", *extra]


def epochs(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    assert main(_pretrain(folder, out, "--epochs", "3")) == 0
    return epochs(out)


def test_disk_full_during_a_checkpoint_write_keeps_the_last_one_and_resumes(folder, tmp_path, monkeypatch, capsys,
                                                                             uninterrupted):
    out = tmp_path / "run"
    is_ckpt = lambda path: path.name == "checkpoint.msgpack"  # noqa: E731
    seen = {}

    class FullAtSecond(DiskFull):
        def __call__(self, f, data, path):
            if is_ckpt(path) and self.calls == 1:
                seen.update({p: b for p, b in snapshot(out).items() if not p.name.startswith(".")})
            return super().__call__(f, data, path)

    monkeypatch.setattr(runs, "_write", FullAtSecond(fail_at=1, when=is_ckpt))
    code = main(_pretrain(folder, out, "--epochs", "3"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("clspec cifar pretrain: error:") and str(out / "checkpoint.msgpack") in err[-1]
    assert "No space left on device" in err[-1]
    assert snapshot(out) == seen  # the epoch-1 checkpoint and metrics, byte for byte; no temporary file
    monkeypatch.undo()
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))
    assert main(_pretrain(folder, out, "--resume")) == 0
    assert epochs(out) == uninterrupted


def test_a_corrupted_checkpoint_is_refused_naming_it_and_the_previous_one_is_kept(folder, tmp_path, capsys,
                                                                                   uninterrupted):
    out = tmp_path / "run"
    assert main(_pretrain(folder, out, "--epochs", "2")) == 0
    path, prev = out / "checkpoint.msgpack", out / "checkpoint.prev.msgpack"
    blob = bytearray(path.read_bytes())
    middle = len(blob) // 2
    blob[middle : middle + 4] = b"\0\0\0\0"  # four zero bytes in the middle of the file
    if blob == bytearray(path.read_bytes()):
        blob[middle : middle + 4] = b"\1\1\1\1"
    path.write_bytes(bytes(blob))
    before = snapshot(out)
    capsys.readouterr()
    code = main(_pretrain(folder, out, "--resume", "--epochs", "3"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(path) in err[0] and "checksum" in err[0] and f"previous checkpoint {prev} (after epoch 1)" in err[0]
    assert snapshot(out) == before
    path.write_bytes(prev.read_bytes())  # what the message says to do
    assert main(_pretrain(folder, out, "--resume", "--epochs", "3")) == 0
    assert epochs(out) == uninterrupted


_SLOW_WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from experiments.common import runs
from experiments.cli import main
real, count = runs._write, [0]
def slow(f, data, path):
    if path.name == "checkpoint.msgpack":
        count[0] += 1
        if count[0] == 2:  # the second checkpoint: half of it, then wait to be killed
            f.write(data[: len(data) // 2]); f.flush()
            Path(sys.argv[2]).write_text("writing")
            time.sleep(600)
    return real(f, data, path)
runs._write = slow
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_kill_9_during_a_checkpoint_write_keeps_the_last_one_and_resumes(folder, tmp_path):
    """In subprocesses (float32, as users run it), so compared with an uninterrupted subprocess run."""
    out, flag = tmp_path / "run", tmp_path / "writing"
    env = {**os.environ, "CLSPEC_CACHE": str(tmp_path / "cache")}
    argv = _pretrain(folder, out, "--epochs", "3")
    cli = [sys.executable, "-m", "experiments.cli"]
    full = subprocess.run(cli + _pretrain(folder, tmp_path / "full", "--epochs", "3"), env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(ROOT), str(flag), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not flag.exists():
        time.sleep(0.05)
    assert flag.exists(), proc.stderr.read().decode() if proc.poll() is not None else "timed out"
    good = {p: b for p, b in snapshot(out).items() if not p.name.startswith(".")}  # the epoch-1 files
    assert any(p.name.startswith(".checkpoint.msgpack.") for p in snapshot(out))  # caught mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = snapshot(out)
    assert {p: b for p, b in after.items() if not p.name.startswith(".")} == good
    resumed = subprocess.run(cli + _pretrain(folder, out, "--resume"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert epochs(out) == epochs(tmp_path / "full")
    assert not [p for p in snapshot(out) if p.name.startswith(".")]  # the killed write's temporary file is gone
