"""The augmentation graph of the paper's data model (Section 4, Assumptions 4.1 and 4.2).

Vertices are the n augmented points, ordered by sub-class (the first ``n_1`` points
are in sub-class 1, and so on). Each sub-class lies in one class. The weight
``w_ij`` is the probability-like affinity of two augmentations (HaoChen et al. 2021).

Two constructions from a PRNG key:

- :func:`make_graph`: a dense weight matrix with within-sub-class entries
  ``1 + delta * U(0, 1)`` and cross-sub-class entries ``xi * U(0, 1)``, both
  symmetrized. Entries within a sub-class lie in ``[1, 1 + delta]`` so the column
  ratios of Assumption 4.1 lie in ``[1/(1+delta), 1+delta]``; cross entries are at
  most ``xi`` times the smallest within entry (Assumption 4.2).
- :func:`make_structured_graph`: the same within-sub-class blocks, with the
  cross-sub-class weights ``xi * a_i . a_j / r`` from nonnegative factors
  ``a_i in [0, 1]^r``. The matrix is still dense (every entry is positive when
  ``xi > 0``) but is stored in O(n * n_k + n * r) memory and multiplied matrix-free,
  which is what makes ``n = 20,000`` feasible.

And the reverse, for any weight matrix: :func:`measure_delta` and :func:`measure_xi`
return the smallest ``delta`` and ``xi`` for which the assumptions hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _random
from theory._types import Array, PRNGKeyArray, Weights


class Partition(NamedTuple):
    """How n points split into sub-classes and classes.

    ``sizes[k]`` points in sub-class ``k``; ``sub_to_class[k]`` is its class.
    """

    sizes: tuple[int, ...]
    sub_to_class: tuple[int, ...]

    @property
    def n(self) -> int:
        return int(sum(self.sizes))

    @property
    def n_sub(self) -> int:
        """K-bar, the number of sub-classes."""
        return len(self.sizes)

    @property
    def n_classes(self) -> int:
        """K, the number of classes."""
        return int(max(self.sub_to_class)) + 1

    @property
    def offsets(self) -> tuple[int, ...]:
        return tuple(int(o) for o in np.concatenate([[0], np.cumsum(self.sizes)]))

    @property
    def sub_of_point(self) -> np.ndarray:
        """Sub-class index of each point, shape (n,)."""
        return np.repeat(np.arange(self.n_sub), self.sizes)

    @property
    def class_of_point(self) -> np.ndarray:
        """Class index of each point, shape (n,)."""
        return np.asarray(self.sub_to_class)[self.sub_of_point]

    def labels(self, dtype=jnp.float64) -> Array:
        """The clean one-hot label matrix Y, shape (n, K)."""
        return jax.nn.one_hot(jnp.asarray(self.class_of_point), self.n_classes, dtype=dtype)

    def sub_indicator(self, dtype=jnp.float64) -> Array:
        """One-hot sub-class membership, shape (n, K-bar)."""
        return jax.nn.one_hot(jnp.asarray(self.sub_of_point), self.n_sub, dtype=dtype)

    @property
    def balanced(self) -> bool:
        return len(set(self.sizes)) == 1


def partition(
    sizes: Sequence[int], sub_to_class: Sequence[int] | None = None, *, n_classes: int | None = None, n: int | None = None
) -> Partition:
    """Validate sub-class sizes and their classes.

    Args:
      sizes: points per sub-class; every entry must be a positive integer.
      sub_to_class: the class of each sub-class. If omitted, sub-classes are dealt
        to ``n_classes`` classes round-robin (sub-class k goes to class k mod K),
        so every class gets ``K-bar / K`` sub-classes when that divides.
      n_classes: K, used when ``sub_to_class`` is omitted.
      n: if given, ``sum(sizes)`` must equal it.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) == 0:
        raise ValueError("sizes must list at least one sub-class, got []")
    for k, s in enumerate(sizes):
        if s < 1:
            raise ValueError(f"sizes[{k}] must be a positive number of points, got {s} (a sub-class with no points)")
    if n is not None and sum(sizes) != n:
        raise ValueError(f"sizes must sum to n={n}, got sum(sizes)={sum(sizes)}")
    if sub_to_class is None:
        if n_classes is None:
            raise ValueError("give sub_to_class or n_classes")
        if not 1 <= n_classes <= len(sizes):
            raise ValueError(f"n_classes must be in [1, K-bar={len(sizes)}], got {n_classes}")
        sub_to_class = [k % n_classes for k in range(len(sizes))]
    sub_to_class = tuple(int(c) for c in sub_to_class)
    if len(sub_to_class) != len(sizes):
        raise ValueError(
            f"sub_to_class must have one class per sub-class ({len(sizes)}), got {len(sub_to_class)}"
        )
    if min(sub_to_class) < 0:
        raise ValueError(f"sub_to_class must hold class indices >= 0, got {min(sub_to_class)}")
    missing = set(range(max(sub_to_class) + 1)) - set(sub_to_class)
    if missing:
        raise ValueError(f"sub_to_class leaves classes {sorted(missing)} without a sub-class")
    return Partition(sizes, sub_to_class)


