"""Facility location and its greedy maximization (Mirzasoleiman et al. 2020, Crust Eq. 5; CRAIG).

For a similarity matrix ``sim (n, n)`` with non-negative entries, the facility-location value of
a set S is F(S) = sum_i max_{j in S} sim[i, j]. F is monotone submodular, so the greedy set of
size B has F >= (1 - 1/e) max_{|S| = B} F(S) (Nemhauser et al. 1978). Crust's similarity is
``max(d) - d`` of the pairwise Euclidean distances d (``fl_cifar.py`` of snap-stanford/crust).
The plain greedy here picks the same set as the reference's lazy greedy (up to ties).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def facility_value(sim: np.ndarray, selected) -> float:
    """F(S) = sum_i max_{j in S} sim[i, j]; 0 for the empty set."""
    selected = list(selected)
    if not selected:
        return 0.0
    return float(np.sum(np.max(np.asarray(sim)[:, selected], axis=1)))


@functools.partial(jax.jit, static_argnames="budget")
def _greedy(sim: jax.Array, budget: int):
    n = sim.shape[0]

    def body(i, carry):
        cover, chosen, taken = carry
        gains = jnp.sum(jnp.maximum(sim - cover[:, None], 0.0), axis=0)
        gains = jnp.where(taken, -jnp.inf, gains)
        j = jnp.argmax(gains).astype(jnp.int32)
        return jnp.maximum(cover, sim[:, j]), chosen.at[i].set(j), taken.at[j].set(True)

    init = (jnp.zeros((n,), sim.dtype), jnp.zeros((budget,), jnp.int32), jnp.zeros((n,), bool))
    _, chosen, _ = jax.lax.fori_loop(0, budget, body, init)
    return chosen


def greedy_facility_location(sim: np.ndarray, budget: int) -> np.ndarray:
    """The greedy maximizer of F of size ``budget`` (indices in the order picked)."""
    sim = np.asarray(sim)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square matrix, got shape {sim.shape}")
    if not 1 <= budget <= sim.shape[0]:
        raise ValueError(f"budget must be in [1, {sim.shape[0]}], got {budget}")
    return np.asarray(_greedy(jnp.asarray(sim, jnp.float32), int(budget)))


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``x`` (float64, exact zeros on the diagonal)."""
    x = np.asarray(x, np.float64)
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def medoids(x: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Crust's coreset of the rows of ``x``: the greedy facility-location medoids under the
    similarity ``max(d) - d``, and their weights, the sizes of their clusters (every point is
    assigned to its nearest medoid), which sum to ``len(x)``."""
    d = pairwise_distances(x)
    sim = d.max() - d
    chosen = greedy_facility_location(sim, budget)
    nearest = np.argmin(d[:, chosen], axis=1)
    weights = np.bincount(nearest, minlength=len(chosen)).astype(np.float64)
    return chosen, weights
