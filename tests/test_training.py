"""Minibatch losses, pair sampling and training (theory/losses.py additions, theory/training.py)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.encoders import EmbeddingTable, Linear
from theory.graph import balanced_partition, make_graph
from theory.losses import nt_xent, spectral_contrastive_loss, spectral_loss_minibatch
from theory.tolerances import MC_C
from theory.training import (
    Sampler,
    TrainConfig,
    graph_sampler,
    linear_class_optimum,
    make_target,
    representation_metrics,
    train,
)



def _graph(seed=0, n_sub=3, size=6, delta=0.3, xi=0.05):
    part = balanced_partition(n_sub, size, 2 if n_sub > 1 else 1)
    return part, make_graph(jax.random.key(seed), part, delta, xi)


def _orthogonal(key, p):
    q, r = jnp.linalg.qr(jax.random.normal(key, (p, p)))
    return q * jnp.sign(jnp.diag(r))[None, :]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), p=st.sampled_from([2, 4]))
def test_losses_are_invariant_to_rotating_the_representation(seed, p):
    part, W = _graph(seed)
    F = jax.random.normal(jax.random.key(seed), (part.n, p))
    R = _orthogonal(jax.random.key(seed + 1), p)
    a, b = _all_losses(F, W), _all_losses(F @ R, W)
    np.testing.assert_allclose(a, b, rtol=1e-10)


@jax.jit
def _all_losses(F, W):
    z1, z2 = F[:8], F[8:16]
    return jnp.stack([spectral_contrastive_loss(F, W), spectral_loss_minibatch(z1, z2),
                      spectral_loss_minibatch(z1, z2, z2, z1), nt_xent(z1, z2, 0.3)])


@settings(max_examples=8, deadline=None)  # each new (b, p) compiles the loss: a few seconds in all
@given(b=st.integers(2, 12), p=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_in_batch_negatives_are_the_mean_over_the_b_b_minus_1_cross_pairs(b, p, seed):
    # the definition, pair by pair (the loss computes it from p x p Gram matrices), for p below and above B
    z, zp = np.asarray(jax.random.normal(jax.random.key(seed), (2, b, p)))
    cross = [(z[a] @ zp[c]) ** 2 for a in range(b) for c in range(b) if a != c]
    expected = -2.0 * np.mean(np.sum(z * zp, axis=1)) + np.mean(cross)
    assert float(spectral_loss_minibatch(jnp.asarray(z), jnp.asarray(zp))) == pytest.approx(expected, rel=1e-12,
                                                                                            abs=1e-12)


def test_metrics_are_invariant_to_rotating_the_representation():
    part, W = _graph(8)
    tgt = make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=4)
    F = jax.random.normal(jax.random.key(0), (part.n, 4))
    R = _orthogonal(jax.random.key(1), 4)
    a, b = representation_metrics(F, tgt), representation_metrics(F @ R, tgt)
    for name in ("sine", "alignment_u", "alignment_f", "alignment_bias", "pop_loss"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a["singular_values"], b["singular_values"], rtol=1e-9)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_minibatch_estimators_are_unbiased(seed):
    """|mean of M minibatch estimates - population loss| <= c / sqrt(M), c = 4 x std of one estimate."""
    part, W = _graph(seed)
    F = jax.random.normal(jax.random.key(seed), (part.n, 4))
    M, B = 3000, 16
    sampler = graph_sampler(jnp.arange(part.n), W)
    idx = sampler.noise(jax.random.key(seed + 1), M, B)

    def one(ix):
        i, j, a, b = sampler.sample(ix, B)
        return spectral_loss_minibatch(F[i], F[j], F[a], F[b]), spectral_loss_minibatch(F[i], F[j])

    ind, inb = jax.jit(jax.vmap(one))(idx)
    pop = float(spectral_contrastive_loss(F, W))
    for est in (np.asarray(ind), np.asarray(inb)):
        tol = MC_C * est.std(ddof=1) / np.sqrt(M)
        assert abs(est.mean() - pop) <= tol, (est.mean(), pop, tol)


def test_graph_sampler_draws_pairs_with_law_w_over_s():
    part, W = _graph(3, n_sub=2, size=3, xi=0.3)
    n, N = part.n, 20000
    sampler = graph_sampler(jnp.arange(n), W)
    ix = np.asarray(sampler.noise(jax.random.key(0), N, 1))[:, :, 0]
    P = np.asarray(W / W.sum())
    freq = np.zeros((n, n))
    np.add.at(freq, (ix[:, 0], ix[:, 1]), 1.0 / N)
    assert np.all(np.abs(freq - P) <= MC_C * np.sqrt(P * (1 - P) / N) + 1e-12)
    marg = np.bincount(ix[:, 2], minlength=n) / N
    w = P.sum(1)
    assert np.all(np.abs(marg - w) <= MC_C * np.sqrt(w * (1 - w) / N))


def test_closed_form_minimizes_the_population_loss_only_after_the_sqrt_w_reweighting():
    """f_min = u / sqrt(w/S) attains -sum lambda^2; the paper's F* Sigma (no reweighting) does not
    when the degrees differ."""
    part, W = _graph(1, delta=0.8, xi=0.2)
    tgt = make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=4)
    np.testing.assert_allclose(spectral_contrastive_loss(tgt.F_min, W), tgt.min_loss, rtol=1e-10)
    F_paper = tgt.eigvecs * jnp.sqrt(jnp.maximum(tgt.eigvals, 0))[None, :] * np.sqrt(part.n)
    assert float(spectral_contrastive_loss(F_paper, W)) > tgt.min_loss + 1e-6
    m = representation_metrics(tgt.F_min, tgt)
    # sine = sqrt(1 - cos^2): float64 round-off of 1e-16 in cos leaves up to ~1e-8 here
    assert m["sine"] < 1e-6
    np.testing.assert_allclose(m["singular_values"], np.sqrt(np.maximum(tgt.eigvals, 0)), atol=1e-10)


def test_linear_class_optimum_is_linear_and_between_the_bounds():
    part, W = _graph(2)
    X = jax.random.normal(jax.random.key(0), (part.n, 5))
    tgt = make_target(X, W, part.labels(), n_sub=3, p=4)
    lin_min, F = linear_class_optimum(X, tgt)
    np.testing.assert_allclose(spectral_contrastive_loss(F, W), lin_min, rtol=1e-10)
    assert tgt.min_loss - 1e-12 <= lin_min
    # F = X A^T for some A: the least-squares residual vanishes
    A, *_ = np.linalg.lstsq(np.asarray(X), np.asarray(F), rcond=None)
    np.testing.assert_allclose(np.asarray(X) @ A, F, atol=1e-10)
    # and no random linear encoder does better
    for k in range(5):
        Wr = jax.random.normal(jax.random.key(k), (4, 5)) * 0.3
        assert float(spectral_contrastive_loss(X @ Wr.T, W)) >= lin_min - 1e-12


def test_sgd_on_sampled_pairs_finds_the_closed_form_subspace():
    """An embedding table trained on sampled pairs reaches f_min's top-K-bar space (small graph)."""
    part, W = _graph(4, n_sub=3, size=8, delta=0.2, xi=0.02)
    tgt = make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=3)
    enc = EmbeddingTable(part.n, 3)
    cfg = TrainConfig(steps=1500, batch=24, lr=2e-2, negatives="in_batch", eval_every=500)
    res = train(jax.random.key(0), enc.apply, enc.init(jax.random.key(1)), tgt, cfg)
    assert res.stopped_at is None
    assert res.history["sine"][-1] < 0.05
    assert (res.history["pop_loss"][-1] - tgt.min_loss) / abs(tgt.min_loss) < 1e-2
    assert list(res.history["step"]) == [0, 500, 1000, 1500]


