"""theory/tightness.py: the ascent stays inside Assumption 4.1, its scores equal the full measurements
on K-bar copies of the block, and it finds blocks at least as tight as the two-level construction."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from theory import bounds, tightness
from theory.graph import balanced_partition, partition, extremal_graph, measure_delta, measure_xi
from theory.head import bias_variance
from theory.representation import block_normalized_adjacency, normalized_adjacency, optimal_representation, sym_norm2


def _normalized(B):
    d = B.sum(axis=1)
    return B / np.sqrt(d[:, None] * d[None, :])


def test_block_spectrum_matches_numpy_and_its_perron_vector_closed_form():
    B = np.asarray(tightness.block_from_logits(jax.random.normal(jax.random.PRNGKey(0), (9, 9)), 0.3))
    lam, c = (np.asarray(a) for a in tightness.block_spectrum(B))
    w, U = np.linalg.eigh(_normalized(B))
    np.testing.assert_allclose(lam, w[::-1], atol=1e-12)
    np.testing.assert_allclose(c, U[:, ::-1].sum(axis=0) ** 2, atol=1e-12)
    assert lam[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("delta", [0.01, 0.2])
def test_ascent_stays_in_the_assumption_and_beats_two_level(delta):
    m = 12
    part = balanced_partition(1, m, 1)
    B = np.asarray(tightness.ascend_block(tightness.tail_sq, m, delta, key=jax.random.PRNGKey(1)))
    assert np.allclose(B, B.T) and B.min() >= 1.0 and B.max() <= 1.0 + delta
    assert measure_delta(B, part) <= delta + 1e-12
    two = np.asarray(extremal_graph(part, delta, "two-level"))
    tail = lambda W: float(np.sum(np.linalg.eigvalsh(_normalized(W))[:-1] ** 2))  # noqa: E731
    assert tail(B) >= tail(two)


def test_head_scores_equal_eq13_on_copies_of_the_block():
    n_sub, m, p, delta = 3, 8, 12, 0.2
    part = balanced_partition(n_sub, m, 3)
    betas = np.asarray([0.01, 0.1, 1.0])
    B = np.asarray(tightness.block_from_logits(jax.random.normal(jax.random.PRNGKey(2), (m, m)), delta))
    W = np.asarray(tightness.replicate(B, n_sub))
    S = optimal_representation(normalized_adjacency(W), p, n_sub=n_sub)
    bv = [bias_variance(S.eigvecs, S.eigvals, part.labels(), b, 1.0) for b in betas]
    lead, lin = (np.asarray(a) for a in bounds.bias_bound_eq15(betas, delta, part.n, n_sub))
    vl, vs = (np.asarray(a) for a in bounds.variance_bound_a3(betas, delta, 1.0, part.n, n_sub, p))
    lam, c = tightness.block_spectrum(B)
    q = p // n_sub
    assert float(tightness.head_bias_ratio(lam, c, delta, betas, lead, lin, q)) == pytest.approx(
        max((float(x.bias2) - a) / b for x, a, b in zip(bv, lead, lin)), rel=1e-9)
    assert float(tightness.head_variance_ratio(lam, c, delta, betas, vl, vs, q)) == pytest.approx(
        max((float(x.variance) - a) / b for x, a, b in zip(bv, vl, vs)), rel=1e-9)


def test_flat_cross_graph_meets_weyl_and_lemma_b1_at_the_edge():
    part = balanced_partition(4, 10, 2)
    xi = 1e-3
    W = np.asarray(extremal_graph(part, 0.0, "two-level", xi=xi))
    assert measure_xi(W, part) == pytest.approx(xi) and measure_delta(W, part) == 0.0
    At, Ab = np.asarray(normalized_adjacency(W)), np.asarray(block_normalized_adjacency(W, part))
    lam = np.sort(np.linalg.eigvalsh(At))[::-1]
    assert 1.0 - lam[part.n_sub - 1] == pytest.approx(float(sym_norm2(At - Ab)), rel=1e-10)  # Weyl with equality
    with pytest.raises(ValueError, match="xi must be in"):
        extremal_graph(part, 0.0, "two-level", xi=1.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="m must be"):
        tightness.ascend_block(tightness.tail_sq, 1, 0.1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="balanced"):
        tightness.adversarial_graphs(partition([3, 5], n_classes=2), [0.1], [], key=jax.random.PRNGKey(0))
