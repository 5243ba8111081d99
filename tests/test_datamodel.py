"""The input-space sub-class model and the augmentation graph it induces (theory/datamodel.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory._random import rng
from theory.datamodel import (
    GaussianNoise,
    Masking,
    augment,
    augmentation_graph,
    graph_from_log_density,
    log_augmentation_density,
    make_datamodel,
)
from theory.graph import check_weights, measure_xi
from theory.representation import normalized_adjacency, top_eigh


def _model(seed=0, **kw):
    args = dict(n_classes=2, n_sub=4, per_sub=5, d=4, class_sep=6.0, sub_sep=3.0, spread=0.2)
    args.update(kw)
    return make_datamodel(jax.random.key(seed), **args)


def test_datamodel_nests_points_in_sub_classes_in_classes():
    m = _model()
    part = m.natural_part
    assert m.natural.shape == (part.n, 4)
    assert part.sub_to_class == (0, 1, 0, 1)
    # every natural point is nearer its own sub-class centre than any other
    dist = np.linalg.norm(np.asarray(m.natural)[:, None, :] - np.asarray(m.sub_centres)[None], axis=2)
    assert np.all(np.argmin(dist, axis=1) == part.sub_of_point)


def test_gaussian_graph_is_the_finite_kernel_expectation():
    """w_ij = (1/N) sum_m N(x_i; x*_m, s^2 I) N(x_j; x*_m, s^2 I), up to one global scale."""
    m = _model(per_sub=3, d=2)
    s = augmentation_graph(jax.random.key(1), m, GaussianNoise(0.7), views=2)
    x, xs = np.asarray(s.x), np.asarray(m.natural)
    dens = np.exp(-np.sum((x[:, None] - xs[None]) ** 2, axis=2) / (2 * 0.7**2)) / (2 * np.pi * 0.7**2)
    direct = dens @ dens.T / xs.shape[0]
    W = np.asarray(s.W)
    np.testing.assert_allclose(W, direct / direct.max(), rtol=1e-10, atol=1e-300)
    check_weights(W, s.part)


def test_masking_monte_carlo_matches_exact_enumeration():
    """MC over masks is within c/sqrt(B) of the exact 2^d sum, c = 4 x (std of one mask's density)."""
    m = _model(d=3, per_sub=2)
    aug = Masking(keep=0.7, sigma=0.5)
    x = augment(jax.random.key(2), m.natural, aug)
    B = 4000
    key = jax.random.key(3)
    mc = np.exp(np.asarray(log_augmentation_density(x, m.natural, aug, key=key, n_masks=B)))
    exact = np.exp(np.asarray(log_augmentation_density(x, m.natural, aug, exact=True)))
    masks = rng(key).random((B, 3)) < 0.7  # the masks the estimator drew
    xn, xs = np.asarray(x), np.asarray(m.natural)
    per = np.exp(-np.sum((xn[None, :, None] - masks[:, None, None] * xs[None, None]) ** 2, axis=3) / (2 * 0.25))
    per /= (2 * np.pi * 0.25) ** 1.5
    np.testing.assert_allclose(per.mean(0), mc, rtol=1e-9)
    tol = 4.0 * per.std(0, ddof=1) / np.sqrt(B)
    assert np.all(np.abs(mc - exact) <= tol + 1e-300)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_well_separated_sub_classes_give_k_bar_unit_eigenvalues(seed):
    """With sub-classes far apart (xi ~ 0), A-bar has K-bar eigenvalues 1 (Lemma A.2) and then a gap."""
    m = _model(seed, sub_sep=20.0, class_sep=40.0, spread=0.1)
    s = augmentation_graph(jax.random.key(seed + 1), m, GaussianNoise(1.0))
    assert measure_xi(s.W, s.part) < 1e-12
    lam = np.asarray(top_eigh(normalized_adjacency(s.W), 5)[0])
    np.testing.assert_allclose(lam[:4], 1.0, atol=1e-9)
    assert lam[4] < 0.9


def test_graph_from_log_density_is_scale_free():
    la = jax.random.normal(jax.random.key(0), (6, 4))
    np.testing.assert_allclose(graph_from_log_density(la), graph_from_log_density(la + 123.0), rtol=1e-12)


@pytest.mark.parametrize(
    "aug, match",
    [(GaussianNoise(0.0), "sigma must be > 0"), (Masking(1.5, 0.5), "keep must be in"), (Masking(0.5, -1.0), "sigma")],
)
def test_bad_augmentation_is_refused(aug, match):
    with pytest.raises(ValueError, match=match):
        augmentation_graph(jax.random.key(0), _model(), aug)


def test_nan_inputs_are_refused():
    m = _model()
    bad = m._replace(natural=m.natural.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="natural points must be finite"):
        augmentation_graph(jax.random.key(0), bad, GaussianNoise(1.0))
    with pytest.raises(ValueError, match="x must be finite"):
        log_augmentation_density(jnp.full((2, 4), jnp.nan), m.natural, GaussianNoise(1.0))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="d must be >= 1"):
        _model(d=0)
    with pytest.raises(ValueError, match="views must be >= 1"):
        augmentation_graph(jax.random.key(0), _model(), GaussianNoise(1.0), views=0)
    with pytest.raises(ValueError, match="spread"):
        _model(spread=float("nan"))
