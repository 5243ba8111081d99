"""Mutation tests of the Fig. 2a rows (experiments/ledger/checks/fig2a_real.py: C98; C99 is INFO).

The committed evidence (``experiments/ledger/evidence/fig2a_cpu.json``) may be absent or partial, so the rows are
judged on synthetic evidence of the same schema (``saved()``): at n = 1,000, four networks (random / pre-trained x
BatchNorm running / batch) of 10,000 singular values each, random init's spectrum decaying slowly (a heavy tail)
and the pre-trained one's fast. Each C98 row (C98.1 running, C98.2 batch) has a pair of mutations: the
pre-trained network of that convention given random init's spectrum with every singular value beyond the top 10
scaled by 1.001 (its tail fraction just past random init's: FAIL) or by 0.999 (just inside: PASS).
"""

from __future__ import annotations

import numpy as np
import pytest

import mutations
from experiments.ledger.checks import fig2a_real as fr
from experiments.ledger.claims import FAIL, INFO, PASS

MODULE = "experiments.ledger.checks.fig2a_real"


def synthetic_evidence(n: int = 1000, K: int = 10) -> dict:
    rng = np.random.default_rng(0)
    i = np.arange(n * K)
    nets = {}
    for init, decay, scale in (("random", 3.0, 400.0), ("pretrained", 12.0, 300.0)):
        for mode, f in (("running", 100.0), ("batch", 1.0)):
            sigma = f * scale * np.exp(-decay * i / i.size) * (1 + 4.0 * (i < 10))
            a2 = rng.random(i.size)
            nets[f"{init}/{mode}"] = {"sigma": sorted(sigma.tolist(), reverse=True),
                                      "alignment_sq": (n * a2 / a2.sum()).tolist()}
    config = {"network": "resnet32", "n": n, "K": K, "split": "test", "tiles": "float32"}
    return {"runs": {f"n={n}": {"config": config, "networks": nets, "command": "synthetic", "commit": "0" * 40,
                                "date": "2026-12-03"}}}


def saved():
    """``(rows, data)`` on the synthetic evidence (used instead of a run of the module)."""
    data = {"evidence": "synthetic", "runs": synthetic_evidence()["runs"]}
    return fr.judge(data), data


def _tail_past(mode):
    def fn(data, side):
        nets = data["runs"][fr.MAIN]["networks"]
        s = np.asarray(nets[f"random/{mode}"]["sigma"], float).copy()
        s[fr.TOP:] *= 1 + side * 1e-3
        nets[f"pretrained/{mode}"]["sigma"] = s.tolist()
    return fn


MUTATIONS = [m for k, mode in (("C98.1", "running"), ("C98.2", "batch"))
             for m in mutations.pair(k, f"pre-trained ({mode}) tail fraction beyond the top 10 vs random init's",
                                     _tail_past(mode), fr.judge)]


def test_both_c98_rows_are_judged_and_pass_on_the_synthetic_evidence():
    rows, _ = saved()
    assert [r.claim for r in rows] == ["C98", "C98", "C99"]
    assert [r.verdict for r in rows] == [PASS, PASS, INFO]
    assert mutations.passable_keys(rows) == ["C98.1", "C98.2"]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, monkeypatch):
    _, data = saved()
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


def test_every_passable_row_has_a_failing_mutation():
    rows, _ = saved()
    assert {m.key for m in MUTATIONS if m.expect == FAIL} == set(mutations.passable_keys(rows))
