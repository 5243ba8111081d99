"""Test helper: run a `clspec` job in a subprocess and SIGKILL it after its first checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def clspec(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cli", *argv], env={**os.environ, **env},
                          capture_output=True, text=True)


def kill_after_first_checkpoint(argv: list[str], run_dir: Path, env: dict, timeout_s: float = 300) -> None:
    """Start ``clspec ARGV``, wait until ``run_dir`` has a checkpoint and a metrics row, kill -9 it."""
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", *argv], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout_s
    jsonl, checkpoint = run_dir / "metrics.jsonl", run_dir / "checkpoint.msgpack"
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.exists() and jsonl.exists() and jsonl.read_text().strip():
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        raise AssertionError("the run finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
