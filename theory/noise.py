"""Label noise of the paper's data model (Section 4): Gaussian noise and label flipping.

- :func:`gaussian_noise`: ``Y-hat = Y + Delta-Y`` with each column of ``Delta-Y`` drawn from
  ``N(0, sigma^2 I_n / K)`` (Theorem 4.4), so a row's total noise variance is ``sigma^2``.
- Label flipping (Theorem 4.5, Corollary 4.6): exactly ``floor(alpha * n_kbar)`` points of
  every sub-class ``kbar`` get a wrong label (the proof counts mislabeled points per
  sub-class: "at least ``n_min (1 - alpha)`` correct labels"). Where the wrong labels go:

  * :func:`symmetric_flips`: to the other ``K - 1`` classes, either dealt evenly
    (``balanced=True``: the smallest realizable ``c_max``, the paper's definition of
    symmetric noise up to rounding) or uniformly at random (``balanced=False``: the usual
    CIFAR protocol, whose realized ``c_max`` is larger than ``1/(K-1)``);
  * :func:`asymmetric_flips`: every flip of class ``j`` goes to ``class_map[j]``;
  * :func:`concentrated_flips`: in each sub-class a fraction ``c_max`` of the flips goes to
    one (random) wrong class and the rest are dealt evenly over the others.

Every flip generator returns the realized noise rate and the realized ``c_max`` with the
paper's definition ``c_{k|kbar} = m_{kbar,k} / m_kbar`` over sub-classes with ``m_kbar > 0``
(the proof of Theorem 4.5 needs the realized one, not its expectation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _random
from theory._types import Array, Labels, PRNGKeyArray
from theory.graph import Partition

# Guards floor(alpha * n) against round-off such as 0.3 * 10 = 2.9999999999999996.
_FLOOR_EPS = 1e-9


class GaussianLabels(NamedTuple):
    """``Y_noisy = Y + dY``; ``sigma2`` is the realized mean squared row norm of ``dY``."""

    Y_noisy: Labels
    dY: Labels
    sigma2: Array


class FlippedLabels(NamedTuple):
    """Flipped labels and what was realized.

    ``Y_noisy`` (n, K) one-hot noisy labels; ``labels`` (n,) their class indices;
    ``flipped`` (n,) which points are mislabeled; ``counts`` (K-bar, K) the
    ``m_{kbar,k}`` (mislabeled points of sub-class kbar labeled k); ``alpha`` the overall
    mislabeled fraction; ``alpha_max`` the largest per-sub-class fraction ``m_kbar/n_kbar``;
    ``c_max`` the realized ``max c_{k|kbar}`` (0 when nothing is flipped).
    """

    Y_noisy: Labels
    labels: np.ndarray
    flipped: np.ndarray
    counts: np.ndarray
    alpha: float
    alpha_max: float
    c_max: float


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha


def _check_classes(part: Partition) -> int:
    K = part.n_classes
    if K < 2:
        raise ValueError(f"K (the number of classes) must be >= 2 to flip labels, got {K}")
    return K


def check_c_max(c_max: float, n_classes: int) -> float:
    """``c_max`` must lie in ``[1/(K-1), 1]`` (Section 4 definition)."""
    c_max = float(c_max)
    lo = 1.0 / (n_classes - 1)
    if not (lo - 1e-12 <= c_max <= 1.0 + 1e-12):
        raise ValueError(f"c_max must be in [1/(K-1), 1] = [{lo:.4g}, 1] for K={n_classes}, got {c_max}")
    return c_max


def gaussian_noise(Y: Labels, sigma: float, *, key: PRNGKeyArray) -> GaussianLabels:
    """``Y + dY`` with the columns of ``dY`` i.i.d. ``N(0, sigma^2 I_n / K)`` (Theorem 4.4)."""
    if isinstance(sigma, (int, float, np.integer, np.floating)) and not sigma >= 0:  # arrays and tracers pass: traceable
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    Y = jnp.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] < 2:
        raise ValueError(f"Y must be an (n, K) label matrix with K >= 2, got shape {Y.shape}")
    n, K = Y.shape
    dY = (sigma / np.sqrt(K)) * _random.draw(jax.random.normal, key, (n, K), Y.dtype)
    return GaussianLabels(Y + dY, dY, jnp.sum(dY**2) / n)


def flip_counts(part: Partition, alpha: float) -> np.ndarray:
    """``m_kbar = floor(alpha * n_kbar)``, the number of mislabeled points of each sub-class."""
    alpha = _check_alpha(alpha)
    return np.floor(alpha * np.asarray(part.sizes, dtype=np.float64) + _FLOOR_EPS).astype(np.int64)


def _uniforms(key: PRNGKeyArray, n: int) -> np.ndarray:
    """Three rows of n uniforms on [0, 1) from ``key``: the first n columns of a (3, width) draw, width the next
    power of two >= n (``theory._random.draw``: every width shares one compiled program)."""
    width = 1 << max(int(n - 1).bit_length(), 4)
    return np.asarray(_random.draw(jax.random.uniform, key, (3, width), jnp.float64))[:, :n]


def _ranks_within_subclass(part: Partition, u: np.ndarray) -> np.ndarray:
    """A uniformly random order of the points inside each sub-class: rank of each point, shape (n,)."""
    sub = part.sub_of_point
    order = np.lexsort((u, sub))  # by sub-class, then by u
    ranks = np.empty(part.n, dtype=np.int64)
    offsets = np.asarray(part.offsets[:-1])
    ranks[order] = np.arange(part.n) - offsets[sub[order]]
    return ranks


def _finish(part: Partition, flipped: np.ndarray, noisy: np.ndarray) -> FlippedLabels:
    K = part.n_classes
    sub = part.sub_of_point
    counts = np.zeros((part.n_sub, K), dtype=np.int64)
    np.add.at(counts, (sub[flipped], noisy[flipped]), 1)
    m = counts.sum(axis=1)
    has = m > 0
    c_max = float(np.max(counts[has].max(axis=1) / m[has])) if np.any(has) else 0.0
    sizes = np.asarray(part.sizes)
    return FlippedLabels(
        Y_noisy=jnp.asarray(np.eye(K, dtype=np.float64)[noisy]),
        labels=noisy,
        flipped=flipped,
        counts=counts,
        alpha=float(m.sum() / part.n),
        alpha_max=float(np.max(m / sizes)),
        c_max=c_max,
    )


def _flip_with_offsets(part: Partition, alpha: float, key: PRNGKeyArray, offset_fn) -> FlippedLabels:
    """Flip the ``m_kbar`` lowest-ranked points of each sub-class to ``(y + 1 + offset) mod K``.

    ``offset_fn(rank, m, sub, u, v) -> offsets in [0, K-2]`` for the flipped points, where
    ``u`` are uniforms, one per flipped point, and ``v`` uniforms, one per sub-class.
    """
    K = _check_classes(part)
    m = flip_counts(part, alpha)
    u = _uniforms(key, part.n)
    ranks = _ranks_within_subclass(part, u[0])
    sub = part.sub_of_point
    clean = part.class_of_point
    flipped = ranks < m[sub]
    offsets = offset_fn(ranks[flipped], m[sub[flipped]], sub[flipped], u[1][flipped], u[2][: part.n_sub])
    noisy = clean.copy()
    noisy[flipped] = (clean[flipped] + 1 + offsets) % K
    return _finish(part, flipped, noisy)


def symmetric_flips(part: Partition, alpha: float, *, key: PRNGKeyArray, balanced: bool = True) -> FlippedLabels:
    """Flip exactly ``floor(alpha n_kbar)`` points of each sub-class to the other classes.

    ``balanced=True`` deals the flips of a sub-class evenly over the ``K - 1`` wrong classes
    (counts differ by at most one, starting at a random class), so the realized ``c_max`` is
    ``ceil(m/(K-1))/m``, equal to ``1/(K-1)`` when ``K - 1`` divides every ``m_kbar``.
    ``balanced=False`` draws each wrong class uniformly at random.
    """
    K = _check_classes(part)
    _check_alpha(alpha)

    def offsets(rank, m, sub, u, v):
        if balanced:
            shift = np.floor(v * (K - 1)).astype(np.int64)
            return (rank + shift[sub]) % (K - 1)
        return np.floor(u * (K - 1)).astype(np.int64)

    return _flip_with_offsets(part, alpha, key, offsets)


def asymmetric_flips(
    part: Partition, alpha: float, class_map: Sequence[int], *, key: PRNGKeyArray
) -> FlippedLabels:
    """Flip exactly ``floor(alpha n_kbar)`` points of each sub-class of class ``j`` to ``class_map[j]``.

    The realized ``c_max`` is 1 whenever anything is flipped.
    """
    K = _check_classes(part)
    _check_alpha(alpha)
    class_map = np.asarray(class_map, dtype=np.int64)
    if class_map.shape != (K,):
        raise ValueError(f"class_map must give one target class per class (K={K}), got shape {class_map.shape}")
    if np.any((class_map < 0) | (class_map >= K)):
        raise ValueError(f"class_map must hold class indices in [0, {K - 1}], got {class_map.tolist()}")
    if np.any(class_map == np.arange(K)):
        raise ValueError(f"class_map must send every class to a different class, got {class_map.tolist()}")
    cls_sub = np.asarray(part.sub_to_class)
    off_sub = (class_map[cls_sub] - cls_sub - 1) % K  # offset in [0, K-2]

    return _flip_with_offsets(part, alpha, key, lambda rank, m, sub, u, v: off_sub[sub])


def concentrated_flips(part: Partition, alpha: float, c_max: float, *, key: PRNGKeyArray) -> FlippedLabels:
    """Flips whose largest concentration is ``c_max``: in each sub-class with ``m`` flips,
    ``d = max(ceil(m/(K-1)), floor(c_max m))`` go to one random wrong class and the other
    ``m - d`` are dealt evenly over the remaining ``K - 2`` wrong classes.

    The realized ``c_max`` is at most the prescribed one unless rounding forces more (the
    smallest realizable is ``ceil(m/(K-1))/m``); it is returned.
    """
    K = _check_classes(part)
    _check_alpha(alpha)
    c_max = check_c_max(c_max, K)

    def offsets(rank, m, sub, u, v):
        dominant = np.floor(v * (K - 1)).astype(np.int64)[sub]
        d = np.maximum(-(-m // (K - 1)), np.floor(c_max * m + _FLOOR_EPS).astype(np.int64))
        if K == 2:
            return dominant
        rest = (dominant + 1 + (rank - d) % (K - 2)) % (K - 1)
        return np.where(rank < d, dominant, rest)

    return _flip_with_offsets(part, alpha, key, offsets)
