"""Mutation tests of the Jacobian rows (experiments/ledger/checks/jacobian.py: C90-C97).

The saved measurements of one run (smoke preset; the cpu preset under ``-m slow``) are mutated and
re-judged by ``jacobian.judge``; C95-C97 read the committed CPU-scale evidence, which is mutated
in the in-memory copy only. Each row has a mutation just past its bound the way the claim forbids
(FAIL) and one just inside it (PASS: the repair of a row that FAILs as a finding, e.g. C90, C96
and C97 on the cpu evidence):

- C90: every seed's pre-trained tail fraction 0.01 above / below random init's;
- C91: every seed's pre-trained top-K alignment 0.01 more / less than the slack below random init's;
- C92/C93: the noise's fitted-fraction curve 0.01 above / the noise never fitted (below) the clean
  curve, on the network of the row;
- C94: the pre-trained network's curves set to random init's, with its noise curve 0.01 higher /
  lower (the lead 0.01 smaller / larger);
- C95: ||Pi_I||^2 + ||Pi_N||^2 off n by 10x / 0.1x the relative tolerance;
- C96/C97: the pre-trained value 1e-6 relative below / above random init's.
"""

from __future__ import annotations

import numpy as np
import pytest

import mutations
from experiments.ledger.checks import jacobian as cj
from test_mutations_head import coverage

MODULE = "experiments.ledger.checks.jacobian"
STEP = 0.01


def _pair(key, what, fn):
    return mutations.pair(key, what, fn, cj.judge)


def _nets(data):
    return [(s["networks"]["random"], s["networks"]["pretrained"]) for s in data["seeds"]]


def _tail(data, side):
    for rnd, pre in _nets(data):
        pre["tail_fraction"] = rnd["tail_fraction"] + side * STEP


def _align(data, side):
    for rnd, pre in _nets(data):
        pre["alignment_top_k"] = rnd["alignment_top_k"] - cj.ALIGN_SLACK - side * STEP


def _noise_first(name):
    def fn(data, side):
        for s in data["seeds"]:
            net = s["networks"][name]
            clean = np.asarray(net["fit_clean"])
            net["fit_noise"] = (clean + STEP if side > 0 else np.zeros_like(clean)).tolist()
    return fn


def _lead(data, side):
    for rnd, pre in _nets(data):
        pre["fit_clean"] = list(rnd["fit_clean"])
        pre["fit_noise"] = (np.asarray(rnd["fit_noise"]) + side * STEP).tolist()


def _evidence(field, rtol):
    """C96/C97: the pre-trained network's ``field`` just below / above random init's."""
    def fn(data, side):
        res = data["evidence"]["metrics"]["results"]
        pre = next(k for k in res if k != "random init")
        res[pre][field] = res["random init"][field] * (1 - side * rtol)
    return fn


def _pi_sum(data, side):
    for v in data["evidence"]["metrics"]["results"].values():
        v["pi_sum_sq"] = v["n"] * (1 + (10.0 if side > 0 else 0.1) * cj.SUM_RTOL)


MUTATIONS = [
    *_pair("C90", "pre-trained tail fraction vs random init's", _tail),
    *_pair("C91", "pre-trained top-K alignment vs random init's minus the slack", _align),
    *_pair("C92", "random init's noise fitted before / never vs its clean labels", _noise_first("random")),
    *_pair("C93", "pre-trained noise fitted before / never vs its clean labels", _noise_first("pretrained")),
    *_pair("C94", "pre-trained lead 0.01 below / above random init's", _lead),
    *_pair("C95", "||Pi_I||^2 + ||Pi_N||^2 off n", _pi_sum),
    *_pair("C96", "pre-trained ||Pi_I(y)|| vs random init's", _evidence("pi_I", 1e-6)),
    *_pair("C97", "pre-trained ||JJ^T y|| / ||JJ^T||_F vs random init's", _evidence("ratio", 1e-6)),
]
PRESETS = ["smoke", pytest.param("cpu", marks=pytest.mark.slow)]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, preset, monkeypatch):
    """Each mutation sets the measured value past / inside its bound outright, so it must give its verdict
    whatever the row's present one (the coverage test below asserts that one of them flips it)."""
    rows, data = mutations.saved_run(MODULE, preset)
    if mutation.key in ("C95", "C96", "C97") and data.get("evidence") is None:
        pytest.skip(f"no committed evidence {cj.EVIDENCE} (C95-C97 are INFO without it)")
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_passable_row_has_a_mutation_of_its_verdict(preset):
    coverage(MODULE, MUTATIONS, preset)