def test_nan_loss_stops_training_and_keeps_the_last_good_state():
    """A sampler that feeds a NaN input at step 37: training stops there, names the step, and
    returns the parameters theta_36, the last ones whose loss was finite (the state after 36 updates)."""
    part, W = _graph(5)
    X = jax.random.normal(jax.random.key(0), (part.n, 4))
    tgt = make_target(X, W, part.labels(), n_sub=3, p=3)
    X_ext = jnp.concatenate([X, jnp.full((1, 4), jnp.nan)])  # row n is poisoned
    bad_step, B = 37, 8
    fixed = np.random.default_rng(0).integers(0, part.n, (100, 4, B))
    fixed[bad_step, 0, 3] = part.n

    def noise(key, steps, batch):
        return jnp.asarray(fixed[:steps])  # the same prefix whatever the number of steps

    def sample(ix, batch):
        return X_ext[ix[0]], X_ext[ix[1]], X_ext[ix[2]], X_ext[ix[3]]

    sampler = Sampler(noise, sample)
    enc = Linear(4, 3)
    params = enc.init(jax.random.key(1))
    cfg = TrainConfig(steps=100, batch=B, lr=1e-2, schedule="constant", negatives="independent", eval_every=25)
    with pytest.warns(RuntimeWarning, match=f"at step {bad_step}"):
        res = train(jax.random.key(2), enc.apply, params, tgt, cfg, sampler=sampler)
    assert res.stopped_at == bad_step
    assert f"at step {bad_step}" in res.message and f"parameters of step {bad_step - 1}" in res.message
    assert np.all(np.isfinite(res.params["W"]))
    # the state kept is the one whose loss was last finite: theta_36, reached after 36 updates
    again = train(jax.random.key(2), enc.apply, params, tgt, dataclasses.replace(cfg, steps=bad_step - 1),
                  sampler=sampler)
    np.testing.assert_allclose(res.params["W"], again.params["W"], rtol=1e-12)
    assert res.history["step"][-1] == bad_step - 1
    assert np.isfinite(res.history["pop_loss"][-1])


