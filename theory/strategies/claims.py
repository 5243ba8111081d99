"""Sweeps of a small parameter for the order test (:func:`sweeps`, :func:`sweep`), and the helpers that state a
claim inside a property: :func:`assert_bound` and :func:`assert_order`."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
from hypothesis import strategies as st

from theory import bounds, tolerances
from theory.strategies._base import _floats, _interval, _repr_pretty_


# ----------------------------------------------------------------------------
# Sweeps and the claim helpers
# ----------------------------------------------------------------------------


class Sweep(NamedTuple):
    """``points`` values of a small parameter, geometric from ``top * 10^-decades`` to ``top`` (ascending)."""

    x: np.ndarray
    top: float
    decades: float
    points: int

    _repr_pretty_ = _repr_pretty_

    def __repr__(self) -> str:
        return f"sweep(top={self.top!r}, decades={self.decades!r}, points={self.points!r})"


def sweep(top: float, decades: float, points: int = 9) -> Sweep:
    """The sweep of :func:`sweeps` with these parameters."""
    _interval("top", top, 0.0, math.inf, lo_open=True)
    _interval("decades", decades, 0.0, math.inf, lo_open=True)
    _interval("points", points, 3, math.inf, integer=True)
    return Sweep(top * 10.0 ** np.linspace(-decades, 0.0, points), top, decades, points)


def sweeps(*, top=(1e-2, 1e-1), decades=(tolerances.ORDER_MIN_DECADES, 3.0), points: int = 9) -> st.SearchStrategy[Sweep]:
    """Geometric sweeps of a small parameter for :func:`assert_order`.

    ``top``: the largest value (range); ``decades``: how many decades below it the sweep reaches, at least
    ``theory.tolerances.ORDER_MIN_DECADES`` (a shorter sweep gives the order test no power to fail);
    ``points`` values (fixed per strategy: the order fit compiles once per length).

    Promise: ``points`` values, ascending, ``max/min = 10^decades``, the largest in ``top``.
    """
    t_lo, t_hi = _interval("top", top, 0.0, math.inf, lo_open=True)
    d_lo, d_hi = _interval("decades", decades, tolerances.ORDER_MIN_DECADES, math.inf)
    _interval("points", points, 3, math.inf, integer=True)
    return st.builds(sweep, _floats(t_lo, t_hi), _floats(d_lo, d_hi), st.just(points))


RELATIONS = ("<=", ">=", "==")


def assert_bound(measured, bound, relation: str = "<=", *, rtol: float | None = None, atol: float = 0.0,
                 dtype: str = "float64", what: str = "measured") -> float:
    """Assert ``measured <relation> bound`` up to round-off; return the largest ratio measured / bound.

    The tolerance is the project's (``theory.tolerances``): ``rtol * |bound| + atol`` with ``rtol`` defaulting
    to ``bound_rtol(dtype)`` (sums of O(n) terms in float64); pass ``atol=tolerances.eig_atol(dtype)`` for an
    eigenvalue and ``tolerances.METER_ATOL`` for a realized delta or xi. Never widen it to make a claim pass.
    Arrays are compared entrywise (broadcast); the message names the worst entry, both numbers in full
    precision, their ratio and difference. Called on concrete values inside a test (it is not traceable).
    """
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    rtol = tolerances.bound_rtol(dtype) if rtol is None else rtol
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    m, b = np.broadcast_arrays(np.asarray(measured, dtype=np.float64), np.asarray(bound, dtype=np.float64))
    slack = rtol * np.abs(b) + atol
    excess = {"<=": m - b, ">=": b - m, "==": np.abs(m - b)}[relation] - slack
    bad = ~(excess <= 0)  # NaN fails
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b != 0, m / b, np.where(m == 0, 1.0, np.inf))
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), m.shape) if m.ndim else ()
        where = f" at index {tuple(int(j) for j in i)} ({int(bad.sum())} of {m.size} entries fail)" if m.ndim else ""
        raise AssertionError(f"{what} = {float(m[i])!r} is not {relation} bound = {float(b[i])!r}{where}: ratio {float(ratio[i]):.6g}, "
                             f"difference {float(m[i] - b[i]):.3g} (tolerance rtol={rtol:g}, atol={atol:g})")
    return float(np.max(ratio)) if ratio.size else 1.0


def assert_order(x, y, order: float, *, limit: str = "0", groups=None, n_groups: int = 1, seed: int = 0,
                 what: str = "y", label: str = "x") -> bounds.OrderFit:
    """Assert ``y = O(x^order)`` over a sweep by the project's order test (:func:`theory.bounds.loglog_order`).

    ``limit="0"`` (x -> 0): fails when ``order`` lies above the bootstrap interval of the fitted log-log slope
    by more than ``tolerances.ORDER_SLACK`` (y falls more slowly than claimed); ``limit="inf"`` (x -> infinity):
    when it lies that far below. ``groups``: one intercept per group, one common slope (several settings of
    one order). A sweep spanning fewer than ``tolerances.ORDER_MIN_DECADES`` decades of x is refused
    (ValueError: it could not fail); a y that is <= 0 everywhere is trivially O(anything) and passes; a y > 0
    on too few decades to fit fails. Returns the fit.
    """
    if limit not in ("0", "inf"):
        raise ValueError(f"limit must be '0' or 'inf', got {limit!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    pos = x[x > 0]
    span = float(np.log10(pos.max() / pos.min())) if pos.size else 0.0
    if span < tolerances.ORDER_MIN_DECADES - 1e-9:
        raise ValueError(f"x must span >= {tolerances.ORDER_MIN_DECADES:g} decades for the order test to have power, "
                         f"got {span:.3g} over {x.size} points")
    fit = bounds.loglog_order(x, y, key=jax.random.PRNGKey(seed), groups=groups, n_groups=n_groups,
                              n_boot=tolerances.ORDER_BOOT, level=tolerances.ORDER_LEVEL)
    if not np.any((y > 0) & (x > 0)):
        return fit
    slope, lo, hi, dec = float(fit.slope), float(fit.lo), float(fit.hi), float(fit.decades)
    slack = tolerances.ORDER_SLACK
    arrow = "0" if limit == "0" else "infinity"
    head = (f"{what} = O({label}^{order:g}) as {label} -> {arrow}: fitted slope {slope:.4g}, "
            f"{tolerances.ORDER_LEVEL:.0%} interval [{lo:.4g}, {hi:.4g}] over {dec:.3g} decades ({int(fit.n_used)} points)")
    if not (dec >= tolerances.ORDER_MIN_DECADES - 1e-9 and math.isfinite(lo)):
        raise AssertionError(f"{head}: {what} > 0 on too few decades of {label} to fit an order")
    if limit == "0" and not hi >= order - slack:
        raise AssertionError(f"{head}: the claimed order lies above the interval by more than ORDER_SLACK={slack:g}")
    if limit == "inf" and not lo <= order + slack:
        raise AssertionError(f"{head}: the claimed order lies below the interval by more than ORDER_SLACK={slack:g}")
    return fit
