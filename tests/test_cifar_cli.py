"""`clspec cifar pretrain` / `clspec cifar train`: the smoke preset end to end, and bad input.

Runs ``experiments.cli.main`` in-process (so the compiled steps are shared with
tests/test_cifar_train.py) on a small generated image folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from experiments.cifar import configs
from experiments.cli import main
from experiments.cifar.models import ARCHS

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
    code, out, err = run(["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--no-progress",
                          "--keep-epochs", "2,0"], capsys)
    assert code == 0, err
    pre = tmp_path / "results" / "cifar" / "pretrain-smoke"
    assert "kNN acc" in out
    for name in ("config.json", "env.json", "metrics.json", "metrics.jsonl", "checkpoint.msgpack"):
        assert (pre / name).exists(), name
    assert json.loads((pre / "metrics.json").read_text())["epochs_done"] == 2
    # --keep-epochs: the initialization and the last epoch kept; the last is the run's final checkpoint.
    assert sorted(p.name for p in pre.glob("epoch-*")) == ["epoch-000", "epoch-002"]
    assert (pre / "epoch-002" / "checkpoint.msgpack").read_bytes() == (pre / "checkpoint.msgpack").read_bytes()
    assert (pre / "epoch-000" / "checkpoint.msgpack").read_bytes() != (pre / "checkpoint.msgpack").read_bytes()

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
        (["--arch", "resnet50"], "argument --arch: invalid choice: 'resnet50'"),
        (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
        (["--eval-train-limit", "-1"], "argument --eval-train-limit: must be >= 1, got -1"),
        (["--seed", "99999999999999999999999"], "argument --seed: must be in [0, 4294967295]"),
        (["--seed", "-1"], "argument --seed: must be in [0, 4294967295], got -1"),
        (["--lr", "nan"], "argument --lr: must be a finite number"),
        (["--momentum", "1"], "argument --momentum: must be in [0.0, 1.0)"),
        (["--batch-size", "1"], "argument --batch-size: must be >= 2"),
        (["--init", "."], "is a folder without checkpoint.msgpack"),
        (["--noise", "human:aggre", "--human", "."], "--human . is a folder"),
        (["--noise", "asym:0.4"], "asym noise: the CIFAR-10 map needs classes airplane"),
        (["--noise", "sym:0.4", "--asym-map", "x.json"], "--asym-map is for asym:RATE noise"),
        (["--out", "/dev/null/run"], "--out /dev/null/run: /dev/null is not a folder"),
        (["--process-id", "2", "--num-processes", "2"], "--process-id must be in [0, --num-processes=2)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, words, folder, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", "random", "--no-progress"]
    code, out, err = run(argv + extra, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("clspec cifar train: error:") and words in lines[0], err
    assert [p for p in tmp_path.iterdir() if p.name != "cache"] == []  # nothing written: no config.json, env.json...


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--temperature", "inf"], "argument --temperature: must be a finite number, got 'inf'"),
        (["--temperature", "0"], "argument --temperature: must be > 0.0, got 0"),
        (["--knn-train", "-5"], "argument --knn-train: must be >= 1, got -5"),
        (["--knn-k", "100000"], "--knn-k must be <= --knn-train (256, the k-NN memory bank), got 100000"),
        (["--knn-k", "200", "--knn-train", "1000"], "--knn-k must be <= the k-NN memory bank (80 training images)"),
        (["--projection-dim", "0"], "argument --projection-dim: must be >= 1, got 0"),
        (["--keep-epochs", "0,x"], "argument --keep-epochs: expected an integer, got 'x'"),
        (["--keep-epochs", "1,1"], "argument --keep-epochs: expected distinct integers"),
        (["--keep-epochs", "0,3"], "--keep-epochs must lie in 0..2 (--epochs), got 3"),
        (["--seed", "-1"], "argument --seed: must be in [0, 4294967295], got -1"),
        (["--resume"], "--resume: no checkpoint at"),
        (["--out", "/dev/null/run"], "--out /dev/null/run: /dev/null is not a folder"),  # before loading data
    ],
)
def test_pretrain_refuses_impossible_values_before_writing(extra, words, folder, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--no-progress", "--out", "run"]
    code, out, err = run(argv + extra, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("clspec cifar pretrain: error:") and words in lines[0], err
    assert not (tmp_path / "run").exists()


def test_help_gives_every_default_and_choice(capsys):
    for job in ("pretrain", "train"):
        assert main(["cifar", job, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "Preset cost here" in text and "about 10 days" in text or job == "train"
        for option in ("--epochs", "--lr", "--weight-decay", "--seed", "--batch-size"):
            assert option in text
        assert "default per preset: smoke" in text
        assert "{" + ",".join(ARCHS) + "}" in text  # --arch lists its choices
        assert text.count("(default") >= 15


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


# ----------------------------------------------------------------------------- a checkpoint knows its data


def _other_folder(folder, tmp_path):
    """The same classes and layout as ``folder`` with other pixels: another dataset."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(folder, other)
    first = sorted((other / "train").rglob("*.png"))[0]
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(first)
    return other


