"""Encoders f: input -> R^p as pytrees of parameters with a pure ``apply(params, x)``.

- :class:`EmbeddingTable`: one free vector per augmented point (the input is the
  point's index). This is the "arbitrary function class" of the theory: its global
  minimizer of the spectral contrastive loss is f_min itself (Eqs. 7-8).
- :class:`Linear`: ``f(x) = W x`` (no bias), W of shape (p, d).
- :class:`MLP`: ``depth`` hidden ReLU layers of ``width`` units, then a linear output.

Each has ``init(key) -> params`` and a pure ``apply(params, x)``, so ``jax.grad``,
``jax.jvp`` and ``jax.vjp`` over the parameters work directly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory._random import rng
from theory._types import Array, PRNGKeyArray


def _check_positive(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value}")


class EmbeddingTable(NamedTuple):
    """A free vector in R^p for each of ``n`` points; the input is an integer index array."""

    n: int
    p: int
    scale: float = 0.1

    def init(self, key: PRNGKeyArray, dtype=jnp.float64) -> dict:
        _check_positive("n", self.n)
        _check_positive("p", self.p)
        return _init_table(key, self.n, self.p, self.scale, jnp.dtype(dtype))

    @staticmethod
    def apply(params: dict, idx: Array) -> Array:
        return params["table"][idx]


class Linear(NamedTuple):
    """``f(x) = W x`` with W of shape (p, d), initialised N(0, 1/d)."""

    d: int
    p: int

    def init(self, key: PRNGKeyArray, dtype=jnp.float64) -> dict:
        _check_positive("d", self.d)
        _check_positive("p", self.p)
        return _init_linear(key, self.d, self.p, jnp.dtype(dtype))

    @staticmethod
    def apply(params: dict, x: Array) -> Array:
        return x @ params["W"].T


class MLP(NamedTuple):
    """``depth`` hidden ReLU layers of ``width`` units and a linear output layer to R^p (He init)."""

    d: int
    p: int
    width: int = 64
    depth: int = 1

    def init(self, key: PRNGKeyArray, dtype=jnp.float64) -> dict:
        _check_positive("d", self.d)
        _check_positive("p", self.p)
        _check_positive("width", self.width)
        if self.depth not in (1, 2):
            raise ValueError(f"depth must be 1 or 2 hidden layers, got {self.depth}")
        sizes = (self.d,) + (self.width,) * self.depth + (self.p,)
        return _init_mlp(key, sizes, jnp.dtype(dtype))

    @staticmethod
    def apply(params: dict, x: Array) -> Array:
        h = x
        layers = params["layers"]
        for layer in layers[:-1]:
            h = jax.nn.relu(h @ layer["W"] + layer["b"])
        return h @ layers[-1]["W"] + layers[-1]["b"]


# Initialisers draw on the host (theory._random): no compilation per shape.


def _init_table(key, n, p, scale, dtype):
    return {"table": jnp.asarray(scale * rng(key).standard_normal((n, p)), dtype)}


def _init_linear(key, d, p, dtype):
    return {"W": jnp.asarray(rng(key).standard_normal((p, d)) / np.sqrt(d), dtype)}


def _init_mlp(key, sizes, dtype):
    g = rng(key)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers.append({"W": jnp.asarray(g.standard_normal((a, b)) * np.sqrt(2.0 / a), dtype),
                       "b": jnp.zeros((b,), dtype)})
    return {"layers": layers}
