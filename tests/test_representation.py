"""The optimal representation (theory/representation.py, theory/losses.py): eigensolvers, F_min, loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from theory import strategies as S
from theory import tolerances
from theory.graph import balanced_partition, make_graph, make_structured_graph, partition
from theory.losses import matrix_factorization_loss, representation_from_factor, spectral_contrastive_loss
from theory.representation import (
    alignment,
    normalized_adjacency,
    normalized_operator,
    optimal_representation,
    principal_angle_sines,
    top_eigh,
)


def test_lanczos_agrees_with_dense_on_a_matrix_free_graph():
    part = balanced_partition(12, 40, 4)
    g = make_structured_graph(jax.random.PRNGKey(0), part, 0.1, 1e-3, rank=4)
    p = 20
    lam_d, V_d = top_eigh(normalized_adjacency(g.dense()), p, method="dense")
    lam_l, V_l = top_eigh(normalized_operator(g), p, method="lanczos")
    assert float(jnp.max(jnp.abs(lam_d - lam_l))) <= tolerances.LANCZOS_VS_DENSE
    # the top K-bar space (eigenvalues near-degenerate) agrees as a subspace
    assert float(principal_angle_sines(V_d[:, :12], V_l[:, :12])[0]) < 1e-6


@pytest.mark.slow
def test_lanczos_agrees_with_dense_at_n_3000():
    part = balanced_partition(30, 100, 10)
    g = make_structured_graph(jax.random.PRNGKey(1), part, 0.05, 1e-5)
    lam_d, _ = top_eigh(normalized_adjacency(g.dense()), 50, method="dense")
    lam_l, _ = top_eigh(normalized_operator(g), 50, method="lanczos")
    assert float(jnp.max(jnp.abs(lam_d - lam_l))) <= tolerances.LANCZOS_VS_DENSE


@settings(max_examples=15)
@given(g=S.augmentation_graphs(partition=S.partitions(n_classes=2, n_sub=(2, 5), sizes=(3, 10)), delta=(0.0, 0.5),
                               xi=(0.0, 0.05), kinds=("random", "two-level", "hub")))
def test_singular_values_of_F_are_root_eigenvalues(g):
    part = g.part
    Abar = normalized_adjacency(g.W)
    rep = optimal_representation(Abar, part.n_sub + 1, n_sub=part.n_sub)
    sv = jnp.linalg.svd(rep.F, compute_uv=False)
    np.testing.assert_allclose(np.sort(sv)[::-1], rep.singular_values, atol=1e-10)
    # F F^T is the best rank-p PSD approximation: its residual is the discarded spectrum
    lam_all = jnp.linalg.eigvalsh(Abar)
    resid = float(jnp.sum((Abar - rep.F @ rep.F.T) ** 2))
    kept = np.sort(np.asarray(lam_all))[::-1][: part.n_sub + 1]
    expected = float(jnp.sum(lam_all**2)) - float(np.sum(np.maximum(kept, 0) ** 2))
    assert resid == pytest.approx(expected, rel=1e-9, abs=1e-10)


@settings(max_examples=10)
@given(g=S.augmentation_graphs(partition=partition([5, 7, 6], n_classes=2), delta=(0.0, 0.5), xi=(0.0, 0.2),
                               kinds=("random", "two-level", "hub")))
def test_population_loss_equals_factorization_loss_and_is_minimized(g):
    W, seed = jnp.asarray(g.W), g.seed
    Abar = normalized_adjacency(W)
    p = 4
    rep = optimal_representation(Abar, p)
    f_min = representation_from_factor(rep.F, W)
    at_min = spectral_contrastive_loss(f_min, W)
    assert float(at_min) == pytest.approx(float(matrix_factorization_loss(rep.F, Abar)), rel=1e-10)
    assert float(at_min) == pytest.approx(-float(jnp.sum(jnp.maximum(rep.eigvals, 0) ** 2)), rel=1e-10)
    G = jax.random.normal(jax.random.PRNGKey(seed + 1), f_min.shape, dtype=jnp.float64)
    for eps in (1e-3, 1e-1):
        assert float(spectral_contrastive_loss(f_min + eps * G, W)) >= float(at_min) - 1e-12


def test_alignment_is_one_at_xi_zero_delta_zero():
    part = partition([4, 6, 5, 5], n_classes=2)
    Abar = normalized_adjacency(make_graph(jax.random.PRNGKey(0), part, 0.0, 0.0))
    rep = optimal_representation(Abar, part.n_sub)
    assert float(alignment(rep.eigvecs, part.labels())) == pytest.approx(1.0, abs=1e-12)


def test_principal_angles_are_rotation_invariant():
    Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (20, 4), dtype=jnp.float64))
    R, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (4, 4), dtype=jnp.float64))
    assert float(principal_angle_sines(Q, Q @ R)[0]) < 1e-7
    Q2, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(2), (20, 4), dtype=jnp.float64))
    assert float(principal_angle_sines(Q, Q2)[0]) > 0.1


def test_bad_p():
    part = partition([4, 6, 5], n_classes=2)
    Abar = normalized_adjacency(make_graph(jax.random.PRNGKey(0), part, 0.1, 0.0))
    with pytest.raises(ValueError, match="p must be >= K-bar=3"):
        optimal_representation(Abar, 2, n_sub=3)
    with pytest.raises(ValueError, match="p must be in \\[1, n=15\\], got 0"):
        top_eigh(Abar, 0)
    with pytest.raises(ValueError, match="method must be"):
        top_eigh(Abar, 2, method="qr")
