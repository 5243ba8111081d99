"""`clspec spectrum` end to end: a tiny generated image dataset with a checkpoint, a user features
file, the pre-training monitor, and bad input (one line, exit 2)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# the generated image folder (10 classes, 8 training and 4 test images each), the cache isolation and the
# in-process runner of the `clspec cifar` tests
from test_cifar_cli import _cache, folder, run  # noqa: E402,F401


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A `pretrain` checkpoint of the tiny network (its initialization, saved as pretrain writes it)."""
    from experiments.cifar import checkpoint as ckpt
    from experiments.cifar.train_steps import simclr_model

    model = simclr_model("tiny", 64)
    v = model.init(jax.random.PRNGKey(3), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.msgpack"
    state = {"step": 0, "params": v["params"], "batch_stats": v["batch_stats"], "opt_state": {}}
    ckpt.save(path, state, {"kind": "pretrain", "arch": "tiny", "epoch": 1, "seed": 0, "history": [],
                            "projection_dim": 64})
    return path


@pytest.mark.slow
def test_checkpoint_with_baselines_end_to_end(tmp_path, folder, checkpoint, capsys):
    out = tmp_path / "spec"
    code, stdout, err = run(["spectrum", "--checkpoint", str(checkpoint), "--data", str(folder), "--baseline",
                             "random", "raw", "--alphas", "0", "0.4", "0.8", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    for name in ("spectrum.json", "summary.md", "spectrum.png", "alignment.png", "split.png", "recovery.png"):
        assert (out / name).exists(), name
    res = json.loads((out / "spectrum.json").read_text())
    assert set(res["representations"]) == {"checkpoint-pretrain-tiny/encoder", "checkpoint-pretrain-tiny/projection",
                                           "random/encoder", "random/projection", "raw/pixels"}
    assert res["n_train"] == 80 and res["n_test"] == 40 and res["num_classes"] == 10
    assert res["noise"]["spec"] == "sym:0.8" and res["noise"]["rate"] == pytest.approx(0.8)
    for name, r in res["representations"].items():
        A = np.asarray(r["alignment"])
        assert np.all(np.diff(A) >= -1e-12) and A[-1] <= 1 + 1e-12, name
        assert r["alignment_K"] == pytest.approx(A[9])
        s = r["split_noise"]
        assert s["information"] ** 2 + s["nuisance"] ** 2 == pytest.approx(s["total_sq"], rel=1e-9)
        assert len(r["recovery_curve"]) == 3 and len(r["beta_path"]) == 15
        assert r["recovery_curve"][0]["alpha_realized"] == 0.0 and r["recovery_curve"][0]["threshold"] == 1.0
    # raw pixels (d = 3072 > n = 80): at beta -> 0 the head interpolates the noisy labels
    raw = res["representations"]["raw/pixels"]
    assert raw["d"] == 3072 and raw["beta_path"][0]["noisy_memorized"] == 1.0
    # the random baseline is the initialization of the same seed: here the checkpoint was saved from PRNGKey(3),
    # the baseline is PRNGKey(0), so the two differ
    assert res["representations"]["random/encoder"]["sigma"] != res["representations"][
        "checkpoint-pretrain-tiny/encoder"]["sigma"]
    assert "A(K)" in (out / "summary.md").read_text()
    # the same command again: refused without --overwrite; with it, the same numbers
    code, _, err = run(["spectrum", "--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(out),
                        "--no-progress"], capsys)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1


def _structured_features(rng, n_per, K, d, noise, centres=None):
    labels = np.repeat(np.arange(K), n_per)
    centres = rng.standard_normal((K, d)) * 3 if centres is None else centres
    return (centres[labels] + noise * rng.standard_normal((len(labels), d))).astype(np.float32), labels


def test_monitor_row_equals_theory_on_the_same_features():
    """The epoch row's spectral numbers are theory.spectrum's on the k-NN monitor features."""
    from experiments.cifar.monitors import monitor_row
    from theory.tolerances import FLOAT32_FLOOR
    from theory import spectrum as sp

    rng = np.random.default_rng(4)
    F, y = _structured_features(rng, 20, 3, 8, 1.0)
    got = monitor_row(F, y, 3)
    S = sp.spectral_summary(jnp.asarray(F, jnp.float64), y, 3, floor=FLOAT32_FLOOR)
    assert got["spec_alignment_K"] == pytest.approx(float(S.alignment_K), abs=1e-6)
    assert got["spec_prominent"] == int(S.prominent) and got["spec_rankme"] == pytest.approx(float(S.rankme), abs=1e-4)
    assert monitor_row(F[:3], y[:3], 3) == {}  # too few points for K = 3: no columns, no crash


def test_user_features_file_npz_and_npy(tmp_path, capsys):
    """Well-separated class clusters: top-K alignment near 1, clean labels recovered at alpha = 0.4 < the
    threshold; a Gaussian matrix of the same shape has low alignment. The .npy + --labels route gives the
    same numbers as the .npz."""
    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((4, 12))
    F, y = _structured_features(rng, 30, 4, 12, 0.3, centres)
    Ft, yt = _structured_features(rng, 10, 4, 12, 0.3, centres)
    np.savez(tmp_path / "f.npz", features=F, labels=y, test_features=Ft, test_labels=yt)
    out = tmp_path / "o"
    code, _, err = run(["spectrum", "--features", str(tmp_path / "f.npz"), "--noise", "sym:0.4", "--alphas", "0.2",
                        "0.9", "--out", str(out), "--no-progress", "--ledger"], capsys)
    assert code == 0, err
    r = json.loads((out / "spectrum.json").read_text())["representations"]["features/user"]
    assert r["alignment_K"] > 0.95
    assert r["head"]["train_recovery"] == 1.0 and r["head"]["test_acc"] == 1.0
    assert r["head"]["threshold"] > 0.4
    assert r["split_clean"]["information_fraction"] > r["split_noise"]["information_fraction"]
    np.save(tmp_path / "f.npy", F)
    np.save(tmp_path / "y.npy", y)
    code, _, err = run(["spectrum", "--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "y.npy"),
                        "--noise", "sym:0.4", "--alphas", "0.2", "0.9", "--out", str(tmp_path / "o2"),
                        "--no-progress"], capsys)
    assert code == 0, err
    r2 = json.loads((tmp_path / "o2" / "spectrum.json").read_text())["representations"]["features/user"]
    assert r2["alignment"] == r["alignment"] and r2["head"]["train_recovery"] == r["head"]["train_recovery"]
    assert r2["head"]["test_acc"] is None  # no test features in a .npy
    # a Gaussian matrix of the same shape: low alignment
    from theory.spectrum import alignment_curve, one_hot

    G = rng.standard_normal(F.shape)
    assert float(alignment_curve(jnp.asarray(G), one_hot(y, 4))[3]) < 0.6


def test_bad_input_one_line_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(0)
    F, y = _structured_features(rng, 10, 3, 6, 0.5)
    np.save(tmp_path / "f.npy", F)
    np.savez(tmp_path / "nolabels.npz", features=F)
    np.savez(tmp_path / "short.npz", features=F, labels=y[:-1])
    Fn = F.copy()
    Fn[4, 2] = np.nan
    np.savez(tmp_path / "nan.npz", features=Fn, labels=y)
    np.savez(tmp_path / "ok.npz", features=F, labels=y)
    from experiments.cifar import checkpoint as ckpt

    fake = ckpt.save(tmp_path / "tiny.msgpack", {"params": {}}, {"kind": "pretrain", "arch": "tiny"})
    o = str(tmp_path / "o")
    cases = [
        (["--features", str(tmp_path / "f.npy")], "without labels"),
        (["--features", str(tmp_path / "nolabels.npz")], "no 'labels'"),
        (["--features", str(tmp_path / "short.npz")], "29 labels for 30"),
        (["--features", str(tmp_path / "nan.npz")], "NaN"),
        (["--features", str(tmp_path / "ok.npz"), "--k", "7"], "--k must be <="),
        (["--features", str(tmp_path / "ok.npz"), "--noise", "gauss:0.3"], "unknown noise kind 'gauss'"),
        (["--checkpoint", str(fake), "--arch", "resnet32"], "arch 'tiny'"),
        (["--checkpoint", str(tmp_path / "f.npy")], "not a readable clspec checkpoint"),
        (["--features", str(tmp_path / "missing.npz")], "does not exist"),
        ([], "nothing to analyse"),
    ]
    for argv, needle in cases:
        code, _, err = run(["spectrum", *argv, "--out", o, "--no-progress"], capsys)
        assert code == 2, (argv, err)
        assert needle in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written by a refused run


def test_an_empty_truncated_or_corrupt_features_file_is_one_line_naming_it_exit_2(tmp_path, capsys):
    """Not a zip, a zip cut short, a member with a bad CRC, an empty or cut .npy: one line naming the file, exit 2."""
    rng = np.random.default_rng(0)
    F, y = _structured_features(rng, 10, 3, 6, 0.5)
    np.savez(tmp_path / "ok.npz", features=F, labels=y)
    np.save(tmp_path / "ok.npy", F)
    np.save(tmp_path / "y.npy", y)
    whole, arr = (tmp_path / "ok.npz").read_bytes(), (tmp_path / "ok.npy").read_bytes()
    corrupt = bytearray(whole)
    corrupt[len(whole) // 3] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    files = {"empty.npz": b"", "cut.npz": whole[: len(whole) // 2], "corrupt.npz": bytes(corrupt),
             "empty.npy": b"", "cut.npy": arr[: len(arr) // 2]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        labels = ["--labels", str(tmp_path / "y.npy")] if name.endswith(".npy") else []
        code, _, err = run(["spectrum", "--features", str(tmp_path / name), *labels, "--out", str(tmp_path / "o"),
                            "--no-progress"], capsys)
        assert code == 2, (name, err)
        assert f"--features {tmp_path / name}" in err and len(err.strip().splitlines()) == 1, (name, err)
        assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_pretrain_records_the_spectral_monitor_and_spectrum_plots_it(tmp_path, folder, capsys):
    """Each pre-training epoch row carries top-K alignment, RankMe, prominent count and sigma_K/sigma_K+1 of
    the k-NN monitor's features, equal to theory.spectrum on those features; `clspec spectrum RUN` plots them."""
    from experiments.cifar import configs
    from experiments.cifar import train as loops
    from experiments.cifar.data import load_dataset

    train_set = load_dataset(folder, "train")
    test_set = load_dataset(folder, "test")
    cfg = dataclasses.replace(configs.pretrain_preset("smoke"), epochs=1, knn_train=80)
    out = tmp_path / "run"
    loops.pretrain(cfg, out, train_set, test_set)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"spec_alignment_K", "spec_rankme", "spec_prominent", "spec_gap_K", "knn_acc"} <= set(row)
    assert 0 < row["spec_alignment_K"] <= 1 and 1 <= row["spec_rankme"] <= 16

    code, stdout, err = run(["spectrum", str(out)], capsys)
    assert code == 0, err
    assert (out / "monitor.png").exists() and "monitor of 1 epochs" in stdout
    code, _, err = run(["spectrum", str(tmp_path)], capsys)
    assert code == 2 and "metrics.jsonl" in err
