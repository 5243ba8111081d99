"""Closed-form bounds of the paper, one function a statement, with the constants as printed.

Every function of this file traces under ``jit``/``vmap``/``grad`` in its real arguments (delta, xi,
beta, measured values); sizes (``n``, ``n_sub``, ``p``) are Python ints.

Notation: ``delta`` and ``xi`` are the compactness and distinguishability levels of
Assumptions 4.1 and 4.2; ``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1); ``n_k`` the
size of a sub-class; ``n_sub`` = K-bar; ``p`` the representation dimension.

Where the paper states only an order, O(.), the function returns the explicit
leading term (or the scale of the O-term) and the caller fits the order over a sweep
(:func:`loglog_order`: a log-log slope with a bootstrap interval).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory import _random
from theory._types import Array

# ----------------------------------------------------------------------------
# Sub-class structure: Theorem 4.3, Appendix A (xi = 0) and Appendix B (xi > 0)
# ----------------------------------------------------------------------------


def delta_prime(delta):
    """``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1): the column-entry ratio of a block of A-bar is <= 1 + delta'."""
    return (1.0 + jnp.asarray(delta, dtype=float)) ** 1.5 - 1.0


def column_ratio_bound(delta):
    """Lemma A.1: within one column of a block of A-bar, any two entries differ by a factor <= 1 + delta'."""
    return 1.0 + delta_prime(delta)


def perron_ratio_bound(delta):
    """Lemma A.3's tool (Minc 1970): max_i e_i / min_j e_j <= 1 + delta' for the Perron vector of a block."""
    return 1.0 + delta_prime(delta)


def perron_l1_sq_lower(n_k, delta):
    """Lemma A.3: ``||v_{k,1}||_1^2 >= n_k^2 / (1 + (n_k - 1)(1 + delta')^2)``."""
    dp = delta_prime(delta)
    n_k = jnp.asarray(n_k, dtype=float)
    return n_k**2 / (1.0 + (n_k - 1.0) * (1.0 + dp) ** 2)


def block_eig_sq_sum_upper(n_k, delta):
    """Lemma A.4: ``sum_i lambda_{k,i}^2 <= (1 + (n_k - 1)(1 + delta')^2)(1 + delta')^2 / n_k``."""
    dp = delta_prime(delta)
    n_k = jnp.asarray(n_k, dtype=float)
    return (1.0 + (n_k - 1.0) * (1.0 + dp) ** 2) * (1.0 + dp) ** 2 / n_k


def block_eig_upper(n_k, delta):
    """Corollary A.5: for i >= 2, ``lambda_{k,i} <= sqrt(Lemma A.4 bound - 1)`` = O(sqrt(delta'))."""
    return jnp.sqrt(jnp.maximum(block_eig_sq_sum_upper(n_k, delta) - 1.0, 0.0))


def eq12_leading(delta):
    """Eq. 12: ``sum_{i>=2} lambda_{k,i}^2 <= 4 delta' + O(delta'^2)``; returns ``4 delta'``."""
    return 4.0 * delta_prime(delta)


def cor_a6_block_leading(p_k, delta):
    """Corollary A.6, one block: ``sum_{i=2}^{p_k} lambda_{k,i} <= 2 sqrt(p_k - 1) sqrt(delta') + O(delta')``."""
    return 2.0 * jnp.sqrt(jnp.maximum(jnp.asarray(p_k, dtype=float) - 1.0, 0.0)) * jnp.sqrt(delta_prime(delta))


def cor_a6_global_leading(p, n_sub, delta):
    """Corollary A.6: ``sum_{i=Kbar+1}^{p} lambda_i <= 2 sqrt((p - Kbar) Kbar delta') + O(delta')``."""
    return 2.0 * jnp.sqrt(max(p - n_sub, 0) * n_sub * delta_prime(delta))


