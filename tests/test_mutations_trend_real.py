"""Mutation tests of the trend rows (experiments/ledger/checks/trend_real.py: C110-C116).

The rows are judged here on synthetic evidence (``test_checks_trend_real.synthetic_evidence``: six checkpoints,
every quantity monotone in k-NN the way the paper predicts, so every judged row PASSes), and again on the
committed evidence file when there is one. Each judged row has two mutations of its quantity over the
checkpoints: ordered against k-NN opposite to the predicted direction (rho = -1 in that direction: must FAIL)
and ordered with it (rho = 1: must PASS, the repair of a row that FAILs as a finding). C114 (RankMe: no
predicted direction) and C117-C119 (extrapolations) are INFO.
"""

from __future__ import annotations

import copy
import json

import pytest

import mutations
from experiments.ledger.checks import trend_real as tr
from test_checks_trend_real import synthetic_evidence

MODULE = "experiments.ledger.checks.trend_real"


def saved():
    """``(rows, data)`` on the synthetic evidence (used instead of a run of the module)."""
    data = {"evidence": "synthetic", "trend": tr._judged(synthetic_evidence())}
    return tr.judge(data), data


def _ordered(key, direction):
    def fn(data, side):
        """side +1: the quantity ordered against k-NN opposite to ``direction``; -1: ordered with it."""
        for c in data["trend"]["checkpoints"]:
            c[key] = -side * direction * c["knn_acc"] + (10.0 if key == "prominent" else 0.0)
    return fn


MUTATIONS = [m for cid, key, label, d in tr.QUANTITIES if d != 0
             for m in mutations.pair(cid, f"{label} ordered against / with k-NN", _ordered(key, d), tr.judge)]


def _data(source):
    if source == "synthetic":
        return saved()[1]
    if not tr.EVIDENCE.exists():
        pytest.skip(f"no committed evidence {tr.EVIDENCE}")
    data = tr.run("cpu")[1]
    if len(data["trend"]["checkpoints"]) < tr.MIN_CHECKPOINTS:
        pytest.skip(f"the committed evidence has fewer than {tr.MIN_CHECKPOINTS} checkpoints (every row INFO)")
    return data


@pytest.mark.parametrize("source", ["synthetic", "committed"])
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what} -> {m.expect}")
def test_mutation_flips_the_row(mutation, source, monkeypatch):
    data = copy.deepcopy(json.loads(json.dumps(_data(source))))
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


def test_every_judged_row_is_covered_on_the_synthetic_evidence():
    rows, _ = saved()
    assert sorted(mutations.passable_keys(rows)) == sorted({m.key for m in MUTATIONS})
    assert all(r.verdict == "PASS" for r in rows if r.claim in {m.key for m in MUTATIONS})
