"""Encoders as pytrees with a pure apply (theory/encoders.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.encoders import MLP, EmbeddingTable, Linear
from theory.graph import balanced_partition, make_graph
from theory.losses import spectral_contrastive_loss

N, D, P = 12, 5, 4


def _encoders():
    x = jax.random.normal(jax.random.key(0), (N, D))
    return [
        (EmbeddingTable(N, P), jnp.arange(N)),
        (Linear(D, P), x),
        (MLP(D, P, width=16, depth=1), x),
        (MLP(D, P, width=8, depth=2), x),
    ]


@pytest.mark.parametrize("enc, inputs", _encoders())
def test_apply_shapes_and_dtype(enc, inputs):
    params = enc.init(jax.random.key(1))
    out = enc.apply(params, inputs)
    assert out.shape == (N, P)
    assert out.dtype == jnp.float64
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("enc, inputs", _encoders())
def test_jit_and_eager_agree(enc, inputs):
    params = enc.init(jax.random.key(2))
    W = make_graph(jax.random.key(3), balanced_partition(3, 4, 2), 0.2, 0.05)
    loss = lambda p: spectral_contrastive_loss(enc.apply(p, inputs), W)  # noqa: E731
    np.testing.assert_allclose(jax.jit(enc.apply)(params, inputs), enc.apply(params, inputs), rtol=1e-12)
    np.testing.assert_allclose(jax.jit(loss)(params), loss(params), rtol=1e-12)


@pytest.mark.parametrize("enc, inputs", _encoders())
def test_gradient_matches_finite_differences(enc, inputs):
    """Directional derivative of the population spectral loss through the encoder, float64."""
    params = enc.init(jax.random.key(4))
    W = make_graph(jax.random.key(5), balanced_partition(3, 4, 2), 0.2, 0.05)
    loss = jax.jit(lambda p: spectral_contrastive_loss(enc.apply(p, inputs), W))
    grads = jax.jit(jax.grad(loss))(params)
    leaves, tree = jax.tree_util.tree_flatten(params)
    v = jax.tree_util.tree_unflatten(
        tree, [np.random.default_rng(i).standard_normal(a.shape) for i, a in enumerate(leaves)])
    eps = 1e-6
    shift = lambda s: jax.tree_util.tree_map(lambda a, b: np.asarray(a) + s * eps * b, params, v)  # noqa: E731
    fd = (loss(shift(1.0)) - loss(shift(-1.0))) / (2 * eps)
    exact = sum(float(np.vdot(g, b)) for g, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(v)))
    np.testing.assert_allclose(fd, exact, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: EmbeddingTable(N, 0), "p must be an integer >= 1, got 0"),
        (lambda: Linear(D, -1), "p must be an integer >= 1"),
        (lambda: Linear(0, 3), "d must be an integer >= 1"),
        (lambda: MLP(D, P, width=0), "width must be"),
        (lambda: MLP(D, P, depth=3), "depth must be 1 or 2"),
    ],
)
def test_bad_sizes_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make().init(jax.random.key(0))


def test_init_is_determined_by_the_key():
    enc = MLP(D, P, 8, 2)
    a, b, c = enc.init(jax.random.key(7)), enc.init(jax.random.key(7)), enc.init(jax.random.key(8))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a["layers"][0]["W"], c["layers"][0]["W"])
