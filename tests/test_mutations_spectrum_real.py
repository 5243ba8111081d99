"""Mutation tests of the real-feature rows (experiments/ledger/checks/spectrum_real.py: C80-C87).

The rows are judged on the committed evidence (``experiments/ledger/evidence/spectrum_cpu.json``); each
mutation edits an in-memory copy of it (the file is never written) and re-judges it with
``spectrum_real.rows_from_evidence``. Each row has a mutation just past its bound the way the claim
forbids (FAIL) and one just inside it (PASS: the repair of a row that FAILs as a finding, C82 and
C84 on the cpu evidence, which shows the FAIL is not structural):

- C80/C81: the baseline's top-K alignment 1% above / below the CL encoder's;
- C82: the prominent count K - 1 / K; C83: the noise's top-K energy fraction 1% above / below the
  clean labels'; C84: one training point not / every point recovered;
- C85/C86: the baseline's clean recovery 1% above / below CL's;
- C87: CL's memorized fraction of flipped labels 1% above / below the raw pixels'.

C88 and C89 are INFO (label-free measurements the paper states nothing checkable about).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.ledger.checks import spectrum_real as sr
import mutations
from test_mutations_head import coverage

MODULE = "experiments.ledger.checks.spectrum_real"


def _pair(key, what, fn):
    """``fn(evidence, side)`` edits a fresh copy of the evidence file (read from the path the run recorded)."""
    def edit(data, side):
        data["rows_from"] = json.loads(Path(data["evidence"]).read_text())
        fn(data["rows_from"], side)
    return mutations.pair(key, what, edit, lambda data: sr.rows_from_evidence(data["rows_from"]))


def _relative(name, path, ref_name, ref_path, relation):
    """Set ``reps[name][path]`` to ``reps[ref_name][ref_path]`` times 1.01 / 0.99 (``relation`` ">=": the
    value must stay at or below the reference, so +1% is past it; "<=": the reverse)."""
    def get(d, p):
        for k in p[:-1]:
            d = d[k]
        return d, p[-1]

    def fn(ev, side):
        reps = ev["representations"]
        ref_d, ref_k = get(reps[ref_name], ref_path)
        d, k = get(reps[name], path)
        up = side > 0 if relation == ">=" else side < 0
        d[k] = ref_d[ref_k] * (1.01 if up else 0.99)
    return fn


def _prominent(ev, side):
    ev["representations"][sr.CL]["prominent"] = ev["num_classes"] - (1 if side > 0 else 0)


def _recovery(ev, side):
    ev["representations"][sr.CL]["head"]["train_recovery"] = 1.0 - (1.0 / ev["n_train"] if side > 0 else 0.0)


_REC = ("head", "train_recovery")
MUTATIONS = [
    *_pair("C80", "random init's top-K alignment vs CL's", _relative(sr.RANDOM, ("alignment_K",), sr.CL, ("alignment_K",), ">=")),
    *_pair("C81", "raw pixels' top-K alignment vs CL's", _relative(sr.RAW, ("alignment_K",), sr.CL, ("alignment_K",), ">=")),
    *_pair("C82", "CL's prominent count K - 1 / K", _prominent),
    *_pair("C83", "the noise's top-K energy fraction vs the clean labels'",
           _relative(sr.CL, ("split_noise", "information_fraction"), sr.CL, ("split_clean", "information_fraction"), ">=")),
    *_pair("C84", "CL's clean recovery below the threshold 1 - 1/n / 1", _recovery),
    *_pair("C85", "random init's clean recovery vs CL's", _relative(sr.RANDOM, _REC, sr.CL, _REC, ">=")),
    *_pair("C86", "raw pixels' clean recovery vs CL's", _relative(sr.RAW, _REC, sr.CL, _REC, ">=")),
    *_pair("C87", "CL's memorized flipped labels vs raw pixels'",
           _relative(sr.CL, ("beta_path", 0, "noisy_memorized"), sr.RAW, ("beta_path", 0, "noisy_memorized"), ">=")),
]


def _evidence_or_skip():
    if not sr.EVIDENCE.exists():
        pytest.skip(f"no committed evidence {sr.EVIDENCE} (every row is INFO without it)")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, monkeypatch):
    """Each mutation sets the measured value past / inside its bound outright, so it must give its verdict
    whatever the row's present one (the coverage test below asserts that one of them flips it)."""
    _evidence_or_skip()
    _, data = mutations.saved_run(MODULE)
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


def test_every_passable_row_has_a_mutation_of_its_verdict():
    _evidence_or_skip()
    coverage(MODULE, MUTATIONS, "smoke")