def alignment_lower_exact(sizes, delta):
    """Eq. 25 via Lemma A.3: ``||V_I V_I^T Y||_F^2 / n >= sum_k n_k^2 / (1 + (n_k - 1)(1 + delta')^2) / n``.

    Exact (no O-term): the alignment identity makes ``||V_I V_I^T Y||_F^2 = sum_k ||v_{k,1}||_1^2``.
    """
    sizes = jnp.asarray(sizes, dtype=float)
    return jnp.sum(perron_l1_sq_lower(sizes, delta)) / jnp.sum(sizes)


def alignment_lower_leading(sizes, delta):
    """Eq. 25 as printed: ``||V_I V_I^T Y||_F^2 / n >= 1 - (2/n) sum_k (n_k - 1) delta' - O(delta'^2)``."""
    sizes = jnp.asarray(sizes, dtype=float)
    return 1.0 - 2.0 * jnp.sum(sizes - 1.0) * delta_prime(delta) / jnp.sum(sizes)


def offblock_entry_upper(n_i, n_j, xi):
    """Lemma B.1: an off-block entry of the normalized adjacency is ``<= xi / sqrt(n_i n_j)``
    (= K-bar xi / n for balanced sub-classes, as printed)."""
    return xi / jnp.sqrt(jnp.asarray(n_i, dtype=float) * jnp.asarray(n_j, dtype=float))


def offblock_fro_upper(n_sub, xi):
    """Lemma B.1: ``||H||_F <= sqrt(1 - 1/Kbar) Kbar xi`` (= xi sqrt(Kbar (Kbar - 1)), any sizes)."""
    return jnp.sqrt(1.0 - 1.0 / n_sub) * n_sub * jnp.asarray(xi, dtype=float)


def perturbation_scale(n_sub, xi):
    """Lemmas B.1/B.2: the order ``Kbar^{5/2} xi`` of ``||E||_F`` and of the top eigenvalues' drop."""
    return n_sub**2.5 * jnp.asarray(xi, dtype=float)


def within_block_change_scale(n, n_sub, delta, xi):
    """Lemma B.1: the order ``K-bar^3 (1 + delta)^2 xi / n`` of a within-block entry of ``A-tilde - A-bar``."""
    return n_sub**3 * (1.0 + jnp.asarray(delta, dtype=float)) ** 2 * jnp.asarray(xi, dtype=float) / n


def appendix_b_bias_upper(beta, lam_k, align_sq, n):
    """App. B.2: ``bias^2 <= 1 - (1/n)(2 b - b^2) ||V~_I V~_I^T Y||_F^2`` with ``b = lambda~_Kbar / (lambda~_Kbar + beta)``
    the smallest shrinkage factor of the top K-bar directions (``align_sq`` = ``||V~_I V~_I^T Y||_F^2``)."""
    b = lam_k / (lam_k + beta)
    return 1.0 - (2.0 * b - b * b) * align_sq / n


def alignment_drop_scale(n, n_sub, xi):
    """Lemma B.3: the order ``n Kbar^2 xi`` of the drop of ``||V_I V_I^T Y||_F^2`` when xi > 0."""
    return n * n_sub**2 * jnp.asarray(xi, dtype=float)


class OrderFit(NamedTuple):
    """A fitted log-log order ``y ~ c x^slope`` over a sweep (:func:`loglog_order`).

    ``slope``: the least-squares slope of ``log y`` on ``log x`` (one intercept per group);
    ``lo``, ``hi``: its Bayesian-bootstrap interval; ``decades``: ``log10(max x / min x)``
    over the points used (``x > 0`` and ``y > 0``); ``n_used``: how many points those are.
    """

    slope: Array
    lo: Array
    hi: Array
    decades: Array
    n_used: Array


