"""Theory-level tests of theory/bounds.py and the spectra it is held against (theory/representation.py):
Appendix A and B's explicit bounds on drawn graphs, the order test's power, and that the public theory
functions trace under jit and vmap. Imports no check module."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import bounds, tolerances
from theory.graph import make_graph, measure_delta, measure_xi, partition
from theory.losses import check_minimizer
from theory.representation import (block_normalized_adjacency, block_perturbation, block_spectra, canonical_basis,
                                   normalized_adjacency, perron_space, sym_norm2, top_eigh)

ATOL = tolerances.eig_atol("float64")
RTOL = tolerances.bound_rtol("float64")


def _graph(sizes, delta, xi, seed):
    part = partition(sizes, n_classes=2)
    W = make_graph(jax.random.PRNGKey(seed), part, delta, xi)
    Ab = np.asarray(block_normalized_adjacency(W, part))
    blocks = [Ab[lo:hi, lo:hi] for lo, hi in zip(part.offsets[:-1], part.offsets[1:])]
    return part, W, block_spectra(blocks, min(2 * part.n_sub, part.n - 1))


@settings(max_examples=12)
@given(sizes=st.lists(st.integers(3, 12), min_size=2, max_size=4), delta=st.floats(0, 0.9), seed=st.integers(0, 2**31 - 1))
def test_appendix_a_bounds_hold_at_xi_zero(sizes, delta, seed):
    part, W, spec = _graph(sizes, delta, 0.0, seed)
    d = measure_delta(np.asarray(W), part)
    assert d <= delta + 1e-12
    lam, V = top_eigh(normalized_adjacency(W), part.n_sub)
    assert float(jnp.max(jnp.abs(lam - 1.0))) <= ATOL  # C1, Lemma A.2
    assert max(spec.col_ratio) <= bounds.column_ratio_bound(d) * (1 + RTOL)  # C2, Lemma A.1
    assert max(spec.perron_ratio) <= bounds.perron_ratio_bound(d) * (1 + RTOL)  # C3, Minc
    sizes = np.asarray(part.sizes)
    assert np.all(np.asarray(spec.l1_sq) >= bounds.perron_l1_sq_lower(sizes, d) * (1 - RTOL))  # C4
    assert np.all(np.asarray(spec.eig_sq_sum) <= bounds.block_eig_sq_sum_upper(sizes, d) * (1 + RTOL))  # C5
    assert np.all(np.asarray(spec.eig2) <= bounds.block_eig_upper(sizes, d) + ATOL)  # C6
    Y = np.asarray(part.labels())
    align = float(np.sum((np.asarray(V).T @ Y) ** 2))
    assert abs(align - sum(spec.l1_sq)) <= ATOL * part.n  # C10, the alignment identity
    assert align / part.n >= bounds.alignment_lower_exact(sizes, d) - ATOL  # C11 via Lemma A.3
    e_min, e_max, ratio = bounds.perron_entry_bounds(min(sizes), max(sizes), d)  # C22-C24, Lemma A.8
    assert min(float(v.min()) for v in spec.perron) >= e_min * (1 - RTOL)
    assert max(float(v.max()) for v in spec.perron) <= e_max * (1 + RTOL)
    assert max(float(v.max() / v.min()) for v in spec.perron) <= ratio * (1 + RTOL)
    assert np.allclose(perron_space(spec.perron, part).T @ perron_space(spec.perron, part), np.eye(part.n_sub))


@settings(max_examples=12)
@given(size=st.integers(4, 12), n_sub=st.integers(2, 5), delta=st.floats(0, 0.5), xi=st.floats(1e-5, 0.05),
       seed=st.integers(0, 2**31 - 1))
def test_appendix_b_explicit_bounds_hold_for_xi_positive(size, n_sub, delta, xi, seed):
    part, W, _ = _graph([size] * n_sub, delta, xi, seed)
    x = measure_xi(np.asarray(W), part)
    assert 0 < x <= xi + 1e-12
    pert = block_perturbation(W, part)
    assert float(pert.h_ratio) <= x * (1 + RTOL)  # C13: h_ij <= xi / sqrt(n_i n_j)
    assert float(pert.H_fro) <= bounds.offblock_fro_upper(n_sub, x) * (1 + RTOL)  # C14
    At, Ab = normalized_adjacency(W), block_normalized_adjacency(W, part)
    lam, V = top_eigh(At, n_sub + 1)
    e2 = float(sym_norm2(At - Ab))
    assert float(lam[0]) >= 1 - ATOL and float(jnp.max(lam[:n_sub])) <= 1 + ATOL  # C16: lambda~_i <= 1
    assert float(jnp.min(lam[:n_sub])) >= 1 - e2 - ATOL  # C16: Weyl
    Y = part.labels()
    align = float(jnp.sum((V[:, :n_sub].T @ Y) ** 2))
    from theory.head import bias_variance
    for beta in (1e-3, 0.1, 1.0):  # C27: App. B.2's bias bound (exact, no O-term)
        bias2 = bias_variance(V, jnp.maximum(lam, 0.0), Y, beta, 0.0).bias2
        assert bias2 <= bounds.appendix_b_bias_upper(beta, float(lam[n_sub - 1]), align, part.n) + RTOL


def test_order_test_has_power_against_half_an_order():
    x = np.geomspace(1e-5, 1e-1, 9)
    key = jax.random.PRNGKey(0)
    exact = bounds.loglog_order(x, 3 * x * (1 + 0.01 * np.sin(np.arange(9))), key=key)
    assert float(exact.lo) <= 1.0 <= float(exact.hi) + tolerances.ORDER_SLACK
    half = bounds.loglog_order(x, 3 * x + 3 * x[-1] ** 0.5 * x**0.5, key=key)  # + a term of order 1/2
    assert float(half.hi) < 1.0 - tolerances.ORDER_SLACK
    assert abs(float(half.decades) - 4.0) < 1e-12 and int(half.n_used) == 9


def test_order_fit_gives_one_intercept_per_group():
    x = np.tile(np.geomspace(1e-3, 1.0, 6), 2)
    y = np.concatenate([x[:6] ** 2, 1e4 * x[6:] ** 2])
    fit = bounds.loglog_order(x, y, key=jax.random.PRNGKey(0), groups=np.repeat([0, 1], 6), n_groups=2)
    assert abs(float(fit.slope) - 2.0) < 1e-12 and float(fit.hi - fit.lo) < 1e-9


def test_theory_functions_trace_under_jit_and_vmap():
    key = jax.random.PRNGKey(0)
    x = jnp.geomspace(1e-4, 1.0, 8)
    slopes = jax.vmap(lambda q: bounds.loglog_order(x, x**q, key=key, n_boot=200).slope)(jnp.array([0.5, 1.0, 2.0]))
    assert np.allclose(slopes, [0.5, 1.0, 2.0])
    assert np.isclose(jax.jit(lambda y: bounds.loglog_order(x, y, key=key).slope)(x**1.5), 1.5)
    part = partition([6, 7, 8], n_classes=2)
    Ws = jax.vmap(lambda k: make_graph(k, part, 0.1, 1e-3))(jax.random.split(key, 3))
    fro = jax.vmap(lambda W: block_perturbation(W, part).E_fro)(Ws)
    assert fro.shape == (3,) and np.allclose(fro, [float(block_perturbation(W, part).E_fro) for W in Ws])
    lam, V = top_eigh(normalized_adjacency(Ws[0]), 5)
    assert np.allclose(jax.jit(canonical_basis)(lam, V), canonical_basis(lam, V))
    chk = jax.jit(lambda W, lam, V: check_minimizer(W, lam, V, key=key, n_perturb=8))(Ws[0], lam, V)
    assert float(chk.min_excess) >= -1e-12 and abs(float(chk.at_min - chk.optimum)) < 1e-10


def test_theorem_43_bounds_trace_under_jit_vmap_and_grad():
    deltas = jnp.array([0.01, 0.1, 0.3])
    fns = (bounds.delta_prime, bounds.column_ratio_bound, bounds.eq12_leading, lambda d: bounds.perron_l1_sq_lower(10, d),
           lambda d: bounds.block_eig_upper(10, d), lambda d: bounds.cor_a6_block_leading(3, d),
           lambda d: bounds.cor_a6_global_leading(12, 4, d), lambda d: bounds.alignment_lower_exact([5, 6, 7], d),
           lambda d: bounds.alignment_lower_leading([5, 6, 7], d), lambda x: bounds.perturbation_scale(4, x),
           lambda x: bounds.offblock_fro_upper(4, x), lambda x: bounds.alignment_drop_scale(40, 4, x),
           lambda x: bounds.within_block_change_scale(40, 4, 0.1, x), lambda b: bounds.appendix_b_bias_upper(b, 0.99, 10.0, 12))
    for f in fns:
        eager = np.array([float(f(float(d))) for d in deltas])
        assert np.allclose(jax.vmap(f)(deltas), eager) and np.isclose(jax.jit(f)(deltas[1]), eager[1])
        assert np.isfinite(float(jax.grad(f)(deltas[1])))


def test_canonical_basis_does_not_depend_on_the_basis_of_a_repeated_eigenvalue():
    part = partition([9, 10, 11, 12], n_classes=2)
    lam, V = top_eigh(normalized_adjacency(make_graph(jax.random.PRNGKey(1), part, 0.1, 0.0)), 7)
    assert float(jnp.max(jnp.abs(lam[:4] - 1.0))) < ATOL  # a four-fold eigenvalue 1
    rng = np.random.default_rng(0)
    R = np.eye(7)
    R[:4, :4] = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    R[5, 5] = -1.0
    C0, C1 = canonical_basis(lam, V), canonical_basis(lam, jnp.asarray(np.asarray(V) @ R))
    assert float(jnp.max(jnp.abs(C0 - C1))) < 1e-12
    assert float(jnp.max(jnp.abs(C0.T @ C0 - jnp.eye(7)))) < 1e-12  # still orthonormal eigenvectors
    A = normalized_adjacency(make_graph(jax.random.PRNGKey(1), part, 0.1, 0.0))
    assert float(jnp.max(jnp.abs(A @ C0 - C0 * lam[None, :]))) < 1e-12
