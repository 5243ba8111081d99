"""Theory-level tests of theory/bounds.py and the spectra it is held against (theory/representation.py):
Appendix A and B's explicit bounds on drawn graphs, the order test's power, and that the public theory
functions trace under jit and vmap. Imports no check module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import bounds, tolerances
from theory import strategies as S
from theory.graph import extremal_graph, make_graph, measure_delta, measure_xi, partition
from theory.losses import check_minimizer
from theory.representation import (block_normalized_adjacency, block_perturbation, block_spectra, canonical_basis,
                                   normalized_adjacency, perron_space, sym_norm2, top_eigh)

ATOL = tolerances.eig_atol("float64")
RTOL = tolerances.bound_rtol("float64")


def _spectra(g):
    part = g.part
    Ab = np.asarray(block_normalized_adjacency(g.dense(), part))
    blocks = [Ab[lo:hi, lo:hi] for lo, hi in zip(part.offsets[:-1], part.offsets[1:])]
    return block_spectra(blocks, min(2 * part.n_sub, part.n - 1))


# Random graphs and the tightest constructions (two-level, hub, gradient-ascent blocks): the bounds must hold
# at the edge of Assumption 4.1, not only on random matrices.
@settings(max_examples=12)
@given(g=S.augmentation_graphs(partition=S.partitions(n_classes=2, n_sub=(2, 4), sizes=(3, 12)), delta=(0.0, 0.9),
                               xi=0.0, kinds=("random", "two-level", "hub", "ascent")))
def test_appendix_a_bounds_hold_at_xi_zero(g):
    part, W, spec = g.part, g.W, _spectra(g)
    d = measure_delta(np.asarray(W), part)
    S.assert_bound(d, g.delta_max, "<=", atol=tolerances.METER_ATOL, what="realized delta")
    lam, V = top_eigh(normalized_adjacency(W), part.n_sub)
    S.assert_bound(lam, 1.0, "==", rtol=0.0, atol=ATOL, what="top K-bar eigenvalues")  # C1, Lemma A.2
    S.assert_bound(max(spec.col_ratio), bounds.column_ratio_bound(d), what="column ratio")  # C2, Lemma A.1
    S.assert_bound(max(spec.perron_ratio), bounds.perron_ratio_bound(d), what="Perron ratio")  # C3, Minc
    sizes = np.asarray(part.sizes)
    S.assert_bound(spec.l1_sq, bounds.perron_l1_sq_lower(sizes, d), ">=", what="||v_k||_1^2")  # C4, Lemma A.3
    S.assert_bound(spec.eig_sq_sum, bounds.block_eig_sq_sum_upper(sizes, d), what="sum lambda_k,i^2")  # C5
    S.assert_bound(spec.eig2, bounds.block_eig_upper(sizes, d), rtol=0.0, atol=ATOL, what="lambda_k,2")  # C6
    Y = np.asarray(part.labels())
    align = float(np.sum((np.asarray(V).T @ Y) ** 2))
    assert abs(align - sum(spec.l1_sq)) <= ATOL * part.n  # C10, the alignment identity
    assert align / part.n >= bounds.alignment_lower_exact(sizes, d) - ATOL  # C11 via Lemma A.3
    e_min, e_max, ratio = bounds.perron_entry_bounds(min(sizes), max(sizes), d)  # C22-C24, Lemma A.8
    S.assert_bound(min(float(v.min()) for v in spec.perron), e_min, ">=", what="smallest Perron entry")
    S.assert_bound(max(float(v.max()) for v in spec.perron), e_max, what="largest Perron entry")
    S.assert_bound(max(float(v.max() / v.min()) for v in spec.perron), ratio, what="Perron entry ratio")
    assert np.allclose(perron_space(spec.perron, part).T @ perron_space(spec.perron, part), np.eye(part.n_sub))


# xi > 0: random graphs, the constructions whose every cross weight is xi (two-level, hub: the edge of
# Assumption 4.2) and matrix-free structured graphs (formed densely here).
@settings(max_examples=12)
@given(g=S.augmentation_graphs(partition=S.partitions(n_sub=(2, 5), sizes=(4, 12), balanced=True), delta=(0.0, 0.5),
                               xi=(1e-5, 0.05), kinds=("random", "two-level", "hub", "structured")))
def test_appendix_b_explicit_bounds_hold_for_xi_positive(g):
    part, W, n_sub = g.part, g.dense(), g.part.n_sub
    x = measure_xi(W, part)
    assert 0 < x
    S.assert_bound(x, g.xi_max, "<=", atol=tolerances.METER_ATOL, what="realized xi")
    pert = block_perturbation(W, part)
    S.assert_bound(float(pert.h_ratio), x, what="max h_ij sqrt(n_i n_j)")  # C13: h_ij <= xi / sqrt(n_i n_j)
    S.assert_bound(float(pert.H_fro), bounds.offblock_fro_upper(n_sub, x), what="||H||_F")  # C14
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
        S.assert_bound(float(bias2), bounds.appendix_b_bias_upper(beta, float(lam[n_sub - 1]), align, part.n), rtol=0.0,
                       atol=RTOL, what=f"bias^2 at beta={beta}")


@settings(max_examples=10)
@given(part=S.partitions(n_classes=1, n_sub=1, sizes=(4, 12)), sw=S.sweeps(top=(1e-2, 0.3)),
       kind=st.sampled_from(["two-level", "hub"]))
def test_eq12_tail_is_order_delta_on_the_extremal_blocks(part, sw, kind):
    """Eq. 12 read as an order: sum_{i>=2} lambda_i^2 = O(delta) as delta -> 0, on the constructions at the edge
    of Assumption 4.1, over a drawn sweep (the project's order test); the same sweep rejects O(delta^3)."""
    def tail(delta):
        W = np.asarray(extremal_graph(part, float(delta), kind))
        d = W.sum(axis=1)
        return float(np.sum(np.sort(np.linalg.eigvalsh(W / np.sqrt(d[:, None] * d[None, :])))[:-1] ** 2))

    tails = [tail(d) for d in sw.x]
    S.assert_order(sw.x, tails, 1.0, what="sum_{i>=2} lambda_i^2", label="delta")
    with pytest.raises(AssertionError, match="lies above the interval"):
        S.assert_order(sw.x, tails, 3.0, what="sum_{i>=2} lambda_i^2", label="delta")


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
