"""Shared machinery of the mutation tests: every PASS-able row of the ledger must be able to FAIL.

A mutation breaks one claim the way the paper forbids (scales an explicit bound down, drops a
leading term, adds a term of half an order lower than an O() claim allows, moves a table cell
across the claimed ordering) and re-judges the saved measurements: the row must then FAIL.

Each family of checks has one test file ``tests/test_mutations_<family>.py`` that defines

- ``MODULE``: the check module's name (``"experiments.ledger.checks.thm43"``);
- ``MUTATIONS``: a list of :class:`Mutation`, one or more per row key.

``tests/test_mutation_coverage.py`` loads every such file and asserts that the row keys its
mutations cover equal the PASS-able rows (verdict PASS or FAIL, not INFO) that the module
produces, and prints both lists.

Row keys: a module's rows in order, keyed by claim ID, with ``.1``, ``.2``, ... appended when
one claim has several rows (``C11.1``, ``C11.2``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
from collections.abc import Callable

import numpy as np

from experiments.common.precision import use_float64
from experiments.ledger.claims import INFO


@dataclasses.dataclass(frozen=True)
class Mutation:
    """``apply(data, monkeypatch) -> rows``: re-judge mutated measurements; row ``key`` must FAIL.

    ``data`` is a deep copy of the module's saved measurements, free to change in place.
    ``expect`` is the verdict the row must take (FAIL for a PASS row; PASS for the repair of a
    row that FAILs as a finding, to show that its FAIL is not structural).
    """

    key: str
    what: str
    apply: Callable
    expect: str = "FAIL"


def row_keys(rows) -> list[str]:
    """The key of each row (see the module docstring)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.claim] = counts.get(r.claim, 0) + 1
    seen: dict[str, int] = {}
    keys = []
    for r in rows:
        seen[r.claim] = seen.get(r.claim, 0) + 1
        keys.append(r.claim if counts[r.claim] == 1 else f"{r.claim}.{seen[r.claim]}")
    return keys


def by_key(rows) -> dict:
    return dict(zip(row_keys(rows), rows))


def passable_keys(rows) -> list[str]:
    """Row keys whose verdict is PASS or FAIL (a statement with a bound), not INFO."""
    return [k for k, r in zip(row_keys(rows), rows) if r.verdict != INFO]


@functools.lru_cache(maxsize=None)
def _run(module_name: str, preset: str, seed: int):
    use_float64()
    module = importlib.import_module(module_name)
    return module.run(preset, seed=seed)


def saved_run(module_name: str, preset: str = "smoke", seed: int = 0):
    """``(rows, data)`` of one run of a check module, computed once per test session; ``data`` is a copy."""
    rows, data = _run(module_name, preset, seed)
    return rows, copy.deepcopy(data)


def scale_bound(monkeypatch, module, name: str, factor: float) -> None:
    """Replace ``module.name`` (a bound function) by ``factor`` times itself."""
    original = getattr(module, name)

    def scaled(*args, **kwargs):
        out = original(*args, **kwargs)
        return tuple(factor * np.asarray(o) for o in out) if isinstance(out, tuple) else factor * np.asarray(out)

    monkeypatch.setattr(module, name, scaled)


def half_order_term(x, y, order: float, *, limit: str = "x->0", groups=None) -> np.ndarray:
    """``y`` plus a term half an order lower (x -> 0) or higher (x -> inf) than ``y = O(x^order)`` allows.

    The term is ``|y(x_top)| (x / x_top)^(order -/+ 1/2)`` per group, where ``x_top`` is the group's
    largest (x -> 0) or smallest (x -> inf) x: it equals the measured quantity at the end of the
    sweep far from the limit and dominates toward the limit, as a missed lower-order term would.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    groups = np.zeros(x.shape, int) if groups is None else np.asarray(groups)
    out = y.copy()
    for g in np.unique(groups):
        sel = groups == g
        top = np.argmax(np.where(sel, x, -np.inf)) if limit == "x->0" else np.argmin(np.where(sel, x, np.inf))
        q = order - 0.5 if limit == "x->0" else order + 0.5
        out[sel] = y[sel] + abs(y[top]) * (x[sel] / x[top]) ** q
    return out


def pair(key: str, what: str, fn: Callable, judge: Callable) -> list[Mutation]:
    """Two mutations of row ``key``: ``fn(data, +1)`` moves the measurement past its bound the way the claim
    forbids (must FAIL), ``fn(data, -1)`` just inside it (must PASS: the repair of a row that FAILs as a
    finding); both re-judged by ``judge(data) -> rows``."""
    out = []
    for side, expect in ((+1, "FAIL"), (-1, "PASS")):
        def apply(data, mp, side=side):
            fn(data, side)
            return judge(data)
        out.append(Mutation(key, f"{what} ({'past' if side > 0 else 'inside'} the bound)", apply, expect))
    return out