@pytest.mark.parametrize(
    "cfg, match",
    [
        (TrainConfig(temperature=0.0, loss="nt_xent"), "temperature must be > 0, got 0.0"),
        (TrainConfig(temperature=-1.0), "temperature must be > 0"),
        (TrainConfig(batch=10_000), "batch must be <= the number of data points n=18, got 10000"),
        (TrainConfig(loss="triplet"), "loss must be one of"),
        (TrainConfig(lr=float("nan")), "lr must be"),
        (TrainConfig(full_batch=True, loss="nt_xent", batch=4), "full_batch needs"),
    ],
)
def test_bad_training_config_is_refused(cfg, match):
    part, W = _graph(6)
    tgt = make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=3)
    enc = EmbeddingTable(part.n, 3)
    with pytest.raises(ValueError, match=match):
        train(jax.random.key(0), enc.apply, enc.init(jax.random.key(1)), tgt, cfg)


def test_bad_inputs_are_refused():
    part, W = _graph(7)
    with pytest.raises(ValueError, match="inputs must be finite"):
        make_target(jnp.full((part.n, 2), jnp.nan), W, part.labels(), n_sub=3, p=3)
    with pytest.raises(ValueError, match="p must be >= 1, got 0"):
        make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=0)
    with pytest.raises(ValueError, match="p must be >= K-bar=3"):
        make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=2)
    with pytest.raises(ValueError, match="W must be finite"):
        make_target(jnp.arange(part.n), W.at[0, 1].set(jnp.nan), part.labels(), n_sub=3, p=3)
    tgt = make_target(jnp.arange(part.n), W, part.labels(), n_sub=3, p=3)
    enc = EmbeddingTable(part.n, 3)
    bad = {"table": enc.init(jax.random.key(0))["table"].at[0, 0].set(jnp.nan)}
    with pytest.raises(ValueError, match="params must be finite"):
        train(jax.random.key(0), enc.apply, bad, tgt, TrainConfig(steps=2, batch=4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent(jnp.ones((2, 2)), jnp.ones((2, 2)), 0.0)
    with pytest.raises(ValueError, match="in-batch negatives need"):
        spectral_loss_minibatch(jnp.ones((1, 2)), jnp.ones((1, 2)))


def test_model_sampler_draws_two_augmentations_of_one_natural_point():
    """Positive pairs from the data model differ by two independent N(0, s^2 I) draws:
    E|x - x+|^2 = 2 d s^2, within c / sqrt(B) with c = 4 x std of one |x - x+|^2."""
    from theory.datamodel import GaussianNoise, make_datamodel
    from theory.training import model_sampler

    model = make_datamodel(jax.random.key(0), n_classes=2, n_sub=4, per_sub=5, d=3)
    sampler = model_sampler(model, GaussianNoise(0.5))
    B = 4000
    x, xp, xa, xb = jax.jit(sampler.sample, static_argnums=1)(sampler.noise(jax.random.key(1), 1, B)[0], B)
    sq = np.sum(np.asarray(x - xp) ** 2, axis=1)
    assert abs(sq.mean() - 2 * 3 * 0.25) <= MC_C * sq.std(ddof=1) / np.sqrt(B)
    # negatives come from independently drawn natural points: further apart on average
    assert np.mean(np.sum(np.asarray(xa - xb) ** 2, axis=1)) > sq.mean()
