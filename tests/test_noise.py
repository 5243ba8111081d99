"""Label-noise generators (theory/noise.py): exact per-sub-class flip counts, realized c_max,
labels in range, reproducibility, bad input. Guards claims C37, C38, C40."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import strategies as S
from theory.graph import partition
from theory.noise import (
    asymmetric_flips,
    check_c_max,
    concentrated_flips,
    flip_counts,
    gaussian_noise,
    symmetric_flips,
)

@st.composite
def setups(draw):
    part = draw(S.partitions(n_classes=(2, 5), n_sub=(2, 8), sizes=(1, 25)))
    return part, draw(st.floats(0.0, 1.0)), draw(S.SEEDS)


def _generators(part, alpha, key):
    K = part.n_classes
    c = 1.0 / (K - 1) + 0.5 * (1.0 - 1.0 / (K - 1))
    return {
        "symmetric": symmetric_flips(part, alpha, key=key),
        "symmetric_random": symmetric_flips(part, alpha, key=key, balanced=False),
        "asymmetric": asymmetric_flips(part, alpha, [(k + 1) % K for k in range(K)], key=key),
        "concentrated": concentrated_flips(part, alpha, c, key=key),
    }


@settings(max_examples=30, deadline=None)
@given(setups())
def test_flips_exact_count_range_and_c_max(setup):
    part, alpha, seed = setup
    K = part.n_classes
    expected = np.floor(alpha * np.asarray(part.sizes) + 1e-9).astype(int)
    clean = part.class_of_point
    for name, fl in _generators(part, alpha, jax.random.PRNGKey(seed)).items():
        per_sub = np.bincount(part.sub_of_point[fl.flipped], minlength=part.n_sub)
        np.testing.assert_array_equal(per_sub, expected, err_msg=name)
        np.testing.assert_array_equal(fl.counts.sum(axis=1), expected, err_msg=name)
        assert np.all((fl.labels >= 0) & (fl.labels < K)), name
        assert np.all(fl.labels[fl.flipped] != clean[fl.flipped]), name  # a flip changes the label
        assert np.all(fl.labels[~fl.flipped] == clean[~fl.flipped]), name
        # one-hot rows that agree with labels
        np.testing.assert_array_equal(np.asarray(jnp.argmax(fl.Y_noisy, axis=1)), fl.labels)
        np.testing.assert_allclose(np.asarray(fl.Y_noisy.sum(axis=1)), 1.0)
        assert fl.alpha == pytest.approx(expected.sum() / part.n)
        if expected.sum() > 0:
            assert 1.0 / (K - 1) - 1e-12 <= fl.c_max <= 1.0 + 1e-12, name
            # the realized c_max is the paper's max_{k,kbar} m_{kbar,k}/m_kbar
            m = fl.counts.sum(axis=1)
            assert fl.c_max == pytest.approx(max(fl.counts[i].max() / m[i] for i in range(part.n_sub) if m[i] > 0))
        else:
            assert fl.c_max == 0.0


@settings(max_examples=25, deadline=None)
@given(setups())
def test_same_key_same_noise_and_balanced_symmetric_is_even(setup):
    part, alpha, seed = setup
    key = jax.random.PRNGKey(seed)
    a, b = _generators(part, alpha, key), _generators(part, alpha, key)
    for name in a:
        np.testing.assert_array_equal(a[name].labels, b[name].labels, err_msg=name)
    # evenly dealt symmetric flips: counts over the K-1 wrong classes differ by at most one
    fl = a["symmetric"]
    K = part.n_classes
    for kbar, cls in enumerate(part.sub_to_class):
        wrong = np.delete(fl.counts[kbar], cls)
        assert wrong.max() - wrong.min() <= 1


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_concentrated_flips_meet_the_prescribed_c_max(K, size, alpha, frac, seed):
    part = partition([size] * (2 * K), n_classes=K)
    c = 1.0 / (K - 1) + frac * (1.0 - 1.0 / (K - 1))
    fl = concentrated_flips(part, alpha, c, key=jax.random.PRNGKey(seed))
    m = fl.counts.sum(axis=1)
    if m.max() == 0:
        return
    # realized c_max never exceeds max(c, the smallest realizable ceil(m/(K-1))/m)
    for kbar in np.nonzero(m)[0]:
        mk = m[kbar]
        allowed = max(np.floor(c * mk + 1e-9), -(-mk // (K - 1))) / mk
        assert fl.counts[kbar].max() / mk <= allowed + 1e-12


def test_different_keys_differ():
    part = partition([30] * 6, n_classes=3)
    a = symmetric_flips(part, 0.5, key=jax.random.PRNGKey(0), balanced=False)
    b = symmetric_flips(part, 0.5, key=jax.random.PRNGKey(1), balanced=False)
    assert np.any(a.labels != b.labels)


def test_flip_counts_floor_is_robust_to_roundoff():
    part = partition([10, 10], n_classes=2)
    np.testing.assert_array_equal(flip_counts(part, 0.3), [3, 3])  # 0.3 * 10 = 2.9999999999999996


def test_gaussian_noise_covariance():
    Y = partition([500] * 4, n_classes=4).labels()
    g = gaussian_noise(Y, 2.0, key=jax.random.PRNGKey(0))
    # per-entry variance sigma^2/K = 1: sample variance of 8000 entries within 5 standard errors
    v = float(jnp.var(g.dY))
    assert abs(v - 1.0) < 5 * np.sqrt(2.0 / g.dY.size)
    np.testing.assert_allclose(np.asarray(g.Y_noisy - g.dY), np.asarray(Y))
    assert np.array_equal(np.asarray(gaussian_noise(Y, 2.0, key=jax.random.PRNGKey(0)).dY), np.asarray(g.dY))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_bad_alpha(alpha):
    part = partition([5, 5, 5], n_classes=3)
    with pytest.raises(ValueError, match="alpha must be in"):
        symmetric_flips(part, alpha, key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("c", [0.2, 1.2])
def test_bad_c_max(c):
    part = partition([5, 5, 5, 5], n_classes=4)  # 1/(K-1) = 1/3
    with pytest.raises(ValueError, match="c_max must be in"):
        concentrated_flips(part, 0.3, c, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="c_max must be in"):
        check_c_max(c, 4)


def test_bad_sigma_and_K():
    Y = partition([5, 5], n_classes=2).labels()
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_noise(Y, -1.0, key=jax.random.PRNGKey(0))
    one_class = partition([5, 5], n_classes=1)
    with pytest.raises(ValueError, match="K .* must be >= 2"):
        symmetric_flips(one_class, 0.2, key=jax.random.PRNGKey(0))


def test_bad_class_map():
    part = partition([5, 5, 5], n_classes=3)
    with pytest.raises(ValueError, match="class_map"):
        asymmetric_flips(part, 0.2, [0, 2, 1], key=jax.random.PRNGKey(0))  # class 0 -> 0
    with pytest.raises(ValueError, match="class_map"):
        asymmetric_flips(part, 0.2, [1, 2], key=jax.random.PRNGKey(0))