def loglog_order(x, y, *, key, groups=None, n_groups: int = 1, n_boot: int = 2000, level: float = 0.95) -> OrderFit:
    """Fit the order of ``y = O(x^q)`` over a sweep: the log-log slope and a bootstrap interval.

    The test of a big-O claim with power on a finite sweep (the diffrax order tests): a claim
    ``y = O(x^q)`` as ``x -> 0`` is contradicted when ``q`` lies above the interval (``q > hi``):
    ``y`` then falls more slowly than ``x^q`` and its hidden constant grows without bound. As
    ``x -> infinity`` it is contradicted when ``q < lo``. The caller requires the sweep to span
    enough decades of ``x`` (``theory.tolerances.ORDER_MIN_DECADES``) for the test to have power.

    Points with ``x <= 0``, ``y <= 0`` or non-finite values are left out (masked, so the
    function traces under ``jit`` and ``vmap``). ``groups`` (integers in ``[0, n_groups)``)
    gives each group its own intercept and one common slope: sweeps over several partitions
    have different constants but the same order. The interval is the Bayesian bootstrap
    (Rubin 1981): ``n_boot`` Dirichlet(1, ..., 1) weightings of the used points, the
    ``(1 - level)/2`` and ``(1 + level)/2`` percentiles of the weighted slopes.
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if not (isinstance(n_boot, int) and n_boot >= 100):
        raise ValueError(f"n_boot must be an int >= 100, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (isinstance(n_groups, int) and n_groups >= 1):
        raise ValueError(f"n_groups must be an int >= 1, got {n_groups!r}")
    g = jnp.zeros(x.shape, jnp.int32) if groups is None else jnp.asarray(groups, jnp.int32)
    if g.shape != x.shape:
        raise ValueError(f"groups must have the shape of x {x.shape}, got {g.shape}")
    dtype = jnp.result_type(x.dtype, y.dtype, jnp.float32)
    gam = _random.draw(jax.random.exponential, key, (n_boot, x.shape[0]), dtype)  # the bootstrap's Dirichlet draws
    return _loglog_order(x, y, gam, g, n_groups, float(level))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _loglog_order(x, y, gam, g, n_groups, level):
    """:func:`loglog_order` after validation, with its ``(n_boot, n)`` exponential draws ``gam`` drawn outside
    (``theory._random.draw``: one compiled draw per power-of-two size): one compiled function per (shape, n_groups, level)."""
    dtype = gam.dtype
    x, y = x.astype(dtype), y.astype(dtype)
    used = (x > 0) & (y > 0) & jnp.isfinite(x) & jnp.isfinite(y)
    lx = jnp.log(jnp.where(used, x, 1.0))
    ly = jnp.log(jnp.where(used, y, 1.0))
    onehot = jax.nn.one_hot(g, n_groups, dtype=dtype) * used[:, None]

    def slope(w):
        """Weighted least-squares slope of ly on lx with one intercept per group."""
        wg = w[:, None] * onehot  # (n, n_groups)
        tot = jnp.where(jnp.sum(wg, axis=0) > 0, jnp.sum(wg, axis=0), 1.0)
        cx = lx - onehot @ (wg.T @ lx / tot)  # centred within its group
        cy = ly - onehot @ (wg.T @ ly / tot)
        wu = w * used
        sxx = jnp.sum(wu * cx * cx)
        return jnp.where(sxx > 0, jnp.sum(wu * cx * cy) / jnp.where(sxx > 0, sxx, 1.0), jnp.nan)

    ones = used.astype(dtype)
    fit = slope(ones)
    gam = gam * ones[None, :]
    boot = jax.vmap(slope)(gam / jnp.maximum(jnp.sum(gam, axis=1, keepdims=True), jnp.finfo(dtype).tiny))
    q = 100.0 * jnp.asarray([(1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype)
    lo, hi = jnp.nanpercentile(boot, q)
    lxu = jnp.where(used, lx, jnp.nan)
    decades = (jnp.nanmax(lxu) - jnp.nanmin(lxu)) / jnp.log(10.0)
    return OrderFit(fit, lo, hi, jnp.where(jnp.any(used), decades, 0.0), jnp.sum(used))


# ============================================================================
# Linear head: Theorems 4.4, 4.5, Corollary 4.6
# ============================================================================
# Ridge head on the optimal representation under label noise (Section 4.1, App. A.3-A.4).
# ``n_sub`` is K-bar; ``delta`` the compactness level of Assumption 4.1; the proofs
# use ``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1).


def head_delta_prime(delta):
    """``delta' = (1 + delta)^{3/2} - 1 = (3/2) delta + O(delta^2)`` (Lemma A.1). Traceable."""
    return (1.0 + jnp.asarray(delta, dtype=float)) ** 1.5 - 1.0


