"""`clspec trend` (experiments/analysis/trend.py): one real checkpoint end to end on a generated image folder with
the `tiny` network; resuming (a measured checkpoint is never measured again), refusals and bad input (one line,
exit 2) with the per-checkpoint process replaced by a stand-in."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import pytest

from experiments.analysis import trend
# the generated image folder (10 classes, 8 training and 4 test images each), the cache isolation and the
# in-process runner of the `clspec cifar` tests
from test_cifar_cli import _cache, folder, run  # noqa: F401

SMALL = ["--knn-bank", "80", "--limit", "80", "--test-limit", "40", "--jacobian-n", "20", "--no-progress"]


def _keep(run_dir, epoch, seed):
    """A kept `pretrain` checkpoint of the tiny network, as `clspec cifar pretrain --keep-epochs` writes it."""
    from experiments.cifar import checkpoint as ckpt
    from experiments.cifar.loop import keep_path
    from experiments.cifar.train_steps import simclr_model

    v = simclr_model("tiny", 64).init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False)
    state = {"step": 0, "params": v["params"], "batch_stats": v["batch_stats"], "opt_state": {}}
    return ckpt.save(keep_path(run_dir, epoch), state, {"kind": "pretrain", "arch": "tiny", "epoch": epoch, "seed": 0,
                                                         "history": [], "projection_dim": 64})


@pytest.fixture
def run_dir(tmp_path, folder):
    d = tmp_path / "pre"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"arch": "tiny", "data": str(folder), "epochs": 4}))
    (d / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "knn_acc": 0.25}) + "\n{\"epoch\": 2, \"kn")  # a line being written
    _keep(d, 0, 3)
    return d


@pytest.mark.slow  # ~80 s on the shared 2-core machine (one spawned process: k-NN, spectrum, Jacobian of the tiny net)
def test_one_checkpoint_end_to_end_then_nothing_is_recomputed(run_dir, tmp_path, capsys, monkeypatch):
    out, ev = tmp_path / "out", tmp_path / "ev.json"
    code, stdout, err = run(["trend", str(run_dir), "--out", str(out), "--evidence", str(ev), *SMALL], capsys)
    assert code == 0, err
    result = json.loads(ev.read_text())
    assert result == json.loads((out / "trend.json").read_text())
    assert result["command"].startswith("clspec trend") and result["commit"] and result["machine"]["cpus"]
    (rec,) = result["checkpoints"]
    assert rec["epoch"] == 0 and rec["sha256"] == trend.sha256(run_dir / "epoch-000" / "checkpoint.msgpack")
    assert rec["knn_bank"] == 80 and rec["knn_test"] == 40 and rec["monitor_knn_acc"] is None
    assert rec["jacobian_n"] == 20 and rec["pi_sum_sq"] == pytest.approx(20.0, rel=1e-9)
    assert rec["gap_ratio"] == pytest.approx(1.0 / rec["gap_K"]) and 0.0 <= rec["train_recovery"] <= 1.0
    spec = json.loads((out / "epoch-000" / "spectrum" / "spectrum.json").read_text())
    assert spec["command"] == rec["commands"]["spectrum"]
    assert spec["command"].startswith("clspec spectrum --checkpoint") and "--noise sym:0.8" in spec["command"]
    assert spec["representations"]["checkpoint-pretrain-tiny/encoder"]["alignment_K"] == rec["alignment_K"]
    # the k-NN is the sizing evaluation of the same checkpoint
    from experiments.cifar import sizing
    from experiments.cifar.data import load_dataset

    bank = load_dataset(result["settings"]["data"], "train", limit=80, seed=0, progress=False)
    test = load_dataset(result["settings"]["data"], "test", seed=0, progress=False)
    again = sizing.knn_of_checkpoint(run_dir / "epoch-000" / "checkpoint.msgpack", bank, test, arch="tiny")
    assert rec["knn_acc"] == pytest.approx(again["knn_acc"], abs=1e-12)
    assert "C110" in stdout and "too few checkpoints" in stdout

    def no_child(fn, task):
        raise AssertionError(f"epoch {task['epoch']} measured again")

    monkeypatch.setattr(trend, "_in_child", no_child)
    code, stdout, err = run(["trend", str(run_dir), "--out", str(out), "--evidence", str(ev), *SMALL], capsys)
    assert code == 0, err
    assert "measured before" in err and json.loads(ev.read_text())["checkpoints"] == [rec]


# ----------------------------------------------------------------------------- with a stand-in for the child process


def _fake_child(calls):
    def child(fn, task):
        assert fn is trend.measure_checkpoint
        calls.append(task["epoch"])
        e = task["epoch"]
        spec = {"num_classes": 10, "timing": {"total_s": 1.0}, "representations": {"checkpoint-pretrain-tiny/encoder": {
            "alignment_K": 0.1 + 0.01 * e, "prominent": 1 + e, "prominent_centred": 1, "gap_K": 2.0 + e,
            "rankme": 5.0, "rankme_pca": 4.0, "effective_rank": 3.0, "split_noise": {"information_fraction": 0.1},
            "head": {"train_recovery": 0.2 + 0.01 * e, "alpha_realized": 0.8, "threshold": 0.86, "c_max": 0.1,
                     "test_acc": 0.2}}}}
        jac = {"results": {"pretrain checkpoint": {"pi_I": 3.0 + 0.1 * e, "pi_N": 3.0, "pi_sum_sq": 18.0, "ratio": 1.0,
                                                   "n": 20, "sigma": [5.0], "seconds": 1.0}}}
        knn = {"knn_acc": 0.2 + 0.02 * e, "knn_se": 0.01, "bank": 80, "test": 40, "eval_s": 0.5}
        return trend.record(task, knn, spec, jac)
    return child


def test_resuming_measures_only_the_new_checkpoints(run_dir, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(trend, "_in_child", _fake_child(calls))
    _keep(run_dir, 1, 4)
    out, ev = tmp_path / "out", tmp_path / "ev.json"
    argv = ["trend", str(run_dir), "--out", str(out), "--evidence", str(ev), *SMALL]
    assert run(argv, capsys)[0] == 0 and calls == [0, 1]
    first = json.loads(ev.read_text())["checkpoints"]
    assert [r["monitor_knn_acc"] for r in first] == [None, 0.25]
    for e, seed in ((2, 5), (4, 6)):
        _keep(run_dir, e, seed)
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    assert calls == [0, 1, 2, 4]
    result = json.loads(ev.read_text())
    assert [r["epoch"] for r in result["checkpoints"]] == [0, 1, 2, 4] and result["checkpoints"][:2] == first
    assert "C110" in stdout and "PASS" in stdout  # four checkpoints, every quantity rising: rho = 1, p = 1/24
    # --epochs measures a subset; a kept epoch that is not there is refused
    assert run(argv + ["--epochs", "0,4"], capsys)[0] == 0 and calls == [0, 1, 2, 4]
    code, _, err = run(argv + ["--epochs", "0,3"], capsys)
    assert code == 2 and "epoch-003" in err and len(err.strip().splitlines()) == 1


def test_another_checkpoint_or_configuration_in_the_same_out_is_refused(run_dir, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(trend, "_in_child", _fake_child(calls))
    out = tmp_path / "out"
    argv = ["trend", str(run_dir), "--out", str(out), *SMALL]
    assert run(argv, capsys)[0] == 0
    (run_dir / "epoch-000" / "checkpoint.msgpack").unlink()
    _keep(run_dir, 0, 9)  # another initialization at the same epoch
    code, _, err = run(argv, capsys)
    assert code == 2 and "sha256 differs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["trend", str(run_dir), "--out", str(out), "--knn-bank", "80", "--limit", "80",
                        "--test-limit", "40", "--jacobian-n", "30"], capsys)
    assert code == 2 and "another configuration" in err and calls == [0]


@pytest.mark.parametrize("case,words", [
    ("no-run", "does not exist"), ("no-config", "no config.json"), ("no-checkpoints", "no kept checkpoint"),
    ("bank", "--knn-bank must be >= 20"), ("jn", "--jacobian-n must be >= 2"), ("evidence-dir", "is a folder"),
    ("data", "does not exist"), ("epochs", "argument --epochs: expected an integer"),
])
def test_bad_input_is_one_line_and_exit_2(case, words, run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trend, "_in_child", _fake_child([]))
    argv = ["trend", str(run_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    if case == "no-run":
        argv[1] = str(tmp_path / "nothing")
    elif case == "no-config":
        (run_dir / "config.json").unlink()
    elif case == "no-checkpoints":
        (run_dir / "epoch-000" / "checkpoint.msgpack").unlink()
    elif case == "bank":
        argv += ["--knn-bank", "5"]
    elif case == "jn":
        argv += ["--jacobian-n", "1"]
    elif case == "evidence-dir":
        argv += ["--evidence", str(tmp_path)]
    elif case == "data":
        argv += ["--data", str(tmp_path / "none.tar.gz")]
    elif case == "epochs":
        argv += ["--epochs", "1,x"]
    code, out, err = run(argv, capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "trend.json").exists()


def test_help_gives_every_default(capsys):
    code, out, _ = run(["trend", "--help"], capsys)
    assert code == 0
    text = " ".join(re.sub(r"-\n\s+", "-", out).split())  # argparse breaks lines after a hyphen
    for words in ("default 4000", "default 1000", "default 200", "default: all", "default: results/trend/",
                  "default: the one RUN_DIR's config.json names", "default: every epoch-EEE folder", "default none"):
        assert words in text, words
