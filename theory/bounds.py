"""Closed-form bounds of the paper, one function per printed bound, with its source.

The checks in ``experiments/checks/`` compare each with the measured quantity.
"""

from __future__ import annotations

import math


# ============================================================================
# Linear head: Theorems 4.4, 4.5, Corollary 4.6
# ============================================================================
# Ridge head on the optimal representation under label noise (Section 4.1, App. A.3-A.4).
# ``n_sub`` is K-bar; ``delta`` the compactness level of Assumption 4.1; the proofs
# use ``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1).


def head_delta_prime(delta: float) -> float:
    """``delta' = (1 + delta)^{3/2} - 1 = (3/2) delta + O(delta^2)`` (Lemma A.1)."""
    return (1.0 + float(delta)) ** 1.5 - 1.0


def bias_bound_eq15(beta: float, delta: float, n: int, n_sub: int, *, in_delta_prime: bool = False) -> tuple[float, float]:
    """Eq. 15: ``bias^2 <= (beta/(1+beta))^2 + 3 (1 - K-bar/n)(2 beta + 1)/(beta + 1)^2 delta + O(delta^2)``.

    Returns ``(leading, linear)``: the delta-free term and the explicit delta term, without
    the O(delta^2) remainder. ``in_delta_prime=True`` gives the unsimplified form
    ``2 (1 - K-bar/n)(2 beta + 1)/(beta + 1)^2 delta'`` instead.
    """
    beta = float(beta)
    leading = (beta / (1.0 + beta)) ** 2
    coef = (1.0 - n_sub / n) * (2.0 * beta + 1.0) / (beta + 1.0) ** 2
    linear = 2.0 * coef * head_delta_prime(delta) if in_delta_prime else 3.0 * coef * float(delta)
    return leading, linear


def variance_leading(beta: float, sigma: float, n: int, n_sub: int) -> float:
    """Theorem 4.4's variance leading term ``sigma^2 (K-bar/n) (1/(beta+1))^2``."""
    return float(sigma) ** 2 * (n_sub / n) / (float(beta) + 1.0) ** 2


def variance_bound_a3(
    beta: float, delta: float, sigma: float, n: int, n_sub: int, p: int, *, in_delta_prime: bool = False
) -> tuple[float, float]:
    """End of App. A.3: ``variance <= sigma^2 (K-bar/n)(1/(beta+1))^2
    + sigma^2 sqrt(6 K-bar (p - K-bar))/n sqrt(delta)/beta + O(delta)``.

    Returns ``(leading, sqrt_term)`` without the O(delta) remainder; ``in_delta_prime=True``
    gives ``sigma^2 2 sqrt(K-bar (p-K-bar))/n sqrt(delta')/beta``. The sqrt term is ``inf``
    at beta = 0 with delta > 0.
    """
    beta, delta, sigma = float(beta), float(delta), float(sigma)
    leading = variance_leading(beta, sigma, n, n_sub)
    if in_delta_prime:
        num = sigma**2 * 2.0 * math.sqrt(n_sub * (p - n_sub)) / n * math.sqrt(head_delta_prime(delta))
    else:
        num = sigma**2 * math.sqrt(6.0 * n_sub * (p - n_sub)) / n * math.sqrt(delta)
    if num == 0.0:
        return leading, 0.0
    return leading, (num / beta if beta > 0 else math.inf)


def flip_threshold(c_max: float, size_ratio: float = 1.0) -> float:
    """Theorem 4.5 (Eq. 5) without its O(sqrt(delta)) term: ``1 / (1 + (n_max/n_min) c_max)``."""
    return 1.0 / (1.0 + float(size_ratio) * float(c_max))


def symmetric_flip_threshold(n_classes: int, size_ratio: float = 1.0) -> float:
    """Corollary 4.6 (Eq. 6) without its O(sqrt(delta)) term: ``(K-1) / (K + n_max/n_min - 1)``."""
    return (n_classes - 1.0) / (n_classes + float(size_ratio) - 1.0)


def perron_entry_bounds(n_min: int, n_max: int, delta: float) -> tuple[float, float, float]:
    """Lemma A.8: ``(e_min lower bound, e_max upper bound, e_max/e_min upper bound)`` of the
    entries of a sub-class's unit Perron vector."""
    dp = head_delta_prime(delta)
    e_min = math.sqrt(1.0 / (1.0 + (n_max - 1) * (1.0 + dp) ** 2))
    e_max = math.sqrt(1.0 / (1.0 + (n_min - 1) / (1.0 + dp) ** 2))
    ratio = (1.0 + dp) * math.sqrt((1.0 + (1.0 + dp) ** 2 * (n_max - 1)) / (n_max - 1 + (1.0 + dp) ** 2))
    return e_min, e_max, ratio


def flip_threshold_eq18(beta: float, delta: float, c_max: float, n_min: int, n_max: int, p: int) -> float:
    """Eq. 18, the threshold on alpha before simplification, without its O(delta') term:

    ``[1 - 2 sqrt(n_max)(1 + sqrt(c_max)) sqrt(p-1)(beta+1) sqrt(delta') / (beta e_min v n_min)]
    / [1 + (n_max e_max)/(n_min e_min) c_max]``,

    with Lemma A.8's bounds for ``e_min`` and ``e_max/e_min`` and the Perron-vector entry
    ``v`` (printed as ``v-dot^{(j)}_{kbar_j,1}``) bounded below by ``e_min``. Negative values
    mean the statement is vacuous at these sizes.
    """
    beta = float(beta)
    e_min, _, ratio = perron_entry_bounds(n_min, n_max, delta)
    dp = head_delta_prime(delta)
    denom = 1.0 + (n_max / n_min) * ratio * float(c_max)
    if dp == 0.0:
        return 1.0 / denom
    if beta <= 0:
        return -math.inf
    corr = 2.0 * math.sqrt(n_max) * (1.0 + math.sqrt(c_max)) * math.sqrt(p - 1) * (beta + 1.0) * math.sqrt(dp)
    corr /= beta * e_min * e_min * n_min
    return (1.0 - corr) / denom
