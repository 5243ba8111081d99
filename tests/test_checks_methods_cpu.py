"""checks/methods_cpu (C100-C108): rows from the Table 1 CPU-scale evidence, and verdicts that can fail."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from experiments.ledger.checks import methods_cpu
from experiments.ledger.claims import FAIL, INFO, PASS


SYM, ASYM = methods_cpu.SYM, methods_cpu.ASYM
ALL_PAIRS = [(noise, cid, m) for noise, pairs in methods_cpu.PAIRS.items() for cid, m in pairs]


def fake_evidence(acc: dict, asym: dict | None = None) -> dict:
    """Evidence with two seeds per cell; ``acc[(method, init)]`` is the mean last-epoch accuracy at
    sym 0.8, ``asym`` (default: ``acc`` + 40) the same at asym 0.4."""
    asym = {k: v + 40.0 for k, v in acc.items()} if asym is None else asym
    runs = []
    for noise, table in ((SYM, acc), (ASYM, asym)):
        for (method, init), mean in table.items():
            for seed, delta in ((0, -0.5), (1, 0.5)):
                runs.append({"method": method, "init": init, "noise": noise, "seed": seed,
                             "last_test_acc": mean + delta, "best_test_acc": mean + delta + 2, "best_epoch": 3})
    return {"settings": {"arch": "resnet32", "epochs": 4}, "train_images": 1000, "runs": runs}


BASE = {("ce", "random"): 20.0, ("elr", "random"): 22.0, ("mixup", "random"): 18.0, ("crust", "random"): 19.0,
        ("ce", "pretrained"): 30.0, ("elr", "pretrained"): 31.0, ("mixup", "pretrained"): 27.0,
        ("crust", "pretrained"): 26.0}


def verdicts(evidence):
    return {r.claim: r for r in methods_cpu.judge({"evidence": evidence})}


def test_rows_pass_when_cl_init_is_better_and_report_mean_std_n():
    rows = verdicts(fake_evidence(BASE))
    assert {k: r.verdict for k, r in rows.items()} == {c.id: PASS for c in methods_cpu.CLAIMS}
    assert [c.id for c in methods_cpu.CLAIMS] == [f"C{i}" for i in range(100, 109)]
    assert rows["C101"].measured == pytest.approx(31.0 - 22.0)
    assert rows["C104"].measured == pytest.approx(30.0 - 22.0)  # against the best non-CL method (ELR)
    assert "31.0 ± 0.7 (n=2)" in rows["C101"].note and "CPU-scale, JPEG CIFAR-10" in rows["C101"].setting
    assert "best epoch (selected on test)" in rows["C101"].note
    # per cell std 0.707 over 2 seeds: se of the difference = sqrt(0.5 / 2 * 2) = 0.707
    assert "standard error of the difference 0.7 (difference / se = +12.7)" in rows["C101"].note
    assert rows["C106"].measured == pytest.approx(31.0 - 22.0) and ASYM in rows["C106"].setting


@pytest.mark.parametrize("noise, cid, method", ALL_PAIRS)
def test_each_row_fails_when_random_init_wins(noise, cid, method):
    acc, asym = dict(BASE), {k: v + 40.0 for k, v in BASE.items()}
    table = acc if noise == SYM else asym
    table[(method, "random")] = table[(method, "pretrained")] + 5.0  # reversed, by 7 standard errors
    rows = verdicts(fake_evidence(acc, asym))
    assert rows[cid].verdict == FAIL
    assert all(r.verdict == PASS for k, r in rows.items() if k not in (cid, "C104"))


def test_cl_e2e_row_fails_when_one_non_cl_method_beats_it():
    acc = dict(BASE)
    acc[("mixup", "random")] = 33.0
    rows = verdicts(fake_evidence(acc))
    assert rows["C104"].verdict == FAIL and "mixup/random" in rows["C104"].note


@pytest.mark.parametrize("gap", [0.1, -0.1, 1.3, -1.3])
def test_a_difference_within_two_standard_errors_is_unresolved_not_judged(gap):
    acc = dict(BASE)
    acc[("elr", "random")] = acc[("elr", "pretrained")] - gap  # se of the difference = 0.707
    rows = verdicts(fake_evidence(acc))
    assert rows["C101"].verdict == INFO and rows["C101"].note.startswith("unresolved")
    assert rows["C101"].measured == pytest.approx(gap)


def test_missing_evidence_or_cells_are_info_with_a_reason():
    assert all(r.verdict == INFO and "no evidence file" in r.note for r in methods_cpu.judge({"evidence": None}))
    acc = {k: v for k, v in BASE.items() if k != ("crust", "pretrained")}
    rows = verdicts(fake_evidence(acc))
    assert rows["C103"].verdict == INFO and "crust/pretrained" in rows["C103"].note and math.isnan(rows["C103"].measured)
    assert rows["C101"].verdict == PASS


def test_the_committed_evidence_gives_judged_rows_that_flip_when_the_inits_are_swapped():
    evidence = methods_cpu.load()
    if evidence is None:
        pytest.skip("no committed evidence file")
    rows = verdicts(evidence)
    for noise, cid, method in ALL_PAIRS:
        cl = methods_cpu.cell_values(evidence, method, "pretrained", noise)
        rnd = methods_cpu.cell_values(evidence, method, "random", noise)
        if not cl or not rnd:
            assert rows[cid].verdict == INFO and "skipped" in rows[cid].note
            continue
        one_seed = min(len(cl), len(rnd)) < 2
        cl, rnd = np.mean(cl), np.mean(rnd)
        assert rows[cid].measured == pytest.approx(cl - rnd)
        if one_seed:  # no verdict from a cell with one seed
            assert rows[cid].verdict == INFO and "one seed" in rows[cid].note
            continue
        cells = [methods_cpu.cell_values(evidence, method, i, noise) for i in ("pretrained", "random")]
        se = np.sqrt(sum(np.var(v, ddof=1) / len(v) for v in cells))  # Welch's, any n per cell
        expected = INFO if abs(cl - rnd) < methods_cpu.RESOLVE * se else PASS if cl >= rnd else FAIL
        assert rows[cid].verdict == expected
    swapped = copy.deepcopy(evidence)
    for r in swapped["runs"]:
        r["init"] = {"random": "pretrained", "pretrained": "random"}[r["init"]]
    flipped = verdicts(swapped)
    for _, cid, _ in ALL_PAIRS:
        if rows[cid].measured != 0 and rows[cid].verdict != INFO:
            assert flipped[cid].verdict != rows[cid].verdict


def test_a_cell_with_one_seed_is_unresolved_not_judged():
    evidence = fake_evidence(BASE)
    evidence["runs"] = [r for r in evidence["runs"]
                        if not (r["noise"] == ASYM and r["method"] == "elr" and r["init"] == "random" and r["seed"] == 1)]
    rows = verdicts(evidence)
    assert rows["C106"].verdict == INFO and rows["C106"].note.startswith("unresolved: a cell has one seed only")
    assert rows["C106"].measured == pytest.approx(71.0 - 61.5)
    assert rows["C101"].verdict == PASS
