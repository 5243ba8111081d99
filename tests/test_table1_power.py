"""experiments/ledger/table1_power: the seeds each Table 1 row needs, the stage-2 design rule, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.common import seedstats
from experiments.ledger import table1_power
from experiments.ledger.checks import methods_cpu
from tests.test_checks_methods_cpu import BASE, fake_evidence


def _row(claim, n, cells):
    return {"claim": claim, "n_at_alpha_over_m": n, "cells": cells}


def test_the_design_takes_the_cheapest_rows_that_fit_and_spends_the_budget_on_them():
    rows = [_row("C100", None, ["ce/sym:0.8"]), _row("C101", 9, ["elr/sym:0.8"]), _row("C102", 5, ["mixup/sym:0.8"]),
            _row("C107", 4, ["mixup/asym:0.4"]), _row("C108", 30, ["crust/asym:0.4"])]
    plan = table1_power.design(rows, budget_runs=60)
    # C107 (4), C102 (5), C101 (9): 3 pairs x 2 inits x 9 = 54 <= 60; adding C108 needs 4 x 2 x 30; n raised to 60 // 6
    assert plan["rows"] == ["C107", "C102", "C101"] and plan["seeds_per_cell"] == 10 and plan["runs"] == 60
    assert plan["cells"] == ["mixup/asym:0.4", "mixup/sym:0.8", "elr/sym:0.8"]
    assert plan["left_out"] == ["C100", "C108"]
    assert table1_power.design(rows, budget_runs=7)["rows"] == []  # not even C107 (2 x 4 runs) fits: nothing
    # a pair shared by two rows counts once (C100 and C104 share ce/sym:0.8)
    shared = [_row("C100", 4, ["ce/sym:0.8"]), _row("C104", 4, ["ce/sym:0.8", "elr/sym:0.8"])]
    assert table1_power.design(shared, budget_runs=16)["cells"] == ["ce/sym:0.8", "elr/sym:0.8"]


def test_power_rows_follow_the_check_and_seedstats():
    acc = dict(BASE)
    acc[("elr", "random")] = 29.5
    ev = fake_evidence(acc, spread=(-1.0, 0.3, 0.4, 1.2))
    rows = {r["claim"]: r for r in table1_power.power_rows(ev)}
    judged = {r.claim: r for r in methods_cpu.judge({"evidence": ev})}
    r = rows["C101"]
    assert r["diff"] == pytest.approx(judged["C101"].measured) and r["cells"] == ["elr/sym:0.8"]
    sd = float(np.std([-1.0, 0.3, 0.4, 1.2], ddof=1))
    assert (r["sd_better"], r["sd_worse"], r["n_better"]) == (pytest.approx(sd), pytest.approx(sd), 4)
    assert r["n_at_alpha_over_m"] == seedstats.seeds_needed(1.5, sd, sd, alpha=0.05 / 9)
    assert r["n_at_alpha"] == seedstats.seeds_needed(1.5, sd, sd, alpha=0.05) <= r["n_at_alpha_over_m"]
    c104 = rows["C104"]  # every comparison must resolve: the largest count of the three
    assert c104["cells"] == ["ce/sym:0.8", "elr/sym:0.8", "mixup/sym:0.8", "crust/sym:0.8"]
    assert c104["n_at_alpha_over_m"] == max(q["n_at_alpha_over_m"] for q in c104["comparisons"])


def test_the_command_prints_the_table_and_writes_the_json(tmp_path, capsys):
    out = tmp_path / "power.json"
    assert table1_power.main(["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seeds/cell for power 0.8: at alpha/9" in text and "stage 2 (rule: module docstring)" in text
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python -m experiments.ledger.table1_power --out")
    assert [r["claim"] for r in saved["rows"]] == [c.id for c in methods_cpu.CLAIMS]
    plan = saved["design"]
    assert plan["runs"] <= plan["budget_runs"] == 60
    if plan["rows"]:
        assert any("--seed-start 3" in c and f"--seeds {plan['seeds_per_cell']}" in c for c in saved["commands"])


def test_help_gives_every_default_and_bad_input_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit):
        table1_power.main(["--help"])
    text = capsys.readouterr().out
    for default in ("(default: 0.05)", "(default: 0.8)", "(default: 180.0)", "(default: 3.0)", "(default: 3)",
                    "(default: 1000)"):
        assert default in text
    assert table1_power.main(["--alpha", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--alpha must be in (0, 1), got 2.0" in err[0]
    assert table1_power.main(["--evidence", "/nonexistent.json"]) == 2
