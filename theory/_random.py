"""Host-side random draws seeded by a JAX key.

``jax.random`` compiles a new program for every shape it is asked for, and on CPU each
such compilation costs a good fraction of a second. Code that draws a few arrays once
(a data model, an initialisation, the pair indices of a training run) instead seeds a
numpy PCG64 generator with the key's bits: still explicit (a keyword ``key``, split
with ``jax.random.split``), still reproducible, and free of compilation. Code that
draws inside a jit-compiled function keeps using ``jax.random``.
"""

from __future__ import annotations

import jax
import numpy as np


def rng(key) -> np.random.Generator:
    """A numpy generator determined by the JAX PRNG key ``key``."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
