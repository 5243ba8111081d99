"""Statistics over seeds: Welch's two-sample t-test, Holm's step-down adjustment, and the power of
Welch's test (how many seeds a difference needs).

Pure functions of numbers (numpy and ``scipy.special``'s t distributions); no I/O.

- :func:`welch`: the difference of two means, its standard error ``sqrt(s_a^2/n_a + s_b^2/n_b)``,
  the Welch-Satterthwaite degrees of freedom ``se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))``,
  ``t = diff / se``, the two-sided p-value ``2 P(T_df > |t|)`` and the ``level`` confidence interval
  ``diff +- t_{df, 1-(1-level)/2} se`` (Welch 1947; Satterthwaite 1946).
- :func:`holm`: Holm's (1979) step-down adjusted p-values, ``p~_(i) = max_{j <= i} min(1, (m-j+1) p_(j))``
  over the p-values sorted ascending; rejecting where ``p~ <= alpha`` controls the family-wise error at
  ``alpha`` for any dependence between the tests.
- :func:`welch_power`, :func:`seeds_needed`, :func:`detectable_difference`: the power of the two-sided Welch test at ``n`` seeds per
  cell for a true difference ``diff`` and per-cell standard deviations, by the **noncentral t
  approximation**: ``t`` taken as noncentral t with the Welch-Satterthwaite df (at those n and standard
  deviations) and noncentrality ``diff / se``. It treats the standard deviations as known (they are
  estimates from a few seeds), so it is a planning number, not a guarantee.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special


class Welch(NamedTuple):
    """Welch's test of ``mean(a) - mean(b)``; ``p`` two-sided, ``[lo, hi]`` the ``level`` interval."""

    diff: float
    se: float
    df: float
    t: float
    p: float
    lo: float
    hi: float
    mean_a: float
    mean_b: float
    sd_a: float
    sd_b: float
    n_a: int
    n_b: int


def _sample(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size < 2:
        raise ValueError(f"{name} needs at least 2 values for a standard deviation, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a.tolist()}")
    return a


def satterthwaite_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of ``var_a/n_a + var_b/n_b`` (nan when both are 0)."""
    va, vb = var_a / n_a, var_b / n_b
    den = (va * va / (n_a - 1) if va else 0.0) + (vb * vb / (n_b - 1) if vb else 0.0)
    return (va + vb) ** 2 / den if den > 0 else math.nan


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` (real, > 0) degrees of freedom."""
    return float(special.stdtrit(df, q))


def t_sf(t: float, df: float) -> float:
    """``P(T_df > t)``."""
    return float(special.stdtr(df, -t))


def welch(a, b, *, level: float = 0.95) -> Welch:
    """Welch's two-sided t-test of ``mean(a) - mean(b)`` and its ``level`` confidence interval.

    Both samples need n >= 2. Where both standard deviations are 0 (identical values in each cell) the
    standard error is 0: a nonzero difference then has p = 0 and a zero-width interval, a zero one p = 1.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a, b = _sample(a, "a"), _sample(b, "b")
    na, nb = a.size, b.size
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    diff = float(a.mean() - b.mean())
    se = math.sqrt(va / na + vb / nb)
    df = satterthwaite_df(va, na, vb, nb)
    if se == 0.0:
        t = math.copysign(math.inf, diff) if diff else math.nan
        p, lo, hi = (0.0 if diff else 1.0), diff, diff
    else:
        t = diff / se
        p = min(1.0, 2.0 * t_sf(abs(t), df))
        half = t_quantile(0.5 + level / 2, df) * se
        lo, hi = diff - half, diff + half
    return Welch(diff, se, df, t, p, lo, hi, float(a.mean()), float(b.mean()), math.sqrt(va), math.sqrt(vb), na, nb)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given (see the module docstring)."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p must be a 1-d array of values in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def welch_power(diff: float, sd_a: float, sd_b: float, n_a: int, n_b: int | None = None, *,
                alpha: float = 0.05) -> float:
    """Power of the two-sided Welch test at level ``alpha`` for a true difference ``diff`` with
    per-cell standard deviations ``sd_a``, ``sd_b`` and ``n_a``, ``n_b`` (default ``n_a``) seeds, by the
    noncentral t approximation of the module docstring."""
    n_b = n_a if n_b is None else n_b
    if min(n_a, n_b) < 2:
        raise ValueError(f"n_a and n_b must be >= 2, got {n_a}, {n_b}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if sd_a < 0 or sd_b < 0:
        raise ValueError(f"standard deviations must be >= 0, got {sd_a}, {sd_b}")
    va, vb = sd_a**2, sd_b**2
    se = math.sqrt(va / n_a + vb / n_b)
    if se == 0.0:
        return 1.0 if diff else alpha
    df = satterthwaite_df(va, n_a, vb, n_b)
    crit = t_quantile(1 - alpha / 2, df)
    nc = abs(diff) / se
    below = float(special.nctdtr(df, nc, crit))
    wrong_side = float(special.nctdtr(df, nc, -crit))
    if not math.isfinite(wrong_side):  # scipy's nctdtr gives nan deep in the lower tail; it is <= below there
        wrong_side = 0.0
    return 1.0 - below + wrong_side


def seeds_needed(diff: float, sd_a: float, sd_b: float, *, alpha: float = 0.05, power: float = 0.8,
                 n_max: int = 1000) -> int | None:
    """The smallest n (seeds in each cell) at which :func:`welch_power` reaches ``power``; None beyond ``n_max``.
    The power rises with n (the noncentrality grows like sqrt(n), the df grow and the critical value falls),
    so the search doubles n, then bisects."""
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if diff == 0:
        return None
    enough = lambda n: welch_power(diff, sd_a, sd_b, n, alpha=alpha) >= power  # noqa: E731 (rises with n)
    if enough(2):
        return 2
    lo, hi = 2, 4  # not enough at lo; search hi by doubling, then bisect (lo, hi]
    while not enough(min(hi, n_max)):
        if hi >= n_max:
            return None
        lo, hi = hi, 2 * hi
    hi = min(hi, n_max)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def detectable_difference(sd_a: float, sd_b: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The true difference that :func:`welch_power` detects with ``power`` at ``n`` seeds per cell
    (bisection: the power rises with the difference)."""
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    se = math.sqrt((sd_a**2 + sd_b**2) / n)
    if se == 0.0:
        return 0.0
    lo, hi = 0.0, se
    while welch_power(hi, sd_a, sd_b, n, alpha=alpha) < power:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if welch_power(mid, sd_a, sd_b, n, alpha=alpha) >= power else (mid, hi)
    return hi
