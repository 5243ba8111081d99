"""`clspec jacobian` end to end on a generated image folder with the `tiny` ResNet: Table 4 numbers
(||Pi_I||^2 + ||Pi_N||^2 = n printed), figures, resume after an interruption, bad input -> exit 2."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from PIL import Image

from experiments.cli import main

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``<root>/test/<class>/<index>.png``: 2 test images per class (20 points)."""
    root = tmp_path_factory.mktemp("images") / "gen"
    rng = np.random.default_rng(0)
    i = 0
    for split in ("train", "test"):
        for c, name in enumerate(CLASSES):
            d = root / split / name
            d.mkdir(parents=True)
            for _ in range(2):
                img = np.clip(20 * c + rng.normal(0, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:05d}.png")
                i += 1
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))


def _checkpoint(path, *, arch="tiny", kind="pretrain", scale=1.5, nan=False, wrong_shape=False):
    from experiments.cifar import checkpoint as ckpt
    from experiments.analysis.jacobian import build_network

    _, v = build_network("tiny", K=10, seed=7, image_shape=(16, 16, 3))
    enc = jax.tree_util.tree_map(lambda a: np.asarray(a) * scale, v["params"]["encoder"])
    if nan:
        enc["stem"]["conv"]["kernel"] = enc["stem"]["conv"]["kernel"] * np.nan
    if wrong_shape:
        enc["stem"]["conv"]["kernel"] = np.zeros((3, 3, 3, 5), np.float32)
    state = {"params": {"encoder": enc, "head": {}}, "batch_stats": {"encoder": v["batch_stats"]["encoder"]}}
    return ckpt.save(path, state, {"kind": kind, "arch": arch, "epoch": 1})


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def base(folder, tmp_path, *extra):
    return ["jacobian", "--network", "tiny", "--data", str(folder), "--n", "8", "--no-progress",
            "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"), *extra]


def test_end_to_end_random_vs_checkpoint_and_projections_sum_to_n(folder, tmp_path, capsys):
    ck = _checkpoint(tmp_path / "c.msgpack")
    code, out, err = run(base(folder, tmp_path, "--checkpoint", str(ck), "--block", "3"), capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    res = m["results"]
    assert set(res) == {"random init", "pretrain checkpoint"}
    for r in res.values():
        assert abs(r["pi_sum_sq"] - 8) < 1e-9 and len(r["sigma"]) == 80
        assert r["sigma"] == sorted(r["sigma"], reverse=True)
    assert res["random init"]["sigma"] != res["pretrain checkpoint"]["sigma"]
    assert out.count("8.000") >= 2  # the printed sum of squares
    assert (tmp_path / "fig" / "jacobian_tiny_n8_fig2a.png").exists()
    data = json.loads((tmp_path / "out" / "config.json").read_text())["data"]  # the identity, not the option
    assert len(data["sha256"]) == 64 and data["classes"] == CLASSES and data["split_images"] == 20


@pytest.mark.slow
def test_matrix_free_path_matches_the_full_spectrum(folder, tmp_path, capsys):
    code, _, err = run(base(folder, tmp_path), capsys)
    assert code == 0, err
    # the matrix-free path agrees with the full spectrum on the top-k and on Table 4's numbers
    code, _, err = run(base(folder, tmp_path, "--method", "lanczos", "--k", "5", "--steps", "40",
                            "--fro-samples", "40", "--out", str(tmp_path / "lz")), capsys)
    assert code == 0, err
    g = json.loads((tmp_path / "out" / "metrics.json").read_text())["results"]["random init"]
    code, _, _ = run(base(folder, tmp_path, "--k", "5", "--out", str(tmp_path / "g5")), capsys)
    g5 = json.loads((tmp_path / "g5" / "metrics.json").read_text())["results"]["random init"]
    lz = json.loads((tmp_path / "lz" / "metrics.json").read_text())["results"]["random init"]
    assert np.allclose(lz["sigma"], g["sigma"][:5], rtol=1e-4)
    assert abs(lz["pi_I"] - g5["pi_I"]) < 1e-4 * g5["pi_I"]
    assert max(lz["relative_residuals"]) < 1e-3
    assert abs(lz["ratio"] - g5["ratio"]) < 0.05 * g5["ratio"]


def test_the_gram_eigh_runs_on_one_blas_thread(folder, tmp_path, capsys, monkeypatch):
    """The full spectrum's eigh runs with every BLAS library limited to one thread, and only there."""
    from threadpoolctl import threadpool_info

    from theory import jacobian as jac

    real, threads = jac.spectrum, []

    def recording(G):
        threads.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return real(G)

    blas = lambda: sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")  # noqa: E731
    monkeypatch.setattr(jac, "spectrum", recording)
    before = blas()
    code, _, err = run(base(folder, tmp_path), capsys)
    assert code == 0, err
    assert threads and all(t == {1} for t in threads), threads
    assert blas() == before  # the limit is lifted afterwards


def test_interrupted_gram_resumes_without_recomputing_its_tiles(folder, tmp_path, capsys, monkeypatch):
    from theory import jacobian as jac

    argv = base(folder, tmp_path, "--block", "2")  # 4 blocks, 10 tiles
    real = jac.gram_tiles
    seen = []

    def interrupted(*a, **kw):
        for i, item in enumerate(real(*a, **kw)):
            if i == 4:
                raise KeyboardInterrupt
            seen.append(item[0])
            yield item

    monkeypatch.setattr(jac, "gram_tiles", interrupted)
    code, _, _ = run(argv, capsys)
    assert code == 130 and len(seen) == 4
    monkeypatch.setattr(jac, "gram_tiles", real)
    skipped = []

    def recording(*a, **kw):
        skipped.append(set(kw.get("skip", ())))
        yield from real(*a, **kw)

    monkeypatch.setattr(jac, "gram_tiles", recording)
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert skipped[0] == set(seen)  # the 4 saved tiles were not recomputed
    resumed = json.loads((tmp_path / "out" / "metrics.json").read_text())["results"]["random init"]
    monkeypatch.setattr(jac, "gram_tiles", real)
    code, _, _ = run(base(folder, tmp_path, "--block", "2", "--out", str(tmp_path / "fresh")), capsys)
    fresh = json.loads((tmp_path / "fresh" / "metrics.json").read_text())["results"]["random init"]
    assert resumed["sigma"] == fresh["sigma"] and resumed["pi_I"] == fresh["pi_I"]


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--n", "100"], "--n 100 is larger than the 20 points"),
        (["--n", "2", "--k", "20"], "--k 20 must be smaller than nK = 20"),
        (["--budget-gib", "1e-6"], "too small for one block"),
        (["--checkpoint", "ARCH"], "'resnet18'"),
        (["--checkpoint", "NAN"], "not finite"),
        (["--checkpoint", "SHAPE"], "does not fit this model"),
        (["--checkpoint", "/nonexistent/c.msgpack"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(extra, words, folder, tmp_path, capsys):
    kinds = {"ARCH": dict(arch="resnet18"), "NAN": dict(nan=True), "SHAPE": dict(wrong_shape=True)}
    extra = [str(_checkpoint(tmp_path / "c.msgpack", **kinds[e])) if e in kinds else e for e in extra]
    code, _, err = run(base(folder, tmp_path, *extra), capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("clspec jacobian: error:"), err
    assert words in lines[0], err