def balanced_partition(n_sub: int, size: int, n_classes: int) -> Partition:
    """K-bar sub-classes of ``size`` points each, dealt round-robin to K classes."""
    if n_sub < 1:
        raise ValueError(f"n_sub must be >= 1, got {n_sub}")
    return partition([size] * n_sub, n_classes=n_classes)


def _check_delta_xi(delta: float, xi: float) -> None:
    if not (0.0 <= float(delta) < 1.0):
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    if not (0.0 <= float(xi) < 1.0):
        raise ValueError(f"xi must be in [0, 1), got {xi}")


def make_graph(key: PRNGKeyArray, part: Partition, delta: float, xi: float, *, dtype=jnp.float64) -> Weights:
    """A dense weight matrix satisfying Assumption 4.1 with ``delta`` and 4.2 with ``xi``.

    Within sub-class k: ``1 + delta * (U + U^T)/2``; across sub-classes:
    ``xi * (U + U^T)/2``, with ``U`` uniform on [0, 1). The realized parameters
    (:func:`measure_delta`, :func:`measure_xi`) are at most ``delta`` and ``xi``.
    """
    _check_delta_xi(delta, xi)
    n = part.n
    u_in, u_out = (_random.draw(jax.random.uniform, k, (n, n), dtype) for k in _random.split(key))
    return _make_graph(u_in, u_out, jnp.asarray(part.sub_of_point), jnp.asarray(delta, dtype), jnp.asarray(xi, dtype))


@jax.jit
def _make_graph(u_in, u_out, sub, delta, xi):
    """One compiled program per n (the sub-class of each point is an argument, not a static partition); the
    uniforms come from outside (``theory._random.draw``: one compiled draw per power-of-two size)."""
    same = sub[:, None] == sub[None, :]
    within = 1.0 + delta * (0.5 * (u_in + u_in.T))
    cross = xi * (0.5 * (u_out + u_out.T))
    return jnp.where(same, within, cross)


class StructuredGraph(NamedTuple):
    """Within-sub-class blocks plus a rank-r cross coupling, multiplied matrix-free.

    ``W = blockdiag(blocks) + (xi / r) * (A A^T - blockdiag(A_k A_k^T))`` with
    ``blocks`` of shape (K-bar, m, m) and ``factors`` A of shape (n, r), entries in [0, 1].
    Balanced sub-classes only (m points each), as in Appendix B.
    """

    blocks: Array
    factors: Array
    xi: float

    @property
    def n(self) -> int:
        return self.blocks.shape[0] * self.blocks.shape[1]

    def matmat(self, x: Array) -> Array:
        """W @ x for x of shape (n,) or (n, b)."""
        return _structured_matmat(self.blocks, self.factors, self.xi, x)

    def degrees(self) -> Array:
        return self.matmat(jnp.ones((self.n,), self.blocks.dtype))

    def dense(self) -> Weights:
        """The full n x n matrix (small n only)."""
        n_sub, m, _ = self.blocks.shape
        cross = (self.xi / self.factors.shape[1]) * (self.factors @ self.factors.T)
        sub = jnp.repeat(jnp.arange(n_sub), m)
        same = sub[:, None] == sub[None, :]
        return jnp.where(same, jax.scipy.linalg.block_diag(*self.blocks), cross)


