"""theory._random: draw, draw_each and split give jax.random's own values, bit for bit, at any shape, with one
compiled program per power-of-two size; under a trace they fall back to jax.random itself."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import _random

# Fixed shapes and seeds, not Hypothesis draws: every reference draw compiles jax.random for its shape.
SAMPLERS = (jax.random.uniform, jax.random.normal, jax.random.exponential)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape, seed", [((1,), 0), ((7, 13), 11), ((2000, 20), 2**31 - 1), ((3, 5, 4), 7)])
def test_draw_is_jax_random_bit_for_bit(sampler, shape, seed):
    key = jax.random.PRNGKey(seed)
    got = _random.draw(sampler, key, shape, jnp.float64)
    assert got.shape == shape and got.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(got), np.asarray(sampler(key, shape, jnp.float64)))


def test_draw_above_the_smallest_size_and_in_float32():
    key = jax.random.PRNGKey(3)
    shape = (300, 300)  # 90,000 entries: past MIN_DRAW, cut from a 2^17 draw
    np.testing.assert_array_equal(np.asarray(_random.draw(jax.random.uniform, key, shape)),
                                  np.asarray(jax.random.uniform(key, shape, jnp.float64)))
    np.testing.assert_array_equal(np.asarray(_random.draw(jax.random.normal, key, (7, 5), jnp.float32)),
                                  np.asarray(jax.random.normal(key, (7, 5), jnp.float32)))


def test_one_compiled_draw_serves_every_small_shape():
    key = jax.random.PRNGKey(0)
    _random.draw(jax.random.normal, key, (3, 4))
    before = _random._flat._cache_size()
    for shape in ((5,), (17, 3), (40, 40), (2, 3, 5)):
        _random.draw(jax.random.normal, key, shape)
    assert _random._flat._cache_size() == before


@pytest.mark.parametrize("num, seed", [(1, 0), (2, 5), (6, 2**31 - 1), (64, 3), (65, 9)])
def test_split_is_jax_random_split(num, seed):
    key = jax.random.PRNGKey(seed)
    got = _random.split(key, num)
    assert isinstance(got, np.ndarray) and got.shape == (num, 2)
    np.testing.assert_array_equal(got, np.asarray(jax.random.split(key, num)))


def test_draw_each_is_a_vmap_over_keys():
    keys = jax.random.split(jax.random.PRNGKey(1), 6)
    want = jax.vmap(lambda k: jax.random.normal(k, (4, 3), jnp.float64))(keys)
    np.testing.assert_array_equal(np.asarray(_random.draw_each(jax.random.normal, keys, (4, 3))), np.asarray(want))


def test_under_a_trace_the_values_are_the_same():
    key = jax.random.PRNGKey(5)
    traced = jax.jit(lambda k: _random.draw(jax.random.normal, k, (6, 2)))(key)
    concrete_key_inside = jax.jit(lambda: _random.draw(jax.random.normal, jax.random.PRNGKey(5), (6, 2)))()
    split_traced = jax.jit(lambda k: _random.split(k, 3))(key)
    each = jax.jit(lambda ks: _random.draw_each(jax.random.uniform, ks, (2,)))(jax.random.split(key, 3))
    want = np.asarray(jax.random.normal(key, (6, 2)))
    np.testing.assert_array_equal(np.asarray(traced), want)
    np.testing.assert_array_equal(np.asarray(concrete_key_inside), want)
    np.testing.assert_array_equal(np.asarray(split_traced), np.asarray(jax.random.split(key, 3)))
    np.testing.assert_array_equal(np.asarray(each), np.asarray(jax.vmap(lambda k: jax.random.uniform(k, (2,)))(jax.random.split(key, 3))))


def test_typed_keys_split_as_jax_random_does():
    key = jax.random.key(2)
    np.testing.assert_array_equal(np.asarray(jax.random.key_data(_random.split(key, 4))),
                                  np.asarray(jax.random.key_data(jax.random.split(key, 4))))


def test_typed_threefry_keys_draw_through_the_shared_program():
    key = jax.random.split(jax.random.key(4), 3)[1]
    np.testing.assert_array_equal(np.asarray(_random.draw(jax.random.normal, key, (8, 3))),
                                  np.asarray(jax.random.normal(key, (8, 3), jnp.float64)))
