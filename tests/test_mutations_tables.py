"""Mutation tests of the table-arithmetic rows (C70-C79): move a cell of the paper's tables, or the
text's figure, across what the sentence claims, and the row must FAIL; rows that FAIL as findings
(C70, C71, C77 on ImageNet) are repaired the same way and must PASS, so their FAIL is not structural."""

from __future__ import annotations

import pytest

import mutations
from mutations import Mutation
from experiments.ledger.checks import tables

MODULE = "experiments.ledger.checks.tables"


def _cell(key, what, edit, expect="FAIL"):
    def apply(data, mp):
        edit(data)
        return tables.judge(data)
    return Mutation(key, what, apply, expect)


def _set_sym80(method, ds, value):
    def edit(data):
        cell = list(data["sym80"][method])
        cell[ds] = value(data) if callable(value) else value
        data["sym80"][method] = tuple(cell)
    return edit


def _set_t3(method, j, value):
    def edit(data):
        cell = list(data["table3"][method])
        cell[j] = value(data)
        data["table3"][method] = tuple(cell)
    return edit


def _repair_avg(ds):
    def edit(data):
        g = tables.gains(data["sym80"], ds)
        avg = list(data["text"]["avg_gain"])
        avg[ds] = sum(g.values()) / 3
        data["text"]["avg_gain"] = tuple(avg)
    return edit


def _t4(col, name, delta):
    def edit(data):
        cell = list(data["table4"][name])
        cell[col] += delta
        data["table4"][name] = tuple(cell)
    return edit


E2E = lambda j: (lambda d: d["table3"]["CL+E2E"][j])  # noqa: E731
MUTATIONS = [
    _cell("C70", "the text's 27.18 set to the Table 1 mean", _repair_avg(0), expect="PASS"),
    _cell("C71", "the text's 15.58 set to the Table 1 mean", _repair_avg(1), expect="PASS"),
    _cell("C72", "CL+Crust's CIFAR-10 cell 0.2 higher", _set_sym80("CL+Crust", 0, lambda d: d["sym80"]["CL+Crust"][0] + 0.2)),
    _cell("C73.1", "CL+ELR's WebVision top-1 0.05 higher", _set_t3("CL+ELR", 0, lambda d: d["table3"]["CL+ELR"][0] + 0.05)),
    _cell("C73.2", "CL+ELR's ImageNet top-1 0.05 higher", _set_t3("CL+ELR", 2, lambda d: d["table3"]["CL+ELR"][2] + 0.05)),
    _cell("C74.1", "INCV's CIFAR-10 cell above CL+E2E", _set_sym80("INCV", 0, lambda d: d["sym80"]["CL+E2E"][0] + 0.1)),
    _cell("C74.2", "ELR's CIFAR-100 cell above CL+E2E", _set_sym80("ELR", 1, lambda d: d["sym80"]["CL+E2E"][1] + 0.1)),
    _cell("C75", "||Pi_I(y)|| of random init 0.01 higher", _t4(0, "random init", 0.01)),
    *[_cell(f"C76.{j + 1}", f"Mixup's {m} above CL+E2E", _set_t3("Mixup", j, lambda d, j=j: E2E(j)(d) + 0.01))
      for j, m in enumerate(tables.TABLE3_METRICS)],
    *[_cell(f"C77.{j + 1}", f"Crust's {m} below CL+E2E", _set_t3("Crust", j, lambda d, j=j: E2E(j)(d) - 0.01))
      for j, m in enumerate(tables.TABLE3_METRICS[:2])],
    *[_cell(f"C77.{j + 1}", f"Crust and ELR's {m} raised above CL+E2E",
            lambda d, j=j: [_set_t3(k, j, lambda d: E2E(j)(d) + 0.01)(d) for k in ("Crust", "ELR")], expect="PASS")
      for j, m in list(enumerate(tables.TABLE3_METRICS))[2:]],
    _cell("C78", "||Pi_I(y)|| of SimCLR 100 ep below random init's", _t4(0, "SimCLR 100 ep", -0.03)),
    _cell("C79", "the alignment of SimCLR 1000 ep below SimCLR 100 ep's", _t4(2, "SimCLR 1000 ep", -0.02)),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, monkeypatch):
    rows, data = mutations.saved_run(MODULE)
    before = mutations.by_key(rows)[mutation.key].verdict
    assert before == ("PASS" if mutation.expect == "FAIL" else "FAIL"), before
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)
