"""Mutation tests of the contrast / dynamics rows (experiments/ledger/checks/contrast.py: C42-C46).

- C42/C43: the CL head's curve and the baseline's swapped (the baseline then fits fewer flipped
  labels); for a FAIL (a finding) the repair: the baseline fits more flipped labels at every beta;
- C44: the GD rate bound scaled by 0.1; C45: CL memorizes one step before random features;
  C46: one iteration of the CE head below full recovery.
"""

from __future__ import annotations


import mutations
from experiments.ledger.checks import contrast
from mutations import Mutation
from test_mutations_head import setter, standard_tests
from theory import bounds

MODULE = "experiments.ledger.checks.contrast"


def _rows(data):
    return contrast.judge(data)


_set = setter(_rows)


def _swap(name):
    def fn(data):
        c = data["contrast"]["curves"]
        c["CL"], c[name] = c[name], c["CL"]
    return fn


def _baseline_fits_more(name):
    def fn(data):
        c = data["contrast"]["curves"]
        for o, q in zip(c[name], c["CL"]):
            o["fit_flipped"] = max(o["fit_flipped"], q["fit_flipped"]) + (1.0 if o["beta"] == c["CL"][0]["beta"] else 0.0)
    return fn


def _rate_scaled(key):
    def apply(data, mp):
        mutations.scale_bound(mp, bounds, "gd_rate_bound", 0.1)
        return _rows(data)
    return Mutation(key, "bounds.gd_rate_bound scaled by 0.1", apply)


def _cl_memorizes_first(data):
    m = data["gd"]["memorize_half_at"]
    m["CL"] = max((m["random"] or 1) - 1, 0)


def _ce_drop(data):
    data["ce"]["min_acc_clean"] = 1.0 - 1.0 / data["contrast"]["n"]


MUTATIONS = [
    _set("C42", "the CL curve and the random-features curve swapped", _swap("random")),
    _set("C42", "random features fit more flipped labels at every beta (repair)", _baseline_fits_more("random"), "PASS"),
    _set("C43", "the CL curve and the raw-input curve swapped", _swap("raw")),
    _set("C43", "raw inputs fit more flipped labels at every beta (repair)", _baseline_fits_more("raw"), "PASS"),
    _rate_scaled("C44"),
    _set("C45", "CL memorizes half the flipped labels one step before random features", _cl_memorizes_first),
    _set("C46", "one CE iteration misses one clean label", _ce_drop),
]


test_mutation_flips_the_row, test_every_passable_row_has_a_mutation_of_its_verdict = standard_tests(MODULE, MUTATIONS)
