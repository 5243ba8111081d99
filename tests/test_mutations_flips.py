"""Mutation tests of the Theorem 4.5 rows (experiments/ledger/checks/flips.py: C37, C38, C41).

The saved measurements of one run (smoke by default, the cpu preset under ``-m slow``) are
mutated the way the claim forbids and re-judged by ``flips.judge``:

- C37/C38 (both rows each: F* Sigma and the weighted minimizer): the head check run where the
  claim fails, i.e. the regime rule ``beta >= REGIME s`` replaced by ``beta >= 1e-3 s`` (small
  beta with delta > 0, where the leading threshold does not hold), and the threshold raised by 0.2;
- C41: the regime's boundary beta* made independent of delta (an order 0 term, half an order
  below sqrt(delta)): the recovery boundary held below its large-beta value up to the largest beta*;
"""

from __future__ import annotations

import numpy as np

from experiments.ledger.checks import flips
from mutations import Mutation
from test_mutations_head import setter, standard_tests
from theory import bounds

MODULE = "experiments.ledger.checks.flips"


def _rows(data):
    return flips.judge(data)


_set = setter(_rows)


def _regime(key):
    def apply(data, mp):
        mp.setattr(flips, "REGIME", 1e-3)
        return _rows(data)
    return Mutation(key, "the regime beta >= 10 s replaced by beta >= 1e-3 s (small beta, delta > 0)", apply)


def _threshold_up(key):
    def apply(data, mp):
        original = bounds.flip_threshold
        mp.setattr(bounds, "flip_threshold", lambda *a, **k: original(*a, **k) + 0.2)
        return _rows(data)
    return Mutation(key, "Theorem 4.5's threshold raised by 0.2", apply)


def _beta_star_constant(data):
    con = data["content"]
    betas = np.asarray(con["betas"])
    base = [g for g in con["graphs"] if g["ratio"] == 1.0 and g["xi"] == 0]
    cut = max(np.asarray(con["beta_star"], dtype=float)[np.isfinite(con["beta_star"])])
    for g in base:
        rec = np.asarray(g["kinds"]["asymmetric"]["F*Sigma"], dtype=float).copy()
        alpha = np.asarray(g["kinds"]["asymmetric"]["alpha"])
        rec[np.ix_(betas < cut, alpha > 0)] = 0.5
        g["kinds"]["asymmetric"]["F*Sigma"] = rec


def _first_run(data):
    """flips.judge records beta* on the data it judges; make sure it is there."""
    if "beta_star" not in data["content"]:
        _rows(data)


MUTATIONS = [
    *[m for key in ("C37.1", "C37.2", "C38.1", "C38.2") for m in (_regime(key), _threshold_up(key))],
    Mutation("C41", "beta* independent of delta (order 0, half an order below sqrt(delta))",
             lambda data, mp: (_first_run(data), _beta_star_constant(data), _rows(data))[-1]),
]


test_mutation_flips_the_row, test_every_passable_row_has_a_mutation_of_its_verdict = standard_tests(MODULE, MUTATIONS)