def bias_bound_eq15(beta, delta, n: int, n_sub: int, *, in_delta_prime: bool = False):
    """Eq. 15: ``bias^2 <= (beta/(1+beta))^2 + 3 (1 - K-bar/n)(2 beta + 1)/(beta + 1)^2 delta + O(delta^2)``.

    Returns ``(leading, linear)``: the delta-free term and the explicit delta term, without
    the O(delta^2) remainder. ``in_delta_prime=True`` gives the unsimplified form
    ``2 (1 - K-bar/n)(2 beta + 1)/(beta + 1)^2 delta'`` instead. Traceable in beta and delta.
    """
    beta, delta = jnp.asarray(beta, dtype=float), jnp.asarray(delta, dtype=float)
    leading = (beta / (1.0 + beta)) ** 2
    coef = (1.0 - n_sub / n) * (2.0 * beta + 1.0) / (beta + 1.0) ** 2
    linear = 2.0 * coef * head_delta_prime(delta) if in_delta_prime else 3.0 * coef * delta
    return leading, linear


def variance_leading(beta, sigma, n: int, n_sub: int):
    """Theorem 4.4's variance leading term ``sigma^2 (K-bar/n) (1/(beta+1))^2``. Traceable."""
    return jnp.asarray(sigma, dtype=float) ** 2 * (n_sub / n) / (jnp.asarray(beta, dtype=float) + 1.0) ** 2


def variance_bound_a3(beta, delta, sigma, n: int, n_sub: int, p: int, *, in_delta_prime: bool = False):
    """End of App. A.3: ``variance <= sigma^2 (K-bar/n)(1/(beta+1))^2
    + sigma^2 sqrt(6 K-bar (p - K-bar))/n sqrt(delta)/beta + O(delta)``.

    Returns ``(leading, sqrt_term)`` without the O(delta) remainder; ``in_delta_prime=True``
    gives ``sigma^2 2 sqrt(K-bar (p-K-bar))/n sqrt(delta')/beta``. The sqrt term is ``inf``
    at beta = 0 with delta > 0 (and 0 when delta = 0 or p = K-bar). Traceable in beta, delta, sigma.
    """
    beta, delta, sigma = (jnp.asarray(x, dtype=float) for x in (beta, delta, sigma))
    leading = variance_leading(beta, sigma, n, n_sub)
    if in_delta_prime:
        num = sigma**2 * 2.0 * math.sqrt(n_sub * (p - n_sub)) / n * jnp.sqrt(head_delta_prime(delta))
    else:
        num = sigma**2 * math.sqrt(6.0 * n_sub * (p - n_sub)) / n * jnp.sqrt(delta)
    sqrt_term = jnp.where(num == 0.0, 0.0, num / jnp.where(beta > 0, beta, 1.0))
    return leading, jnp.where((num > 0) & (beta <= 0), jnp.inf, sqrt_term)


def flip_threshold(c_max, size_ratio=1.0):
    """Theorem 4.5 (Eq. 5) without its O(sqrt(delta)) term: ``1 / (1 + (n_max/n_min) c_max)``. Traceable."""
    return 1.0 / (1.0 + jnp.asarray(size_ratio, dtype=float) * jnp.asarray(c_max, dtype=float))


