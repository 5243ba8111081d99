"""The checks that `clspec verify` runs.

Each module listed in :data:`MODULES` exposes (the protocol; its pieces live in
:mod:`experiments.ledger.claims`)

- ``CLAIMS``: a tuple of :class:`experiments.ledger.claims.Claim`, the IDs it evaluates, and
  ``C = by_id(CLAIMS)``;
- ``run(preset, *, seed=0, progress=no_progress) -> (rows, data)``: evaluates every claim at the
  named preset (one of :data:`PRESETS`) and returns the rows plus a JSON-able dict of the measured
  arrays; ``data["notes"]`` (optional) holds lines of text the ledger prints under the module's table;
- ``judge(data) -> rows``: the same rows from ``data`` alone, so that a mutation test
  (``tests/mutations.py``) can re-judge perturbed measurements;
- ``plot(data, outdir) -> list[Path]``: the figures, a pure function of ``data``.

Every verdict comes from ``claims.verdict_of`` through ``row``, ``explicit_row``, ``order_row`` or
``leading_term_row``; a verdict set by hand is only INFO or ERROR. The progress protocol:
``progress(iterable, desc="...")`` returns an iterable over the same items (``clspec verify`` wraps
it in a tqdm bar on a terminal, else passes it through); a module calls nothing else on it.
Float64 is switched on once, by ``clspec verify`` (tests: conftest.py), never by a check module.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from experiments.ledger.claims import PRESETS  # noqa: F401  (the presets every check module knows)

MODULES = (
    "experiments.ledger.checks.thm43",
    "experiments.ledger.checks.head",
    "experiments.ledger.checks.flips",
    "experiments.ledger.checks.contrast",
    "experiments.ledger.checks.encoders",
    "experiments.ledger.checks.encoders_a41",
    "experiments.ledger.checks.tables",
    "experiments.ledger.checks.spectrum_real",
    "experiments.ledger.checks.jacobian",
    "experiments.ledger.checks.fig2a_real",
    "experiments.ledger.checks.methods_cpu",
    "experiments.ledger.checks.trend_real",
)


def load() -> list[ModuleType]:
    return [importlib.import_module(name) for name in MODULES]


def all_claims():
    return [claim for module in load() for claim in module.CLAIMS]
