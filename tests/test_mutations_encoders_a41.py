"""Mutation tests of the trained-encoder rows inside Assumptions 4.1-4.2 (experiments/ledger/checks/encoders_a41.py: C65-C68).

The saved measurements of one run are re-judged by ``encoders_a41.judge``. Each row has a mutation past
its bound (FAIL) and one inside it (PASS, the repair of a row that FAILs, as C65 and C68 do at the 300-step
smoke preset): C65/C67: the prominence ratio 1.01 x / 0.99 x 1/2; C66/C68: the trained alignment set to its
initialization's (FAIL: the bound is one initialization does not meet) or to f_min's (PASS).
"""

from __future__ import annotations

import pytest

import mutations
from experiments.ledger.checks import encoders, encoders_a41
from test_mutations_head import standard_tests

MODULE = "experiments.ledger.checks.encoders_a41"


def _prominence(name):
    def fn(data, side):
        data["final"][name]["prominence"] = encoders.PROMINENCE_MAX * (1.01 if side > 0 else 0.99)
    return fn


def _alignment(name):
    def fn(data, side):
        a0 = data["init_alignment_f"][name]
        target = data["closed_form"]["alignment_f"]
        if side > 0:
            data["final"][name]["alignment_f"] = a0
        else:  # an initialization below the target, and training that reaches f_min's alignment
            data["init_alignment_f"][name] = min(a0, target - 0.1)
            data["final"][name]["alignment_f"] = max(target, data["linear_class_optimum"]["alignment_f"])
    return fn


MUTATIONS = [
    *mutations.pair("C65", "the linear encoder's prominence ratio", _prominence("linear"), encoders_a41.judge),
    *mutations.pair("C66", "the linear encoder's alignment set to its initialization's / f_min's", _alignment("linear"),
                    encoders_a41.judge),
    *mutations.pair("C67", "the MLP's prominence ratio", _prominence("mlp"), encoders_a41.judge),
    *mutations.pair("C68", "the MLP's alignment set to its initialization's / f_min's", _alignment("mlp"), encoders_a41.judge),
]


test_mutation_flips_the_row, test_every_passable_row_has_a_mutation_of_its_verdict = standard_tests(MODULE, MUTATIONS)


def test_the_graph_is_inside_the_assumptions_and_the_rows_are_complete():
    rows, data = mutations.saved_run(MODULE)
    assert [r.claim for r in rows] == [c.id for c in encoders_a41.CLAIMS]
    assert data["graph"]["delta"] < 1.0 and data["graph"]["xi"] <= encoders_a41.XI
    with pytest.raises(ValueError, match="preset must be one of"):
        encoders_a41.run("huge")
