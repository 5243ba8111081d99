"""The checks that `clspec verify` runs.

Each module listed in :data:`MODULES` exposes

- ``CLAIMS``: a tuple of :class:`experiments.claims.Claim`, the IDs it evaluates;
- ``run(preset, *, seed, progress) -> (rows, data)``: evaluates every claim at the
  named preset (``smoke``, ``cpu``, ``large``) and returns the rows plus a
  JSON-able dict of the measured arrays;
- ``plot(data, outdir) -> list[Path]``: the figures, a pure function of ``data``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = (
    "experiments.checks.thm43",
    "experiments.checks.head",
    "experiments.checks.encoders",
    "experiments.checks.tables",
    "experiments.checks.methods_cpu",
)

PRESETS = ("smoke", "cpu", "large")


def load() -> list[ModuleType]:
    return [importlib.import_module(name) for name in MODULES]


def all_claims():
    return [claim for module in load() for claim in module.CLAIMS]
