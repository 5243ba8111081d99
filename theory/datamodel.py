"""An input-space sub-class data model, its augmentations, and the augmentation graph they induce.

Section 4's data model in R^d: class centres, sub-class centres nested in them, and
natural points ``x*`` around the sub-class centres (class -> sub-classes -> points).
The natural distribution P is uniform over a finite set of natural points. An
augmentation ``A(.|x*)`` is a density on R^d:

- :class:`GaussianNoise`: ``x = x* + sigma * eps``, ``A(x|x*) = N(x; x*, sigma^2 I)``,
  known in closed form.
- :class:`Masking`: ``x = b * x* + sigma * eps`` with each coordinate kept
  (``b_k = 1``) with probability ``keep``, independently; ``A(x|x*) = E_b N(x; b*x*, sigma^2 I)``.
  The expectation over the 2^d masks is estimated by Monte Carlo (``n_masks``
  masks) or, for small d, enumerated exactly.

The graph's vertices are a finite sample of augmented points (``views`` augmentations
of every natural point), ordered by sub-class. The edge weight is the paper's
(Section 4, following HaoChen et al. 2021)

    w_ij = E_{x* ~ P}[A(x_i|x*) A(x_j|x*)] = (1/N) sum_m A(x_i|x*_m) A(x_j|x*_m),

exact for Gaussian noise (a finite sum of Gaussian kernel products) and Monte Carlo
for masking. Weights are computed in log space and divided by their largest entry;
a global scale changes neither ``A-bar`` nor the spectral contrastive loss (whose
pair distributions are ``W / sum(W)``). The realized delta and xi of the result are
measured with :func:`theory.graph.measure_delta` and :func:`theory.graph.measure_xi`.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory._random import rng
from theory._types import Array, PRNGKeyArray, Weights
from theory.graph import Partition, partition


class GaussianNoise(NamedTuple):
    """Additive isotropic Gaussian noise of standard deviation ``sigma``: A(x|x*) = N(x; x*, sigma^2 I)."""

    sigma: float


class Masking(NamedTuple):
    """Random coordinate masking then Gaussian noise: ``x = b * x* + sigma * eps``.

    Each coordinate is kept with probability ``keep``. ``sigma > 0`` makes A(.|x*) a
    density (masking alone is a discrete distribution, whose graph would only join
    augmentations of the same natural point).
    """

    keep: float
    sigma: float


Augmentation = GaussianNoise | Masking


def _check_augmentation(aug) -> None:
    if not isinstance(aug, (GaussianNoise, Masking)):
        raise ValueError(f"augmentation must be GaussianNoise or Masking, got {type(aug).__name__}")
    if not float(aug.sigma) > 0:
        raise ValueError(f"augmentation sigma must be > 0, got {aug.sigma}")
    if isinstance(aug, Masking) and not 0.0 < float(aug.keep) <= 1.0:
        raise ValueError(f"masking keep must be in (0, 1], got {aug.keep}")


def check_finite(x, name: str) -> np.ndarray:
    """Refuse NaN or inf in an input array, naming it."""
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        bad = int(np.sum(~np.isfinite(x)))
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf entries")
    return x


class DataModel(NamedTuple):
    """Natural points in R^d with their class -> sub-class hierarchy.

    ``natural`` (N, d), ordered by sub-class; ``natural_part`` the partition of the
    natural points; ``class_centres`` (K, d) and ``sub_centres`` (K-bar, d).
    """

    natural: Array
    natural_part: Partition
    class_centres: Array
    sub_centres: Array

    @property
    def d(self) -> int:
        return int(self.natural.shape[1])


def make_datamodel(
    key: PRNGKeyArray,
    *,
    n_classes: int,
    n_sub: int,
    per_sub: int,
    d: int,
    class_sep: float = 4.0,
    sub_sep: float = 2.0,
    spread: float = 0.25,
    dtype=jnp.float64,
) -> DataModel:
    """Draw class centres ``N(0, class_sep^2 I)``, sub-class centres ``c_k + N(0, sub_sep^2 I)``
    and ``per_sub`` natural points ``N(sub-centre, spread^2 I)`` in each of K-bar sub-classes
    (sub-class k belongs to class ``k mod K``)."""
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    if per_sub < 1:
        raise ValueError(f"per_sub must be >= 1, got {per_sub}")
    for name, val in (("class_sep", class_sep), ("sub_sep", sub_sep), ("spread", spread)):
        if not (np.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {val}")
    part = partition([per_sub] * n_sub, n_classes=n_classes)
    g = rng(key)
    class_centres = class_sep * g.standard_normal((n_classes, d))
    sub_centres = class_centres[np.asarray(part.sub_to_class)] + sub_sep * g.standard_normal((n_sub, d))
    natural = sub_centres[part.sub_of_point] + spread * g.standard_normal((part.n, d))
    return DataModel(*(jnp.asarray(a, dtype) for a in (natural,)), part, jnp.asarray(class_centres, dtype),
                     jnp.asarray(sub_centres, dtype))


def augment_host(key: PRNGKeyArray, x_star: Array, aug: Augmentation) -> Array:
    """One draw from A(.|x*) for every row of ``x_star``, drawn on the host (see ``theory._random``)."""
    _check_augmentation(aug)
    g = rng(key)
    x = np.asarray(x_star)
    if isinstance(aug, Masking):
        x = x * (g.random(x.shape) < aug.keep)
    return jnp.asarray(x + aug.sigma * g.standard_normal(x.shape), jnp.asarray(x_star).dtype)


def augment(key: PRNGKeyArray, x_star: Array, aug: Augmentation) -> Array:
    """One draw from A(.|x*) for every row of ``x_star`` (shape (m, d)); traceable under jit."""
    _check_augmentation(aug)
    keep = float(aug.keep) if isinstance(aug, Masking) else 1.0
    return _augment(key, x_star, keep, float(aug.sigma), masking=isinstance(aug, Masking))


@functools.partial(jax.jit, static_argnames=("masking",))
def _augment(key, x, keep, sigma, *, masking):
    k_b, k_e = jax.random.split(key)
    if masking:
        x = x * jax.random.bernoulli(k_b, keep, x.shape).astype(x.dtype)
    return x + sigma * jax.random.normal(k_e, x.shape, x.dtype)


@jax.jit
def _gauss_logpdf(x: Array, centres: Array, sigma: float) -> Array:
    """log N(x_i; c_m, sigma^2 I) for all pairs, shape (n, m)."""
    d = x.shape[1]
    sq = jnp.sum(x**2, 1)[:, None] + jnp.sum(centres**2, 1)[None, :] - 2.0 * x @ centres.T
    return -0.5 * jnp.maximum(sq, 0.0) / sigma**2 - 0.5 * d * jnp.log(2.0 * jnp.pi * sigma**2)


def all_masks(d: int, keep: float, dtype=jnp.float64) -> tuple[Array, Array]:
    """Every mask in {0,1}^d and its log-probability (exact enumeration, small d only)."""
    if d > 16:
        raise ValueError(f"exact mask enumeration needs d <= 16, got {d}")
    masks = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=d)), dtype)
    kept = jnp.sum(masks, axis=1)
    log_p = kept * jnp.log(keep) + (d - kept) * (jnp.log1p(-keep) if keep < 1 else -jnp.inf)
    if keep == 1:
        log_p = jnp.where(kept == d, 0.0, -jnp.inf)
    return masks, log_p


def log_augmentation_density(
    x: Array,
    x_star: Array,
    aug: Augmentation,
    *,
    key: PRNGKeyArray | None = None,
    n_masks: int = 256,
    exact: bool = False,
) -> Array:
    """``log A(x_i | x*_m)`` for all pairs, shape (n, N).

    Gaussian noise: exact. Masking: ``log (1/B) sum_b N(x_i; b*x*_m, sigma^2 I)`` over
    ``n_masks`` random masks (the same masks for every pair: common random numbers),
    or the exact sum over all 2^d masks weighted by their probabilities (``exact=True``).
    """
    _check_augmentation(aug)
    x = jnp.asarray(check_finite(x, "x"))
    x_star = jnp.asarray(check_finite(x_star, "x_star"))
    if isinstance(aug, GaussianNoise):
        return _gauss_logpdf(x, x_star, aug.sigma)
    d = x.shape[1]
    if exact:
        masks, log_p = all_masks(d, float(aug.keep), x.dtype)
    else:
        if key is None:
            raise ValueError("Monte-Carlo masking weights need a key")
        if n_masks < 1:
            raise ValueError(f"n_masks must be >= 1, got {n_masks}")
        masks = jnp.asarray(rng(key).random((n_masks, d)) < aug.keep, x.dtype)
        log_p = jnp.full((n_masks,), -jnp.log(n_masks), x.dtype)

    return _masked_logpdf(x, x_star, masks, log_p, float(aug.sigma))


@jax.jit
def _masked_logpdf(x, x_star, masks, log_p, sigma):
    """``logsumexp_b [log N(x_i; b * x*_m, sigma^2 I) + log_p[b]]``, shape (n, N)."""

    def one_mask(args):
        b, lp = args
        return _gauss_logpdf(x, x_star * b[None, :], sigma) + lp

    logs = jax.lax.map(one_mask, (masks, log_p))  # (B, n, N)
    return jax.scipy.special.logsumexp(logs, axis=0)


@jax.jit
def graph_from_log_density(log_a: Array) -> Weights:
    """``w_ij = (1/N) sum_m A(x_i|x*_m) A(x_j|x*_m)``, divided by its largest entry.

    Computed as ``exp(logsumexp_m(log_a[i, m] + log_a[j, m]) - max)``; a global scale
    changes neither A-bar nor the spectral contrastive loss.
    """
    log_w = jax.scipy.special.logsumexp(log_a[:, None, :] + log_a[None, :, :], axis=2)
    log_w = 0.5 * (log_w + log_w.T)
    return jnp.exp(log_w - jnp.max(log_w))


class AugmentedSample(NamedTuple):
    """The graph's vertices: augmented points ``x`` (n, d), ordered by sub-class, their
    partition, the index of the natural point each came from, and the weights W (n, n)."""

    x: Array
    part: Partition
    source: Array
    W: Weights


def augmentation_graph(
    key: PRNGKeyArray,
    model: DataModel,
    aug: Augmentation,
    *,
    views: int = 2,
    n_masks: int = 256,
    exact: bool = False,
) -> AugmentedSample:
    """Draw ``views`` augmentations of every natural point and build their augmentation graph.

    Vertex order: sub-class by sub-class (within one, natural point by natural point,
    view by view), so the vertex partition has ``views * per_sub`` points per sub-class.
    """
    _check_augmentation(aug)
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    check_finite(model.natural, "natural points")
    k_aug, k_mask = jax.random.split(key)
    n_nat = model.natural.shape[0]
    source = np.repeat(np.arange(n_nat), views)
    x = augment_host(k_aug, model.natural[np.asarray(source)], aug)
    part = partition([views * s for s in model.natural_part.sizes], model.natural_part.sub_to_class)
    log_a = log_augmentation_density(x, model.natural, aug, key=k_mask, n_masks=n_masks, exact=exact)
    return AugmentedSample(x, part, source, graph_from_log_density(log_a))