def symmetric_flip_threshold(n_classes: int, size_ratio=1.0):
    """Corollary 4.6 (Eq. 6) without its O(sqrt(delta)) term: ``(K-1) / (K + n_max/n_min - 1)``. Traceable."""
    return (n_classes - 1.0) / (n_classes + jnp.asarray(size_ratio, dtype=float) - 1.0)


def perron_entry_bounds(n_min: int, n_max: int, delta):
    """Lemma A.8: ``(e_min lower bound, e_max upper bound, e_max/e_min upper bound)`` of the
    entries of a sub-class's unit Perron vector. Traceable in delta."""
    dp = head_delta_prime(delta)
    e_min = jnp.sqrt(1.0 / (1.0 + (n_max - 1) * (1.0 + dp) ** 2))
    e_max = jnp.sqrt(1.0 / (1.0 + (n_min - 1) / (1.0 + dp) ** 2))
    ratio = (1.0 + dp) * jnp.sqrt((1.0 + (1.0 + dp) ** 2 * (n_max - 1)) / (n_max - 1 + (1.0 + dp) ** 2))
    return e_min, e_max, ratio


def flip_threshold_eq18(beta, delta, c_max, n_min: int, n_max: int, p: int):
    """Eq. 18, the threshold on alpha before simplification, without its O(delta') term:

    ``[1 - 2 sqrt(n_max)(1 + sqrt(c_max)) sqrt(p-1)(beta+1) sqrt(delta') / (beta e_min v n_min)]
    / [1 + (n_max e_max)/(n_min e_min) c_max]``,

    with Lemma A.8's bounds for ``e_min`` and ``e_max/e_min`` and the Perron-vector entry
    ``v`` (printed as ``v-dot^{(j)}_{kbar_j,1}``) bounded below by ``e_min``. Negative values
    mean the statement is vacuous at these sizes; ``-inf`` at beta = 0 with delta > 0. Traceable.
    """
    beta, c_max = jnp.asarray(beta, dtype=float), jnp.asarray(c_max, dtype=float)
    e_min, _, ratio = perron_entry_bounds(n_min, n_max, delta)
    dp = head_delta_prime(delta)
    denom = 1.0 + (n_max / n_min) * ratio * c_max
    corr = 2.0 * math.sqrt(n_max) * (1.0 + jnp.sqrt(c_max)) * math.sqrt(p - 1) * (beta + 1.0) * jnp.sqrt(dp)
    corr = jnp.where(dp == 0.0, 0.0, corr / jnp.where(beta > 0, beta * e_min * e_min * n_min, 1.0))
    return jnp.where((dp > 0) & (beta <= 0), -jnp.inf, (1.0 - corr) / denom)


# ============================================================================
# Linear head: gradient descent (C44) and the regimes of Theorems 4.4-4.5
# ============================================================================


def gd_rate_bound(w_star_norm, mu, L, steps: int):
    """Gradient descent from W = 0 with step ``1/L`` on an ``L``-smooth, ``mu``-strongly convex
    quadratic (the ridge objective of Eq. 2 with ``mu = s_min(F)^2 + beta``, ``L = s_max(F)^2 + beta``):
    ``||W_T - W*||_F <= (1 - mu/L)^T ||W_0 - W*||_F = (1 - mu/L)^T ||W*||_F``. Traceable."""
    return (1.0 - jnp.asarray(mu, dtype=float) / L) ** steps * w_star_norm


def flip_perturbation_scale(delta, xi, n_sub: int):
    """The size of the perturbation that Theorem 4.5's O(sqrt(delta)) term and Corollary 4.6's remark
    (singular values and vectors move by O(K-bar^{5/2} xi) when xi > 0) put on the threshold:
    ``sqrt(delta) + K-bar^{5/2} xi``, with hidden constant 1. Traceable."""
    return jnp.sqrt(jnp.asarray(delta, dtype=float)) + n_sub**2.5 * jnp.asarray(xi, dtype=float)
