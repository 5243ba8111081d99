"""`clspec cifar pretrain` / `clspec cifar train`: the smoke preset end to end, and bad input.

Runs ``experiments.cli.main`` in-process (so the compiled steps are shared with
tests/test_cifar_train.py) on a small generated image folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from experiments.cli import main

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``<root>/<split>/<class>/<index>.png``: 8 training and 4 test images per class."""
    root = tmp_path_factory.mktemp("images") / "gen"
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 216, size=(10, 3))
    index = {"train": 0, "test": 0}
    for split, per_class in (("train", 8), ("test", 4)):
        for c, name in enumerate(CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            for _ in range(per_class):
                img = np.clip(palette[c] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{index[split]:05d}.png")
                index[split] += 1
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_smoke_pretrain_then_train_end_to_end(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run folders are under ./results
    code, out, err = run(["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--no-progress"], capsys)
    assert code == 0, err
    pre = tmp_path / "results" / "cifar" / "pretrain-smoke"
    assert "kNN acc" in out
    for name in ("config.json", "env.json", "metrics.json", "metrics.jsonl", "checkpoint.msgpack"):
        assert (pre / name).exists(), name
    assert json.loads((pre / "metrics.json").read_text())["epochs_done"] == 2

    # `train` finds the preset's pretrain checkpoint by default.
    code, out, err = run(
        ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--noise", "sym:0.8", "--no-progress"], capsys
    )
    assert code == 0, err
    runs = list((tmp_path / "results" / "cifar").glob("train-smoke-finetune-pretrained-sym0.8-seed0"))
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["init"].endswith("checkpoint.msgpack") and metrics["mode"] == "finetune"
    assert metrics["noise_rate"] == pytest.approx(0.8, abs=1 / 80)
    assert {"best", "last"} <= set(metrics) and metrics["last"]["epoch"] == 2
    assert len((runs[0] / "metrics.jsonl").read_text().splitlines()) == 2
    assert (runs[0] / "noisy_labels.npz").exists()
    assert "best test acc" in out and "train acc clean" in out

    # The same command again would overwrite the run: refused, pointing at --resume.
    code, _, err = run(
        ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--noise", "sym:0.8", "--no-progress"], capsys
    )
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    # --resume of a finished run just rewrites its summary.
    code, out, err = run(
        ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--noise", "sym:0.8", "--no-progress",
         "--resume"], capsys
    )
    assert code == 0, err
    assert json.loads((runs[0] / "metrics.json").read_text())["last"] == metrics["last"]


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--noise", "sym:1.5"], "[0, 1]"),
        (["--noise", "sym:-0.1"], "[0, 1]"),
        (["--noise", "gauss:0.2"], "unknown noise kind"),
        (["--data", "/nonexistent/cifar.tar.gz"], "does not exist"),
        (["--init", "/nonexistent/checkpoint.msgpack"], "does not exist"),
        (["--mode", "probe", "--resume", "--out", "/nonexistent/run"], "no checkpoint"),
        (["--arch", "resnet50"], "arch must be one of"),
        (["--epochs", "0"], "epochs must be >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, words, folder, capsys):
    argv = ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", "random", "--no-progress"]
    code, out, err = run(argv + extra, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clspec cifar: error:") and words in lines[0], err


def test_checkpoint_of_another_architecture_exits_2(tmp_path, folder, capsys):
    from experiments.cifar import checkpoint as ckpt

    path = ckpt.save(tmp_path / "c.msgpack", {"params": {}}, {"kind": "pretrain", "arch": "resnet18", "epoch": 1})
    code, _, err = run(
        ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", str(path), "--no-progress"], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'resnet18'" in err and "'tiny'" in err


def test_pretrain_bad_data_path_exits_2(capsys):
    code, _, err = run(["cifar", "pretrain", "--preset", "smoke", "--data", "/nonexistent/x"], capsys)
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


def _epochs(path):
    """metrics.jsonl without the wall-clock fields, which differ between runs by nature."""
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "time" not in k and not k.endswith("_s") and k != "images_per_s"}
            for r in rows]


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, folder):
    """A real kill -9 of `clspec cifar pretrain` after its first checkpoint, then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "CLSPEC_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "experiments.cli", "cifar", "pretrain", "--preset", "smoke", "--data", str(folder),
            "--epochs", "4", "--no-progress"]
    full = subprocess.run(base + ["--out", str(tmp_path / "full")], env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(base + ["--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        jsonl = killed / "metrics.jsonl"
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 1 and (killed / "checkpoint.msgpack").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_epochs(killed)) < 4
    resumed = subprocess.run(base + ["--out", str(killed), "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _epochs(killed) == _epochs(tmp_path / "full")
