"""Typed ``argparse`` options: each refuses a value outside its real range before any work starts.

Use them as ``type=`` of ``add_argument``; a bad value is then argparse's one-line error,
naming the option and the value, exit status 2::

    p.add_argument("--seed", type=argtypes.seed, default=0, help="...")
    p.add_argument("--knn-k", type=argtypes.positive_int, help="...")
    p.add_argument("--batch-size", type=argtypes.int_at_least(2), help="...")
    p.add_argument("--temperature", type=argtypes.positive_float, help="...")

The same checks are available to library code as :func:`check` (a ``ValueError`` naming the
argument instead of an ``argparse.ArgumentTypeError``).
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

# JAX's PRNGKey and numpy's default_rng take any seed in [0, 2**32): one range for every command.
SEED_MAX = 2**32 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _named(fn: Callable, name: str) -> Callable:
    fn.__name__ = name  # argparse names the type in "invalid <name> value" messages
    return fn


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer in ``[low, high]`` (either end may be open)."""

    def parse(text: str) -> int:
        value = _int(text)
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
            if low is None:
                raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    return _named(parse, "integer")


def int_at_least(low: int) -> Callable[[str], int]:
    return int_in(low, None)


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
seed = int_in(0, SEED_MAX)


def _int_list(text: str) -> tuple[int, ...]:
    """Comma-separated distinct integers >= 0, e.g. ``0,1,2,4,8,16``, returned sorted."""
    values = tuple(nonnegative_int(part.strip()) for part in text.split(","))
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct integers, got {text!r}")
    return tuple(sorted(values))


int_list = _named(_int_list, "integer list")


def float_in(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             high_open: bool = False) -> Callable[[str], float]:
    """A finite float in the interval from ``low`` to ``high`` (closed unless ``*_open``)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"

    def parse(text: str) -> float:
        value = _float(text)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            if high is None:
                raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    return _named(parse, "number")


finite_float = _named(_float, "number")
positive_float = float_in(0.0, low_open=True)
nonnegative_float = float_in(0.0)
probability = float_in(0.0, 1.0)
fraction_below_one = float_in(0.0, 1.0, high_open=True)  # e.g. SGD momentum


def check(name: str, value, parse: Callable[[str], object]) -> None:
    """Library code: raise ``ValueError("name ...")`` when ``value`` fails the option type ``parse``."""
    try:
        parse(str(value))
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"{name} {err}") from None
