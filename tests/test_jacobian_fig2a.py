"""`clspec jacobian-fig2a` (experiments/analysis/jacobian_fig2a.py): BatchNorm batch statistics held fixed equal
training mode on the batch, the full spectrum and label alignment against a dense SVD of J, and the command end
to end on a generated image folder with the `tiny` ResNet (evidence, resume, one-line errors)."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.analysis import jacobian_fig2a as fig
from experiments.analysis.jacobian import apply_fn, build_network
from experiments.cli import main
from test_jacobian_cli import _cache, _checkpoint, folder  # noqa: F401  (fixtures)


def _tiny(seed=3):
    return build_network("tiny", K=10, seed=seed, image_shape=(8, 8, 3))


def _points(n, seed=0):
    return np.asarray(jax.random.uniform(jax.random.PRNGKey(seed), (n, 8, 8, 3)), np.float32)


def test_fixed_batch_statistics_reproduce_training_mode_on_the_batch():
    module, v = _tiny()
    x = _points(12)
    train_out, _ = module.apply(v, jnp.asarray(x), train=True, mutable=["batch_stats"])
    fixed = fig.with_batch_statistics(module, v, x)
    eval_fixed = module.apply(fixed, jnp.asarray(x), train=False)
    eval_running = module.apply(v, jnp.asarray(x), train=False)
    scale = float(jnp.max(jnp.abs(train_out)))
    assert float(jnp.max(jnp.abs(eval_fixed - train_out))) < 1e-4 * scale
    assert float(jnp.max(jnp.abs(eval_running - train_out))) > 1e-2 * scale  # the conventions differ
    # same collection layout; at random init the running statistics are (0, 1), the batch ones are not
    flat = jax.tree_util.tree_leaves_with_path(fixed["batch_stats"])
    assert len(flat) == len(jax.tree_util.tree_leaves(v["batch_stats"])) > 0
    assert all(np.all(np.asarray(a) >= 0) for p, a in flat if "var" in jax.tree_util.keystr(p))
    # each output is still a function of its own point only
    one = module.apply(fixed, jnp.asarray(x[:1]), train=False)
    assert float(jnp.max(jnp.abs(one - eval_fixed[:1]))) < 1e-5 * scale


@pytest.mark.parametrize("bn", ["running", "batch"])
def test_full_spectrum_and_alignment_match_a_dense_svd_of_the_jacobian(bn, tmp_path):
    module, v = _tiny()
    x, labels = _points(6), np.array([0, 1, 2, 3, 1, 0])
    if bn == "batch":
        v = fig.with_batch_statistics(module, v, x)
    apply = apply_fn(module, v)
    r = fig.full_spectrum(apply, v["params"], x, labels, 10, tiles="float64", budget_bytes=2**30, block=2,
                          partial=tmp_path / "p")
    theta, unravel = jax.flatten_util.ravel_pytree(v["params"])
    J = np.asarray(jax.jacrev(lambda t: apply(unravel(t), jnp.asarray(x)).reshape(-1))(theta), np.float64)
    U, s, _ = np.linalg.svd(J, full_matrices=False)
    y = np.asarray(jax.nn.one_hot(labels, 10)).reshape(-1)
    assert np.allclose(r["sigma"], s, rtol=1e-4, atol=1e-5 * s[0])
    assert abs(np.sum(r["alignment_sq"]) - 6) < 1e-9  # sum_i (u_i^T y)^2 = ||y||^2 = n
    top = s > 1e-3 * s[0]  # directions with distinct enough singular values to compare one by one
    gaps = np.r_[np.inf, -np.diff(s)] > 1e-3 * s[0]
    keep = top & gaps & np.r_[gaps[1:], True]
    assert keep.sum() >= 20
    assert np.allclose(np.asarray(r["alignment_sq"])[keep], ((U.T @ y) ** 2)[keep], atol=1e-3)
    assert r["pi_I"] ** 2 + r["pi_N"] ** 2 == pytest.approx(6, rel=1e-9)
    assert r["tail_fraction"] == pytest.approx(np.sum(s[10:] ** 2) / np.sum(s**2), rel=1e-6)
    assert len(list((tmp_path / "p").glob("tile_2_*.npy"))) == 6  # 3 blocks: 6 upper-triangle tiles
    again = fig.full_spectrum(apply, v["params"], x, labels, 10, tiles="float64", budget_bytes=2**30, block=2,
                              partial=tmp_path / "p")
    assert again["tiles_resumed"] == 6 and again["seconds"]["blocks_computed"] == 0
    assert np.array_equal(again["sigma"], r["sigma"])
    f32 = fig.full_spectrum(apply, v["params"], x, labels, 10, tiles="float32", budget_bytes=2**30, block=2)
    assert np.max(np.abs(f32["sigma"] - s)) < 1e-3 * s[0]


def test_networks_option_is_parsed_and_refused_in_one_line():
    assert fig.parse_networks(None, False) == [("random", "running"), ("random", "batch")]
    assert len(fig.parse_networks(None, True)) == 4
    assert fig.parse_networks("pretrained:batch,random:running,random:running", True) == [
        ("pretrained", "batch"), ("random", "running")]
    for bad in ("random", "random:eval", "trained:batch"):
        with pytest.raises(ValueError, match="must be INIT:BN"):
            fig.parse_networks(bad, True)
    with pytest.raises(ValueError, match="needs --checkpoint"):
        fig.parse_networks("pretrained:running", False)


def _cmd(folder, tmp_path, *extra):  # noqa: F811
    return ["jacobian-fig2a", "--network", "tiny", "--data", str(folder), "--n", "6", "--no-progress", "--block", "3",
            "--out", str(tmp_path / "out"), *extra]


def test_end_to_end_evidence_resume_and_errors(folder, tmp_path, capsys):  # noqa: F811
    ck = _checkpoint(tmp_path / "c.msgpack")
    ev = tmp_path / "ev.json"
    code = main(_cmd(folder, tmp_path, "--checkpoint", str(ck), "--evidence", str(ev)))
    out, err = capsys.readouterr()
    assert code == 0, err
    run = json.loads(ev.read_text())["runs"]["n=6"]
    assert set(run["networks"]) == {"random/running", "random/batch", "pretrained/running", "pretrained/batch"}
    for r in run["networks"].values():
        assert len(r["sigma"]) == 60 and r["sigma"] == sorted(r["sigma"], reverse=True)
        assert abs(sum(r["alignment_sq"]) - 6) < 1e-3 and r["peak_rss_mib"] > 0 and r["commit"] is not None
    nets = run["networks"]
    assert nets["random/running"]["sigma"] != nets["random/batch"]["sigma"]
    assert nets["pretrained/running"]["checkpoint"]["sha1"] and nets["random/batch"]["checkpoint"] is None
    assert run["command"].startswith("clspec jacobian-fig2a --network tiny") and f"--n 6" in run["command"]
    assert "sigma_1" in out and nets["random/running"]["first_in_process"] is True
    # a rerun recomputes nothing and writes the same numbers
    code = main(_cmd(folder, tmp_path, "--checkpoint", str(ck), "--evidence", str(ev), "--networks", "random:batch"))
    _, err = capsys.readouterr()
    assert code == 0 and "reusing" in err
    again = json.loads(ev.read_text())["runs"]["n=6"]["networks"]
    assert again == nets  # the earlier networks are kept, random/batch reused
    # another configuration in the same folder is refused; bad input is one line, exit 2
    for extra, msg in ((("--seed", "1"), "another configuration"), (("--networks", "random:eval"), "INIT:BN"),
                       (("--networks", "pretrained:batch"), "needs --checkpoint"), (("--n", "1"), "--n must be"),
                       (("--checkpoint", str(tmp_path / "missing")), "does not exist"),
                       (("--budget-gib", "0"), "--budget-gib")):
        code = main(_cmd(folder, tmp_path, *extra))
        _, err = capsys.readouterr()
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, (extra, err)


def test_help_gives_every_default(capsys):
    assert main(["jacobian-fig2a", "--help"]) == 0
    text = capsys.readouterr().out.split("options:", 1)[1]
    blocks = {b.split()[0].rstrip(","): b for b in re.split(r"\n(?=  -)", text) if b.strip().startswith("-")}
    options = [o for o in blocks if o.startswith("--")]
    assert len(options) >= 14, options
    for opt in options:
        assert "default" in blocks[opt], (opt, blocks[opt])