def test_init_pretrained_on_other_data_is_refused_unless_allowed(tmp_path, folder, capsys):
    pre = tmp_path / "pre"
    code, _, err = run(["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--epochs", "1",
                        "--out", str(pre), "--no-progress"], capsys)
    assert code == 0, err
    config = json.loads((pre / "config.json").read_text())
    assert config["dataset"]["sha256"] and config["dataset"]["classes"] == CLASSES  # not "data": null
    assert config["dataset"]["train_images"] == 80
    assert "README.md" in {p.name for p in pre.iterdir()}
    other = _other_folder(folder, tmp_path)
    base = ["cifar", "train", "--preset", "smoke", "--data", str(other), "--init", str(pre), "--epochs", "1",
            "--noise", "sym:0.5", "--no-progress"]
    code, _, err = run(base + ["--out", str(tmp_path / "t1")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "was pre-trained on" in lines[0] and "sha256 differ" in lines[0] and "--allow-other-data" in lines[0]
    assert not (tmp_path / "t1").exists()
    code, _, err = run(base + ["--out", str(tmp_path / "t2"), "--allow-other-data"], capsys)
    assert code == 0, err
    # The same data under another path is the same data.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    code, _, err = run(base[:4] + ["--data", str(copy)] + base[6:] + ["--out", str(tmp_path / "t3")], capsys)
    assert code == 0, err


def test_a_checkpoint_from_before_the_record_loads_with_one_warning(tmp_path, folder, capsys):
    from flax import serialization

    from experiments.cifar import checkpoint as ckpt

    pre = tmp_path / "pre"
    assert run(["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--epochs", "1", "--out", str(pre),
                "--no-progress"], capsys)[0] == 0
    state, meta = ckpt.load_raw(pre)
    meta.pop("data"), meta.pop("changes")
    legacy = tmp_path / "legacy" / "checkpoint.msgpack"  # the layout today's code wrote: no checksum, no data
    legacy.parent.mkdir()
    legacy.write_bytes(serialization.msgpack_serialize({"state": state, "meta": json.dumps(meta)}))
    code, _, err = run(["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", str(legacy.parent),
                        "--epochs", "1", "--out", str(tmp_path / "t"), "--no-progress"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("predates" in w for w in warnings)  # checksum, data identity


@pytest.mark.skipif(not __import__("os").path.exists("/work/ckpt/pretrain-cpu/checkpoint.msgpack"),
                    reason="the shared cpu-preset checkpoint is not on this machine")
def test_the_shared_cpu_checkpoint_still_loads(capsys):
    from experiments.cifar import checkpoint as ckpt

    state, meta = ckpt.load_raw("/work/ckpt/pretrain-cpu/checkpoint.msgpack")
    assert meta["kind"] == "pretrain" and meta["arch"] == "resnet32" and "encoder" in state["params"]
    assert "predates the checksum" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resume with changed settings


def test_resume_refuses_changed_settings_and_records_new_epochs(tmp_path, folder, capsys):
    out = tmp_path / "run"
    assert run(["cifar", "pretrain", "--preset", "smoke", "--data", str(folder), "--epochs", "1", "--out", str(out),
                "--no-progress"], capsys)[0] == 0
    before = (out / "checkpoint.msgpack").read_bytes()
    code, _, err = run(["cifar", "pretrain", "--out", str(out), "--resume", "--epochs", "2", "--lr", "0.1",
                        "--no-progress"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and "lr 0.0003 -> 0.1" in lines[-1] and "would change the result" in lines[-1], err
    assert (out / "checkpoint.msgpack").read_bytes() == before
    # Without --preset or --data: the run's own settings; the new --epochs is recorded.
    code, _, err = run(["cifar", "pretrain", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"], capsys)
    assert code == 0, err
    assert "s per step (measured over steps 2-" in err and "for the 1 epochs left" in err  # the time estimate
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 2 and config["preset"] == "smoke"
    assert config["changes"] == [{"after_epoch": 1, "setting": "epochs", "from": 1, "to": 2}]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_the_noise_spec_is_parsed_once_into_its_canonical_spelling(folder, capsys, tmp_path, monkeypatch):
    """SYM:.8 and sym:0.8 are one setting: the option's value, the config and the run folder are the same;
    a bad spec is argparse's one-line error naming --noise."""
    from experiments.cli import build_parser

    parse = lambda spec: build_parser().parse_args(["cifar", "train", "--noise", spec]).noise  # noqa: E731
    assert parse("SYM:.8") == parse("sym:0.8") == "sym:0.8" and parse(" Asym:0.40 ") == "asym:0.4"
    assert configs.train_dir(configs.TrainConfig(noise="SYM:.8")) == configs.train_dir(configs.TrainConfig(noise="sym:0.8"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["cifar", "train", "--preset", "smoke", "--data", str(folder), "--noise", "sym:1.5"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "clspec cifar train: error: argument --noise: noise rate must be in [0, 1], got 1.5 in noise spec 'sym:1.5'"]


def test_an_error_raised_mid_run_exits_1_with_its_message(folder, capsys, tmp_path, monkeypatch):
    """Once the run has started (inputs checked, run folder written), a ValueError is the run's failure: exit 1,
    one line; the same error before the start would be bad input (exit 2, test_bad_input_is_one_line_and_exit_2)."""
    from experiments.cifar import train as loops

    def broken(*a, **kw):
        raise ValueError("evaluation failed at epoch 1")

    monkeypatch.setattr(loops, "label_metrics", broken)
    monkeypatch.chdir(tmp_path)
    argv = ["cifar", "train", "--preset", "smoke", "--data", str(folder), "--init", "random", "--no-progress",
            "--out", "run"]
    code, _, err = run(argv, capsys)
    assert code == 1
    assert err.strip().splitlines()[-1] == "clspec cifar train: error: evaluation failed at epoch 1"
    assert (tmp_path / "run" / "config.json").exists()  # the run had started