@jax.jit
def _structured_matmat(blocks, factors, xi, x):
    n_sub, m, _ = blocks.shape
    vec = x.ndim == 1
    x2 = x[:, None] if vec else x
    xb = x2.reshape(n_sub, m, -1)
    out = jnp.einsum("kij,kjb->kib", blocks, xb)
    r = factors.shape[1]
    fb = factors.reshape(n_sub, m, r)
    full = factors @ (factors.T @ x2)
    own = jnp.einsum("kir,kjr,kjb->kib", fb, fb, xb)
    out = out.reshape(-1, x2.shape[1]) + (xi / r) * (full - own.reshape(-1, x2.shape[1]))
    return out[:, 0] if vec else out


def make_structured_graph(
    key: PRNGKeyArray, part: Partition, delta: float, xi: float, *, rank: int = 8, dtype=jnp.float64
) -> StructuredGraph:
    """A matrix-free graph satisfying Assumptions 4.1 (``delta``) and 4.2 (``xi``).

    Within blocks as in :func:`make_graph`; cross weights ``xi * a_i . a_j / rank``
    with ``a_i`` uniform in [0, 1]^rank, so every cross entry is in [0, xi].
    """
    _check_delta_xi(delta, xi)
    if not part.balanced:
        raise ValueError(f"make_structured_graph needs balanced sub-classes, got sizes from {min(part.sizes)} to {max(part.sizes)}")
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    k_in, k_out = jax.random.split(key)
    m = part.sizes[0]
    u = jax.random.uniform(k_in, (part.n_sub, m, m), dtype=dtype)
    blocks = 1.0 + delta * 0.5 * (u + jnp.swapaxes(u, 1, 2))
    factors = jax.random.uniform(k_out, (part.n, rank), dtype=dtype)
    return StructuredGraph(blocks, factors, float(xi))


class StructuredMeters(NamedTuple):
    """The realized parameters of a :class:`StructuredGraph` (Assumptions 4.1, 4.2, Lemma B.1).

    ``delta``: the smallest delta of Assumption 4.1; ``xi``: max cross weight / min within weight;
    ``h_ratio``: ``max_ij h_ij sqrt(n_i n_j)`` over the off-block entries of A-tilde (Lemma B.1: <= xi).
    """

    delta: float
    xi: float
    h_ratio: float


