"""The committed evidence files that `clspec verify` reads are declared as package data, so a
non-editable install (a wheel) carries them too."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parent.parent


def test_every_evidence_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["experiments"]
    files = sorted(p.relative_to(ROOT / "experiments").as_posix() for p in (ROOT / "experiments" / "ledger" / "evidence").iterdir()
                   if p.is_file())
    assert files, "no evidence files found"
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"evidence files not declared as package data in pyproject.toml: {missing}"


def test_the_command_exits_with_mains_status_and_all_its_output():
    # console() leaves by os._exit (no interpreter teardown): the status and the flushed output must survive it
    import subprocess
    import sys

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["scripts"]["clspec"] == "experiments.cli:console"
    ok = subprocess.run([sys.executable, "-m", "experiments.cli", "verify", "--help"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "--profile" in ok.stdout and ok.stdout.endswith("\n")
    bad = subprocess.run([sys.executable, "-m", "experiments.cli", "verify", "--preset", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "clspec verify: error: --preset must be one of smoke, cpu, large, got 'nope'"]
