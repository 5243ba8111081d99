"""The augmentation graph (theory/graph.py): construction, the assumption meters, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from theory import strategies as S
from theory import tolerances
from theory.graph import (
    balanced_partition,
    check_weights,
    make_graph,
    make_structured_graph,
    measure_delta,
    measure_xi,
    partition,
)

@settings(max_examples=25)
@given(g=S.augmentation_graphs(partition=S.partitions(n_sub=(2, 6), sizes=(2, 12)), delta=(0.0, 0.99), xi=(0.0, 0.99),
                               kinds=("random",)))
def test_generated_graph_satisfies_both_assumptions(g):
    part, W = g.part, g.W
    assert W.shape == (part.n, part.n) and W.dtype == np.float64
    np.testing.assert_array_equal(W, W.T)
    S.assert_bound(measure_delta(W, part), g.delta_max, "<=", atol=tolerances.METER_ATOL, what="realized delta")
    S.assert_bound(measure_xi(W, part), g.xi_max, "<=", atol=tolerances.METER_ATOL, what="realized xi")
    # the realized values are not trivially zero: the construction uses the room it is given
    if g.delta_max > 0.05 and max(part.sizes) >= 4:
        assert measure_delta(W, part) > 0.1 * g.delta_max


def test_meters_on_a_hand_built_matrix():
    part = partition([2, 2], n_classes=2)
    W = np.array([[1.0, 2.0, 0.1, 0.3],
                  [2.0, 1.5, 0.2, 0.1],
                  [0.1, 0.2, 4.0, 5.0],
                  [0.3, 0.1, 5.0, 4.0]])
    # column 0 of block 1: entries 1, 2 -> ratio 2; column 1: 2, 1.5; block 2: 4, 5 -> 1.25
    assert measure_delta(W, part) == pytest.approx(1.0)
    # max cross 0.3 over min within 1.0
    assert measure_xi(W, part) == pytest.approx(0.3)


def test_meters_are_scale_invariant_and_see_a_disconnected_graph():
    part = balanced_partition(3, 5, 3)
    W = np.asarray(make_graph(jax.random.PRNGKey(1), part, 0.3, 0.0))
    assert measure_xi(W, part) == 0.0
    assert measure_delta(7.0 * W, part) == pytest.approx(measure_delta(W, part))


def test_structured_graph_dense_equals_matrix_free_product():
    part = balanced_partition(5, 8, 2)
    g = make_structured_graph(jax.random.PRNGKey(3), part, 0.2, 0.05, rank=3)
    W = g.dense()
    x = jax.random.normal(jax.random.PRNGKey(4), (part.n, 3), dtype=jnp.float64)
    np.testing.assert_allclose(g.matmat(x), W @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.matmat(x[:, 0]), W @ x[:, 0], rtol=1e-12, atol=1e-12)
    assert measure_delta(W, part) <= 0.2 + 1e-12 and measure_xi(W, part) <= 0.05 + 1e-12


def test_labels_and_partition_bookkeeping():
    part = partition([3, 1, 2], sub_to_class=[1, 0, 1])
    assert part.n == 6 and part.n_sub == 3 and part.n_classes == 2
    np.testing.assert_array_equal(part.class_of_point, [1, 1, 1, 0, 1, 1])
    Y = np.asarray(part.labels())
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    np.testing.assert_array_equal(Y.argmax(axis=1), part.class_of_point)


@pytest.mark.parametrize("kwargs, match", [
    (dict(delta=1.0, xi=0.0), "delta must be in \\[0, 1\\), got 1.0"),
    (dict(delta=-0.1, xi=0.0), "delta must be in"),
    (dict(delta=0.1, xi=-0.01), "xi must be in \\[0, 1\\), got -0.01"),
])
def test_bad_delta_xi(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_graph(jax.random.PRNGKey(0), balanced_partition(2, 3, 2), **kwargs)


def test_bad_sizes():
    with pytest.raises(ValueError, match=r"sizes\[1\] must be a positive number of points, got 0"):
        partition([3, 0, 2], n_classes=2)
    with pytest.raises(ValueError, match="sizes must sum to n=10, got sum\\(sizes\\)=9"):
        partition([4, 5], n_classes=2, n=10)
    with pytest.raises(ValueError, match="sub_to_class must have one class per sub-class"):
        partition([4, 5], sub_to_class=[0])
    with pytest.raises(ValueError, match="leaves classes \\[1\\]"):
        partition([4, 5], sub_to_class=[0, 2])


def test_meters_refuse_bad_matrices():
    part = partition([2, 2], n_classes=2)
    W = np.ones((4, 4))
    W[0, 1] = 2.0
    with pytest.raises(ValueError, match="W must be symmetric"):
        measure_delta(W, part)
    W = np.ones((4, 4))
    W[0, 3] = W[3, 0] = -1.0
    with pytest.raises(ValueError, match="W must be nonnegative"):
        measure_xi(W, part)
    with pytest.raises(ValueError, match="must be 4 x 4"):
        check_weights(np.ones((3, 3)), part)
    with pytest.raises(ValueError, match="square"):
        check_weights(np.ones((3, 4)))