def measure_structured(g: StructuredGraph, *, chunk_points: int = 2000) -> StructuredMeters:
    """:class:`StructuredMeters` of a matrix-free graph without forming it: the cross weights
    are formed over row chunks of whole sub-classes (``chunk_points`` rows at a time), so that
    the within-block entries can be masked by slices."""
    blocks = np.asarray(g.blocks)
    n_sub, m, _ = blocks.shape
    delta = float(max(np.max(b.max(axis=0) / b.min(axis=0)) for b in blocks) - 1.0)
    if g.xi == 0:
        return StructuredMeters(delta, 0.0, 0.0)
    a = np.asarray(g.factors)
    rank = a.shape[1]
    s_full = 1.0 / np.sqrt(np.asarray(g.degrees()))
    max_cross, h_max = 0.0, 0.0
    chunk = m * max(1, chunk_points // m)
    for lo in range(0, g.n, chunk):
        hi = min(lo + chunk, g.n)
        prod = (g.xi / rank) * (a[lo:hi] @ a.T)
        for b in range(lo, hi, m):
            prod[b - lo:b - lo + m, b:b + m] = 0.0
        max_cross = max(max_cross, float(prod.max()))
        prod *= s_full[lo:hi, None]
        prod *= s_full[None, :]
        h_max = max(h_max, float(prod.max()))
    return StructuredMeters(delta, max_cross / float(blocks.min()), h_max * m)


# ----------------------------------------------------------------------------
# Meters: the realized delta and xi of a given weight matrix.
# ----------------------------------------------------------------------------


def check_weights(W, part: Partition | None = None, *, name: str = "W") -> np.ndarray:
    """Validate a weight matrix: square, finite, symmetric, nonnegative (and of size n)."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {W.shape}")
    if part is not None and W.shape[0] != part.n:
        raise ValueError(f"{name} must be {part.n} x {part.n} to match the sizes, got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} must be finite, got NaN or inf entries")
    if np.min(W) < 0:
        raise ValueError(f"{name} must be nonnegative, got a minimum entry of {np.min(W):.3g}")
    asym = float(np.max(np.abs(W - W.T)))
    scale = float(np.max(np.abs(W))) or 1.0
    if asym > 1e-12 * scale:
        raise ValueError(f"{name} must be symmetric, got max |W - W^T| = {asym:.3g}")
    return W


def measure_delta(W, part: Partition) -> float:
    """The smallest delta for which W satisfies Assumption 4.1.

    For each sub-class and each column j in it, the spread of column j over the
    sub-class's rows: ``max_s w_sj / min_t w_tj - 1``; the maximum over all of them.
    ``inf`` when a within-sub-class weight is 0.
    """
    W = check_weights(W, part)
    worst = 0.0
    for lo, hi in zip(part.offsets[:-1], part.offsets[1:]):
        block = W[lo:hi, lo:hi]
        col_min = block.min(axis=0)
        if np.any(col_min <= 0):
            return float("inf")
        worst = max(worst, float(np.max(block.max(axis=0) / col_min)) - 1.0)
    return worst


def measure_xi(W, part: Partition) -> float:
    """The smallest xi for which W satisfies Assumption 4.2: max cross weight / min within weight."""
    W = check_weights(W, part)
    same = part.sub_of_point[:, None] == part.sub_of_point[None, :]
    min_within = float(W[same].min())
    if part.n_sub == 1:
        return 0.0
    max_cross = float(W[~same].max())
    if min_within <= 0:
        return float("inf")
    return max_cross / min_within

def extremal_graph(part: Partition, delta: float, kind: str, *, xi: float = 0.0, dtype=jnp.float64) -> Weights:
    """Structured weight matrices at the edge of Assumption 4.1 (realized delta exactly ``delta``,
    xi = 0), for how tight a bound is beyond random graphs:

    - ``"two-level"``: in each sub-class, entries ``1 + delta`` among its first half and 1 elsewhere
      (two clusters inside the sub-class: the Perron vector is as uneven as two levels allow);
    - ``"hub"``: entries ``1 + delta`` in the row and column of the sub-class's first point, 1 elsewhere.

    ``xi > 0``: every cross-sub-class entry is ``xi``, the largest Assumption 4.2 allows (the smallest
    within entry is 1 once a sub-class has two points), so the realized xi is exactly ``xi``: the edge
    of Lemma B.1's bounds. With ``delta = 0`` the blocks are all ones and the spectrum is exact: ``lambda_K-bar = 1 - ||E||_2``
    (Weyl's bound of Lemma B.2 holds with equality) for balanced sub-classes.
    """
    _check_delta_xi(delta, xi)
    if kind not in ("two-level", "hub"):
        raise ValueError(f"kind must be 'two-level' or 'hub', got {kind!r}")
    sub = part.sub_of_point
    rank = np.arange(part.n) - np.asarray(part.offsets[:-1])[sub]
    if kind == "two-level":
        h = rank < np.asarray(part.sizes)[sub] // 2
        high = h[:, None] & h[None, :]
    else:
        h = rank == 0
        high = h[:, None] | h[None, :]
    return jnp.asarray(np.where(sub[:, None] == sub[None, :], 1.0 + delta * high, float(xi)), dtype)
