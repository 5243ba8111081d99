"""Random draws without a compilation per shape.

``jax.random`` compiles a new program for every shape it is asked for, and on CPU each such
compilation costs a good fraction of a second (most of it the threefry hash). Two ways around it:

- :func:`rng`: code that draws a few arrays once (a data model, an initialisation, the pair
  indices of a training run) seeds a numpy PCG64 generator with the key's bits: still explicit (a
  keyword ``key``, split with ``jax.random.split``), still reproducible, and free of compilation.
- :func:`draw` and :func:`split`: the very values of ``jax.random`` (``uniform``, ``normal``,
  ``exponential``, ``split``), bit for bit, from one compiled program per power-of-two size. With
  the threefry PRNG in its partitionable form (JAX's default) the value at flat index ``i`` of a draw
  depends on the key and ``i`` only, not on the shape, so the first ``prod(shape)`` entries of a
  longer flat draw, reshaped, are the draw of that shape (``tests/test_random.py`` holds it to
  that). Under a trace (inside ``jit``) or with another PRNG, they call ``jax.random`` directly.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

# The smallest flat size drawn (2^15 float64 = 256 KiB, microseconds to draw): every smaller draw
# shares one compiled program.
MIN_DRAW = 1 << 15
MIN_SPLIT = 64


def rng(key) -> np.random.Generator:
    """A numpy generator determined by the JAX PRNG key ``key``."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _size(n: int, minimum: int) -> int:
    return max(minimum, 1 << max(int(n) - 1, 0).bit_length())


def _raw_key(key):
    """The raw uint32[2] threefry key of ``key`` (raw, or typed with the threefry implementation) when a draw's
    values depend only on (key, flat index) (threefry in its partitionable form, a concrete key); else None."""
    if isinstance(key, jax.core.Tracer) or not jax.config.jax_threefry_partitionable:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != () or str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        return jax.random.key_data(key)
    return key if jax.config.jax_default_prng_impl == "threefry2x32" and key.shape == (2,) else None


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _flat(sampler, key, size, dtype):
    return sampler(key, (size,), dtype)


def draw(sampler, key, shape, dtype=jnp.float64):
    """``sampler(key, shape, dtype)`` for ``sampler`` one of ``jax.random.uniform``, ``normal``,
    ``exponential`` (default bounds), bit for bit, compiled once per power-of-two size >= ``MIN_DRAW``
    rather than once per shape; cut and reshaped on the host."""
    shape = tuple(int(s) for s in shape)
    key = key if hasattr(key, "dtype") else np.asarray(key)
    n, raw = math.prod(shape), _raw_key(key)
    if n == 0 or raw is None:
        return sampler(key, shape, dtype)
    flat = _flat(sampler, raw, _size(n, MIN_DRAW), jnp.dtype(dtype))
    if isinstance(flat, jax.core.Tracer):  # inside a trace (a concrete key, staged): draw the shape itself
        return sampler(key, shape, dtype)
    return jax.device_put(np.asarray(flat)[:n].reshape(shape))  # (jnp.asarray would compile a copy per shape)


def draw_each(sampler, keys, shape, dtype=jnp.float64):
    """``jax.vmap(lambda k: sampler(k, shape, dtype))(keys)`` for a stack of raw keys, as :func:`draw` makes each."""
    if isinstance(keys, jax.core.Tracer) or jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return jax.vmap(lambda k: sampler(k, shape, dtype))(keys)
    draws = [draw(sampler, k, shape, dtype) for k in np.asarray(keys)]
    if any(isinstance(d, jax.core.Tracer) for d in draws):
        return jnp.stack(draws)
    return jax.device_put(np.stack([np.asarray(d) for d in draws]))


@functools.partial(jax.jit, static_argnums=1)
def _split(key, num):
    return jax.random.split(key, num)


def split(key, num: int = 2):
    """``jax.random.split(key, num)``, bit for bit, compiled once per power-of-two ``num`` >= ``MIN_SPLIT``; a
    host (numpy) array for a concrete key, so that iterating over it or indexing it compiles nothing."""
    key = key if hasattr(key, "dtype") else np.asarray(key)
    if _raw_key(key) is not key:  # typed keys (whose split is a typed array) and other PRNGs: jax.random itself
        return jax.random.split(key, num)
    keys = _split(key, _size(num, MIN_SPLIT))
    if isinstance(keys, jax.core.Tracer):
        return jax.random.split(key, num)
    return np.asarray(keys)[:num]
