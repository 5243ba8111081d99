"""Mutation tests of the trained-encoder rows (experiments/ledger/checks/encoders.py: C50-C56, C62, C63).

The saved measurements of one run are mutated and re-judged by ``encoders.judge`` (re-judging
never retrains). Each row has a mutation past its bound the way the claim forbids (FAIL) and one
back inside it (PASS, the repair of a row that FAILs, as most do at the 300-step smoke preset):

- C50/C52: one training seed's loss gap moved to 1.01 x / 0.99 x the 1e-3 criterion (every seed
  must pass); C51: the sine past / inside 0.05; C53/C55: the prominence ratio past / inside 1/2;
- C54/C56: the trained encoder's alignment set to its initialization's (FAIL: the bound is one
  initialization does not meet) or to the target's (PASS);
- C62/C63: the estimator's bias moved to 1.01 x / 0.99 x its 4-sigma band.
"""

from __future__ import annotations


import mutations
from experiments.ledger.checks import encoders
from test_mutations_head import setter, standard_tests

MODULE = "experiments.ledger.checks.encoders"


def _pair(key, what, fn):
    return mutations.pair(key, what, fn, encoders.judge)


def _gap(name):
    def fn(data, side):
        minimum = data["table_min_loss"] if name == "table" else data["linear_class_optimum"]["min_loss"]
        gap = encoders.LOSS_GAP * (1.01 if side > 0 else 0.99)
        for s in range(data["config"]["train_seeds"]):
            r = data["final"][f"{name}/spectral" + (f"/seed{s}" if s else "")]
            if side < 0 or s == data["config"]["train_seeds"] - 1:
                r["pop_loss"] = minimum + gap * abs(minimum)
    return fn


def _field(tag, field, bound):
    def fn(data, side):
        data["final"][tag][field] = bound * (1.01 if side > 0 else 0.99)
    return fn


def _alignment(name):
    def fn(data, side):
        run = data["runs"][f"{name}/spectral"]
        target = data["linear_class_optimum"]["alignment_f"] if name == "linear" else data["closed_form"]["alignment_f"]
        if side > 0:
            data["final"][f"{name}/spectral"]["alignment_f"] = run["alignment_f"][0]
        else:  # an initialization below the target, and training that reaches it
            run["alignment_f"][0] = min(run["alignment_f"][0], target - 0.1)
            data["final"][f"{name}/spectral"]["alignment_f"] = max(target, data["closed_form"]["alignment_f"])
    return fn


def _bias(which):
    def fn(data, side):
        e = data["estimators"][which]
        e["bias"] = e["tol"] * (1.01 if side > 0 else 0.99)
    return fn


MUTATIONS = [
    *_pair("C50", "one training seed's loss gap", _gap("table")),
    *_pair("C51", "the sine to f_min", _field("table/spectral", "sine", encoders.SINE_MAX)),
    *_pair("C52", "one training seed's loss gap", _gap("linear")),
    *_pair("C53", "the prominence ratio", _field("linear/spectral", "prominence", encoders.PROMINENCE_MAX)),
    *_pair("C54", "the trained alignment set to its initialization's / the target's", _alignment("linear")),
    *_pair("C55", "the prominence ratio", _field("mlp/spectral", "prominence", encoders.PROMINENCE_MAX)),
    *_pair("C56", "the trained alignment set to its initialization's / the target's", _alignment("mlp")),
    *_pair("C62", "the estimator's bias", _bias("independent")),
    *_pair("C63", "the estimator's bias", _bias("in_batch")),
]


test_mutation_flips_the_row, test_every_passable_row_has_a_mutation_of_its_verdict = standard_tests(MODULE, MUTATIONS)
