"""The linear head (theory/head.py) and the head bounds (theory/bounds.py, linear-head section).

Guards C30-C32 (Eq. 13 and Eq. 3 identities), C44 (GD converges to ridge), the bad-input rules.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import bounds
from theory import strategies as S
from theory.graph import balanced_partition, make_graph, partition
from theory.head import (
    accuracy,
    bias_variance,
    expected_risk,
    monte_carlo_risk,
    information_nuisance,
    ridge_hat,
    mixture_inputs,
    random_features,
    recovery,
    ridge_head,
    shrinkage,
    singular_basis,
    spectral_predictions,
    train_head,
)
from theory.noise import asymmetric_flips, symmetric_flips
from theory.representation import normalized_adjacency, optimal_representation


# A few shapes only: every new (n, p) recompiles the jitted head functions.
SHAPES = st.sampled_from([(12, 4), (25, 9)])


@settings(max_examples=25, deadline=None)
@given(SHAPES, st.integers(2, 5), st.floats(0.0, 3.0), st.integers(0, 2**32 - 1))
def test_eq13_equals_exact_expectation_for_any_orthonormal_V_and_b(shape, K, sigma, seed):
    """C31: Eq. 13 with any b in [0, 1) and orthonormal V equals the expectation computed from
    H = V diag(b) V^T directly, (||(I-H)Y||^2 + sigma^2 ||H||_F^2)/n, to round-off."""
    n, p = shape
    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((n, p)))
    b = rng.uniform(0.0, 1.0, p)
    Y = np.eye(K)[rng.integers(0, K, n)]
    Y = np.pad(Y, ((0, 0), (0, 5 - K)))  # one shape for every K (zero columns change nothing)
    # eigenvalues with b_i = lambda_i/(lambda_i + beta) at beta = 1: lambda_i = b_i/(1 - b_i)
    lam = b / (1.0 - b)
    formula = bias_variance(jnp.asarray(V), jnp.asarray(lam), jnp.asarray(Y), 1.0, sigma)
    direct = expected_risk(jnp.asarray(V @ (b[:, None] * V.T)), jnp.asarray(Y), sigma)
    assert float(formula.bias2) == pytest.approx(float(direct.bias2), abs=1e-12)
    assert float(formula.variance) == pytest.approx(float(direct.variance), abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.one_of(S.representations(partition=partition([6, 6], n_classes=2), tail_len=2),
                 S.representations(partition=partition([8, 8, 9], n_classes=3), tail_len=6)), st.floats(0.0, 10.0))
def test_ridge_closed_form_equals_b_form(r, beta):
    """C32: F (F^T F + beta I)^{-1} F^T Y = V B V^T Y with b_i = s_i^2/(s_i^2 + beta), on planted spectra
    (K-bar prominent values above a power-law tail) of shapes (12, 4) and (25, 9)."""
    n, p = r.F.shape
    F = jnp.asarray(r.F)
    Y = jnp.asarray(np.random.default_rng(r.seed).standard_normal((n, 3)))
    beta = beta + 1e-3  # a planted F has full column rank; keep the solve well posed
    V, lam = singular_basis(F)
    np.testing.assert_allclose(np.asarray(F @ ridge_head(F, Y, beta)), np.asarray(spectral_predictions(V, lam, Y, beta)),
                               atol=1e-9)
    np.testing.assert_allclose(np.asarray(ridge_hat(F, beta) @ Y), np.asarray(F @ ridge_head(F, Y, beta)), atol=1e-9)


def test_eq13_matches_monte_carlo_on_the_optimal_representation():
    """C30 at a small size: MC mean within 4 sample-std / sqrt(trials) of Eq. 13."""
    part = balanced_partition(4, 10, 2)
    W = make_graph(jax.random.PRNGKey(0), part, 0.1, 0.0)
    S = optimal_representation(normalized_adjacency(W), 12)
    Y = part.labels()
    beta, sigma, T = 0.1, 1.5, 4000
    H = ridge_hat(S.F, beta)
    dY = sigma / np.sqrt(2) * jax.random.normal(jax.random.PRNGKey(1), (T, part.n, 2), dtype=jnp.float64)
    r = np.asarray(jnp.sum((Y[None] - jnp.einsum("ij,tjk->tik", H, Y[None] + dY)) ** 2, axis=(1, 2)) / part.n)
    formula = bias_variance(S.eigvecs, S.eigvals, Y, beta, sigma).risk
    assert abs(r.mean() - formula) <= 4 * r.std(ddof=1) / np.sqrt(T)


def test_gd_on_mse_converges_to_ridge():
    """C44: full-batch GD with eta = 1/L reaches the Eq. 3 solution at the linear rate."""
    key = jax.random.PRNGKey(3)
    F = jax.random.normal(key, (40, 8), dtype=jnp.float64) / 4
    part = partition([10, 10, 10, 10], n_classes=4)
    fl = symmetric_flips(part, 0.3, key=jax.random.PRNGKey(4))
    beta = 0.05
    tr = train_head(F, fl.Y_noisy, part.class_of_point, beta=beta, steps=2000)
    W_star = ridge_head(F, fl.Y_noisy, beta)
    ev = np.linalg.eigvalsh(np.asarray(F.T @ F))
    bound = (1 - (ev[0] + beta) / (ev[-1] + beta)) ** 2000 * float(jnp.linalg.norm(W_star))
    assert float(jnp.linalg.norm(tr.W - W_star)) <= bound + 1e-12
    assert float(jnp.linalg.norm(tr.W - W_star)) < 1e-8
    # the objective decreases monotonically under GD with step 1/L
    assert np.all(np.diff(tr.loss) <= 1e-9 * np.abs(tr.loss[:-1]))


def test_sgd_and_ce_train_and_record():
    part = balanced_partition(4, 15, 2)
    W = make_graph(jax.random.PRNGKey(0), part, 0.0, 0.0)
    S = optimal_representation(normalized_adjacency(W), 8)
    fl = asymmetric_flips(part, 0.3, [1, 0], key=jax.random.PRNGKey(1))
    for loss in ("mse", "ce"):
        tr = train_head(S.F, fl.Y_noisy, part.class_of_point, beta=0.1, loss=loss, steps=200, batch_size=20,
                        key=jax.random.PRNGKey(2))
        assert tr.acc_clean.shape == (201,) and tr.acc_clean[0] == 0.0  # W = 0: every score ties
        # below the Thm 4.5 threshold (0.3 < 1/2) with delta = 0 the head ends on the clean labels
        assert tr.acc_clean[-1] == 1.0
        assert tr.fit_flipped[-1] == 0.0


def test_ridge_head_recovers_labels_below_threshold_and_not_above():
    """Thm 4.5 at delta = xi = 0, balanced, c_max = 1: threshold 1/2 (C37, C39)."""
    part = balanced_partition(6, 20, 3)
    W = make_graph(jax.random.PRNGKey(0), part, 0.0, 0.0)
    S = optimal_representation(normalized_adjacency(W), 12)
    for alpha, expect in ((0.45, 1.0), (0.55, None)):
        fl = asymmetric_flips(part, alpha, [1, 2, 0], key=jax.random.PRNGKey(1))
        Z = spectral_predictions(S.eigvecs, S.eigvals, fl.Y_noisy, 1e-3)
        acc = float(np.mean(np.argmax(np.asarray(Z), 1) == part.class_of_point))
        assert fl.alpha < bounds.flip_threshold(fl.c_max) if expect else fl.alpha > bounds.flip_threshold(fl.c_max)
        if expect:
            assert acc == 1.0
        else:
            assert acc == 0.0  # every sub-class's plurality is the wrong class


def test_information_nuisance_split_is_pythagorean():
    key = jax.random.PRNGKey(0)
    F = jax.random.normal(key, (30, 6), dtype=jnp.float64)
    y = jax.random.normal(jax.random.PRNGKey(1), (30, 2), dtype=jnp.float64)
    sp = information_nuisance(F, y, 3)
    assert float(sp.information**2 + sp.nuisance**2) == pytest.approx(float(jnp.sum(y**2)))
    with pytest.raises(ValueError, match="k must be in"):
        information_nuisance(F, y, 7)


def test_head_bounds_reduce_to_the_leading_terms_at_delta_zero():
    assert bounds.bias_bound_eq15(1.0, 0.0, 100, 10) == (0.25, 0.0)
    leading, delta_term = bounds.variance_bound_a3(1.0, 0.0, 2.0, 100, 10, 20)
    assert float(leading) == pytest.approx(4 * 0.1 / 4) and float(delta_term) == 0.0
    assert bounds.variance_bound_a3(0.0, 0.01, 1.0, 100, 10, 20)[1] == float("inf")
    # the delta' and delta forms agree to first order
    a = bounds.bias_bound_eq15(0.5, 1e-6, 100, 10)[1]
    b = bounds.bias_bound_eq15(0.5, 1e-6, 100, 10, in_delta_prime=True)[1]
    assert float(a) == pytest.approx(float(b), rel=1e-5)
    assert float(bounds.symmetric_flip_threshold(4, 1.0)) == pytest.approx(float(bounds.flip_threshold(1 / 3, 1.0)))
    assert float(bounds.flip_threshold_eq18(1.0, 0.0, 1.0, 10, 10, 20)) == pytest.approx(0.5)


def test_bad_inputs():
    F = jnp.eye(4, 2, dtype=jnp.float64)
    Y = jnp.ones((4, 2))
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ridge_head(F, Y, -1.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        shrinkage(jnp.ones(2), -0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        bias_variance(F, jnp.ones(2), Y, 0.1, -1.0)
    with pytest.raises(ValueError, match="loss must be"):
        train_head(F, Y, np.zeros(4, int), loss="hinge")
    with pytest.raises(ValueError, match="batch_size"):
        train_head(F, Y, np.zeros(4, int), batch_size=10)


def test_public_functions_trace_under_jit_and_vmap():
    """Every public function of theory/head.py, of the linear-head section of theory/bounds.py, and
    theory.noise.gaussian_noise jits and vmaps over a parameter (beta, sigma or delta), and agrees
    with the same function called value by value."""
    from theory.noise import gaussian_noise
    from theory.representation import degree_weighted

    part = balanced_partition(3, 6, 2)
    W = make_graph(jax.random.PRNGKey(0), part, 0.1, 0.01)
    S = optimal_representation(normalized_adjacency(W), 6)
    Y, clean = part.labels(), part.class_of_point
    fl = symmetric_flips(part, 0.3, key=jax.random.PRNGKey(1))
    betas = jnp.asarray([0.01, 0.1, 1.0])
    cases = {
        "ridge_head": lambda b: ridge_head(S.F, Y, b),
        "ridge_hat": lambda b: ridge_hat(S.F, b),
        "shrinkage": lambda b: shrinkage(S.eigvals, b),
        "spectral_predictions": lambda b: spectral_predictions(S.eigvecs, S.eigvals, Y, b),
        "bias_variance": lambda b: bias_variance(S.eigvecs, S.eigvals, Y, b, 2.0 * b),
        "expected_risk": lambda s: expected_risk(ridge_hat(S.F, 0.1), Y, s),
        "monte_carlo_risk": lambda b: monte_carlo_risk(S.F, Y, b, 2.0 * b, key=jax.random.PRNGKey(5), trials=8),
        "recovery": lambda b: recovery(S.eigvecs, S.eigvals, fl.Y_noisy, clean, b),
        "accuracy": lambda b: accuracy(spectral_predictions(S.eigvecs, S.eigvals, fl.Y_noisy, b), clean),
        "singular_basis": lambda b: singular_basis(b * S.F),
        "information_nuisance": lambda b: information_nuisance(b * S.F, Y, 3)[:2],
        "degree_weighted": lambda b: degree_weighted(S.F, W + b),
        "random_features": lambda b: b * random_features(part.n, 4, key=jax.random.PRNGKey(2)),
        "mixture_inputs": lambda b: mixture_inputs(part, 4, key=jax.random.PRNGKey(3), spread=b),
        "gaussian_noise": lambda s: gaussian_noise(Y, s, key=jax.random.PRNGKey(4)).Y_noisy,
        "bias_bound_eq15": lambda b: bounds.bias_bound_eq15(b, 0.05, 18, 3),
        "variance_leading": lambda b: bounds.variance_leading(b, 1.0, 18, 3),
        "variance_bound_a3": lambda b: bounds.variance_bound_a3(b, 0.05, 1.0, 18, 3, 6),
        "head_delta_prime": lambda d: bounds.head_delta_prime(d),
        "flip_threshold": lambda c: bounds.flip_threshold(c, 2.0),
        "symmetric_flip_threshold": lambda r: bounds.symmetric_flip_threshold(4, 1.0 + r),
        "perron_entry_bounds": lambda d: bounds.perron_entry_bounds(6, 12, d),
        "flip_threshold_eq18": lambda b: bounds.flip_threshold_eq18(b, 0.01, 1.0, 30, 30, 32),
        "gd_rate_bound": lambda m: bounds.gd_rate_bound(2.0, m, 1.0, 50),
        "flip_perturbation_scale": lambda d: bounds.flip_perturbation_scale(d, 0.1 * d, 8),
    }
    for name, fn in cases.items():
        batched = jax.jit(jax.vmap(fn))(betas)
        for i, b in enumerate(betas):
            one = fn(float(b))
            jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(np.asarray(x)[i], np.asarray(y), rtol=1e-10,
                                                                          atol=1e-12, err_msg=name), batched, one)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=12))
def test_recovery_boundary_is_the_last_alpha_before_the_first_failure(points):
    """recovery_boundary = the largest alpha a with every alpha_i <= a recovered (brute force over the alphas)."""
    from theory.head import recovery_boundary

    alpha = np.asarray([a / 6 for a, _ in points])
    ok = np.asarray([o for _, o in points])
    brute = max([a for a in np.unique(alpha) if ok[alpha <= a].all()], default=0.0)
    assert float(recovery_boundary(alpha, ok)) == pytest.approx(float(brute))


@pytest.mark.parametrize("kind", ["two-level", "hub"])
def test_extremal_graphs_sit_at_the_edge_of_assumption_41(kind):
    """The structured W used for tightness have realized delta exactly delta and xi = 0."""
    from theory.graph import extremal_graph, measure_delta, measure_xi

    part = partition([6, 9, 7], n_classes=2)
    W = extremal_graph(part, 0.3, kind)
    assert float(measure_delta(W, part)) == pytest.approx(0.3) and measure_xi(W, part) == 0.0
    with pytest.raises(ValueError, match="kind must be"):
        extremal_graph(part, 0.3, "star")


def test_monte_carlo_risk_is_unbiased_for_eq13_and_reproducible():
    """The mean of monte_carlo_risk lies within 4 standard errors of Eq. 13 (C30's band, MC_C = 4); the same key
    gives the same draws; bad ``trials`` is refused."""
    from theory.head import monte_carlo_risk

    part = balanced_partition(3, 6, 2)
    S = optimal_representation(normalized_adjacency(make_graph(jax.random.PRNGKey(0), part, 0.1, 0.0)), 6)
    Y = part.labels()
    r = np.asarray(monte_carlo_risk(S.F, Y, 0.1, 1.5, key=jax.random.PRNGKey(7), trials=4000))
    exact = float(bias_variance(S.eigvecs, S.eigvals, Y, 0.1, 1.5).risk)
    assert abs(r.mean() - exact) <= 4.0 * r.std(ddof=1) / np.sqrt(r.size)
    assert abs(r.mean() - exact) > 0  # a real Monte-Carlo estimate, not the formula
    np.testing.assert_array_equal(r[:10], np.asarray(monte_carlo_risk(S.F, Y, 0.1, 1.5, key=jax.random.PRNGKey(7), trials=4000))[:10])
    with pytest.raises(ValueError, match="trials"):
        monte_carlo_risk(S.F, Y, 0.1, 1.5, key=jax.random.PRNGKey(7), trials=1)
