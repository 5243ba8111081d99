"""What every strategy of :mod:`theory.strategies` shares: the seed strategy, the settings for properties
over JAX, the argument checks that refuse an impossible request at definition time, and the printing of a
draw as the call that rebuilds it."""

from __future__ import annotations

import math

import jax
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from theory.graph import Partition

SEEDS = st.integers(0, 2**31 - 1)

# Settings for properties over these strategies: JAX compiles each new shape once (0.3-2 s on a CPU: a new
# n for make_graph, a new block size for the ascent), which Hypothesis would count against its 200 ms
# deadline and its input-generation health check; the compiled program is then reused. Apply as
# ``@JAX_SETTINGS`` or derive: ``@settings(JAX_SETTINGS, max_examples=50)``. The project's test profiles
# (tests/conftest.py) set the same two options.
JAX_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRAPH_KINDS = ("random", "two-level", "hub", "ascent", "structured")
NOISE_KINDS = ("symmetric", "symmetric-random", "asymmetric", "concentrated")


# ----------------------------------------------------------------------------
# Argument checks: at definition time, one line naming the argument and its value
# ----------------------------------------------------------------------------


def _interval(name: str, value, lo: float, hi: float, *, hi_open: bool = False, lo_open: bool = False,
              integer: bool = False) -> tuple:
    """``(low, high)`` from a number or a ``(low, high)`` pair, every end inside the allowed range."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    kind = int if integer else (int, float)
    if len(pair) != 2 or not all(isinstance(v, kind) and not isinstance(v, bool) for v in pair):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} or a (low, high) pair, got {value!r}")
    a, b = pair
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if a > b:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    if a < lo or (lo_open and a == lo) or b > hi or (hi_open and b == hi):
        rng = (f"{'>' if lo_open else '>='} {lo:g}" if hi == math.inf else
               f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}")
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return a, b


def _floats(lo: float, hi: float):
    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_subnormal=False)


def _check_x64() -> None:
    if not jax.config.jax_enable_x64:
        raise RuntimeError('theory.strategies draws float64: call jax.config.update("jax_enable_x64", True) first')


def _partition_strategy(partition, default):
    """A strategy of partitions from a :class:`Partition`, a strategy, or None (``default``)."""
    if partition is None:
        return default
    if isinstance(partition, Partition):
        return st.just(partition)
    if isinstance(partition, st.SearchStrategy):
        return partition
    raise ValueError(f"partition must be a Partition, a strategy of them or None, got {partition!r}")


def _repr_pretty_(self, p, cycle) -> None:
    """Draws print as the constructor call that rebuilds them: Hypothesis's printer uses ``_repr_pretty_``."""
    p.text(repr(self))
