"""checks/methods_cpu (C100-C108): Welch t-tests with Holm over the nine rows, checked against scipy and an
independent Holm loop, on synthetic and on the committed evidence; verdicts that can fail; stage 2."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import stats

from experiments.ledger.checks import methods_cpu
from experiments.ledger.claims import FAIL, INFO, PASS

SYM, ASYM = methods_cpu.SYM, methods_cpu.ASYM
ALL_PAIRS = [(noise, cid, m) for noise, pairs in methods_cpu.PAIRS.items() for cid, m in pairs]
SPREAD = (-0.5, 0.0, 0.5)  # three seeds per cell, sd 0.5: a 2-point gap is 4.9 standard errors of the difference


def fake_evidence(acc: dict, asym: dict | None = None, spread=SPREAD, sha=None) -> dict:
    """Evidence with ``len(spread)`` seeds per cell; ``acc[(method, init)]`` is the mean last-epoch accuracy at
    sym 0.8, ``asym`` (default: ``acc`` + 40) the same at asym 0.4."""
    asym = {k: v + 40.0 for k, v in acc.items()} if asym is None else asym
    runs = []
    for noise, table in ((SYM, acc), (ASYM, asym)):
        for (method, init), mean in table.items():
            for seed, delta in enumerate(spread):
                runs.append({"method": method, "init": init, "noise": noise, "seed": seed,
                             "last_test_acc": mean + delta, "best_test_acc": mean + delta + 2, "best_epoch": 3,
                             **({"init_sha256": sha} if sha and init == "pretrained" else {})})
    return {"settings": {"arch": "resnet32", "epochs": 8}, "train_images": 4000, "runs": runs}


BASE = {("ce", "random"): 20.0, ("elr", "random"): 22.0, ("mixup", "random"): 18.0, ("crust", "random"): 19.0,
        ("ce", "pretrained"): 30.0, ("elr", "pretrained"): 31.0, ("mixup", "pretrained"): 27.0,
        ("crust", "pretrained"): 26.0}


def verdicts(evidence, stage2=None):
    return {r.claim: r for r in methods_cpu.judge({"evidence": evidence, "stage2": stage2})}


def _holm_loop(p):
    """Holm written differently from seedstats.holm: sorted p, running max of (m - i) p_(i), capped at 1."""
    m = len(p)
    out, running = [0.0] * m, 0.0
    for i, k in enumerate(sorted(range(m), key=lambda j: (p[j], j))):
        running = max(running, min(1.0, (m - i) * p[k]))
        out[k] = running
    return out


def _expected(evidence):
    """Per claim: (difference, raw p of the comparison shown, Holm p, df, t, CI) computed here with
    scipy.stats; C104 by the intersection-union / Bonferroni rule of the module docstring."""
    cell = lambda m, i, z: methods_cpu.cell_values(evidence, m, i, z)  # noqa: E731
    tests = {}
    for noise, cid, m in ALL_PAIRS:
        tests[cid] = [(cell(m, "pretrained", noise), cell(m, "random", noise))]
    tests["C104"] = [(cell("ce", "pretrained", SYM), cell(m, "random", SYM)) for m in methods_cpu.NON_CL]
    out, ps = {}, []
    for c in methods_cpu.CLAIMS:
        res = [(np.mean(a) - np.mean(b), stats.ttest_ind(a, b, equal_var=False)) for a, b in tests[c.id]]
        if all(d > 0 for d, _ in res):
            d, r = max(res, key=lambda x: x[1].pvalue)
            p = r.pvalue
        else:
            d, r = min((x for x in res if x[0] <= 0), key=lambda x: x[1].pvalue)
            p = min(1.0, len(res) * r.pvalue)
        ci = r.confidence_interval(0.95)
        out[c.id] = [d, r.pvalue, None, r.df, r.statistic, (ci.low, ci.high)]
        ps.append(p)
    for c, h in zip(methods_cpu.CLAIMS, _holm_loop(ps)):
        out[c.id][2] = h
    return out


def test_rows_pass_when_cl_init_is_better_and_report_the_test():
    rows = verdicts(fake_evidence(BASE))
    assert {k: r.verdict for k, r in rows.items()} == {c.id: PASS for c in methods_cpu.CLAIMS}
    assert [c.id for c in methods_cpu.CLAIMS] == [f"C{i}" for i in range(100, 109)]
    assert rows["C101"].measured == pytest.approx(31.0 - 22.0) and rows["C101"].bound == 0.0
    assert rows["C104"].measured == pytest.approx(30.0 - 22.0)  # against ELR: the least resolved of the three
    note = rows["C101"].note
    assert "31.0 ± 0.5 (n=3)" in note and "CPU-scale, JPEG CIFAR-10" in rows["C101"].setting
    assert note.startswith("resolved: Holm-adjusted p") and "best epoch (selected on test)" in note
    # sd 0.5 per cell, n = 3: SE = sqrt(2 x 0.25 / 3) = 0.408, df = 4, t = 9 / 0.408 = 22.0
    assert "SE 0.41, df 4.0, t +22.05" in note and "95% CI [" in note
    assert rows["C106"].measured == pytest.approx(31.0 - 22.0) and ASYM in rows["C106"].setting
    assert "intersection-union" in rows["C104"].note


@pytest.mark.parametrize("noise, cid, method", ALL_PAIRS)
def test_each_row_fails_when_random_init_wins_resolved(noise, cid, method):
    acc, asym = dict(BASE), {k: v + 40.0 for k, v in BASE.items()}
    table = acc if noise == SYM else asym
    table[(method, "random")] = table[(method, "pretrained")] + 3.0  # reversed, 7.3 standard errors
    rows = verdicts(fake_evidence(acc, asym))
    assert rows[cid].verdict == FAIL and rows[cid].measured == pytest.approx(-3.0)
    assert all(r.verdict == PASS for k, r in rows.items() if k not in (cid, "C104"))


def test_cl_e2e_row_fails_when_one_non_cl_method_beats_it_resolved():
    acc = dict(BASE)
    acc[("mixup", "random")] = 33.0
    rows = verdicts(fake_evidence(acc))
    assert rows["C104"].verdict == FAIL and "mixup/random" in rows["C104"].note and "Bonferroni" in rows["C104"].note
    assert rows["C104"].measured == pytest.approx(-3.0)


@pytest.mark.parametrize("gap", [0.1, -0.1, 0.8, -0.8])
def test_a_difference_the_test_does_not_resolve_is_info_not_judged(gap):
    acc = dict(BASE)
    acc[("elr", "random")] = acc[("elr", "pretrained")] - gap  # se 0.408, df 4: |t| <= 2, p >= 0.12
    rows = verdicts(fake_evidence(acc))
    assert rows["C101"].verdict == INFO and rows["C101"].note.startswith("unresolved: Holm-adjusted p")
    assert rows["C101"].measured == pytest.approx(gap)


def test_holm_leaves_rows_unresolved_that_would_pass_alone():
    # every CL cell 1.6 points above its random cell (sd 0.5, n = 3): t = 3.92, df = 4, p = 0.017 < 0.05 for each
    # row alone (and 3.9 standard errors: PASS under the old 2-SE rule), but Holm over nine such rows gives
    # 9 x 0.017 = 0.15 for every one of them
    flat = {(m, i): 20.0 + (1.6 if i == "pretrained" else 0.0) for m in ("ce", "elr", "mixup", "crust")
            for i in ("random", "pretrained")}
    rows = verdicts(fake_evidence(flat))
    p = stats.ttest_ind([21.6 + d for d in SPREAD], [20.0 + d for d in SPREAD], equal_var=False).pvalue
    assert 0.01 < p < 0.05 and 9 * p > 0.05
    for r in rows.values():
        assert r.verdict == INFO and f"Holm-adjusted p {9 * p:.3g} > 0.05" in r.note and f", p {p:.3g}" in r.note


def test_missing_evidence_or_cells_and_one_seed_cells_are_info_with_a_reason():
    assert all(r.verdict == INFO and "no evidence file" in r.note for r in methods_cpu.judge({"evidence": None}))
    acc = {k: v for k, v in BASE.items() if k != ("crust", "pretrained")}
    rows = verdicts(fake_evidence(acc))
    assert rows["C103"].verdict == INFO and "crust/pretrained" in rows["C103"].note and math.isnan(rows["C103"].measured)
    assert rows["C101"].verdict == PASS
    evidence = fake_evidence(BASE)
    evidence["runs"] = [r for r in evidence["runs"]
                        if not (r["noise"] == ASYM and r["method"] == "elr" and r["init"] == "random" and r["seed"] > 0)]
    rows = verdicts(evidence)
    assert rows["C106"].verdict == INFO and rows["C106"].note.startswith("unresolved: a cell has one seed only")
    assert rows["C106"].measured == pytest.approx(71.0 - 61.5)


def _check_against_scipy(evidence):
    rows, expected = verdicts(evidence), _expected(evidence)
    for c in methods_cpu.CLAIMS:
        d, p, h, df, t, (lo, hi) = expected[c.id]
        r = rows[c.id]
        assert r.measured == pytest.approx(d)
        assert f"df {df:.1f}, t {t:+.2f}, p {p:.3g}" in r.note
        assert f"95% CI [{lo:+.2f}, {hi:+.2f}]" in r.note and f"Holm-adjusted p {h:.3g}" in r.note
        assert r.verdict == (INFO if h > methods_cpu.ALPHA else PASS if d > 0 else FAIL)
    return rows


def test_synthetic_rows_match_scipy_and_an_independent_holm():
    acc = dict(BASE)
    acc[("elr", "random")] = 29.5  # weak: Holm decides
    acc[("crust", "random")] = 30.0  # C103 reversed
    _check_against_scipy(fake_evidence(acc, spread=(-1.0, 0.3, 0.4, 1.2)))


def test_the_committed_evidence_rejudged_matches_scipy_and_flips_when_the_inits_are_swapped():
    evidence = methods_cpu.load()
    if evidence is None:
        pytest.skip("no committed evidence file")
    rows = _check_against_scipy(evidence)
    # 2026-12-03: under Welch + Holm none of the nine 3-seed rows is resolved (the old 2-SE rule passed
    # C101, C102 and C107)
    assert {r.verdict for r in rows.values()} == {INFO}
    swapped = copy.deepcopy(evidence)
    for r in swapped["runs"]:
        r["init"] = {"random": "pretrained", "pretrained": "random"}[r["init"]]
    flipped = verdicts(swapped)
    for _, cid, _ in ALL_PAIRS:
        assert flipped[cid].measured == pytest.approx(-rows[cid].measured)


def test_stage2_is_judged_on_its_own_and_rows_it_lacks_are_info():
    pilot = fake_evidence({k: 0.0 for k in BASE})  # no difference anywhere: every pilot row unresolved
    cells = {("mixup", "random"): 18.0, ("mixup", "pretrained"): 27.0}
    stage2 = fake_evidence(cells, sha="ab" * 32)
    rows = verdicts(pilot, stage2)
    assert rows["C102"].verdict == PASS and rows["C107"].verdict == PASS
    assert "stage 2 evidence table1_cpu_stage2.json" in rows["C102"].note and "abababababab" in rows["C102"].setting
    for cid in ("C100", "C101", "C103", "C104", "C105", "C106", "C108"):
        assert rows[cid].verdict == INFO and "not in stage 2" in rows[cid].note
    assert {r.verdict for r in verdicts(pilot).values()} == {INFO}
    # runs from two checkpoints in one evidence set: no verdict
    mixed = copy.deepcopy(stage2)
    next(r for r in mixed["runs"] if r["init"] == "pretrained")["init_sha256"] = "cd" * 32
    assert all(r.verdict == INFO and "2 different checkpoints" in r.note for r in verdicts(pilot, mixed).values())


def test_run_reads_the_pilot_and_the_stage2_file(tmp_path, monkeypatch):
    monkeypatch.setattr(methods_cpu, "STAGE2", tmp_path / "table1_cpu_stage2.json")
    rows, data = methods_cpu.run("smoke")
    assert data["stage2"] is None and "judged on evidence table1_cpu.json" in data["notes"][0]
    assert len(rows) == 9


def _stage2_with_seeds(n: int, gap: float, sha="ab" * 32, spread_sd: float = 1.0):
    """Stage-2 evidence: the two Mixup cells at both noises, ``n`` seeds each, CL ahead by ``gap``."""
    spread = tuple(np.linspace(-spread_sd, spread_sd, n))
    return fake_evidence({("mixup", "random"): 18.0, ("mixup", "pretrained"): 18.0 + gap}, spread=spread, sha=sha)


def test_a_look_at_stage2_is_judged_at_alpha_over_the_looks_against_scipy():
    pilot = fake_evidence({k: 0.0 for k in BASE})
    stage2 = _stage2_with_seeds(6, 1.3)
    rows = verdicts(pilot, stage2)
    hi = methods_cpu.cell_values(stage2, "mixup", "pretrained", SYM)
    lo = methods_cpu.cell_values(stage2, "mixup", "random", SYM)
    p = stats.ttest_ind(hi, lo, equal_var=False).pvalue
    holm_p = _holm_loop([p, p] + [1.0] * 7)[0]  # C102 and C107 are the same test here
    alpha = methods_cpu.ALPHA / methods_cpu.STAGE2_LOOKS
    assert alpha == 0.025
    assert f"Holm-adjusted p {holm_p:.3g}" in rows["C102"].note
    assert rows["C102"].verdict == (PASS if holm_p <= alpha else INFO)
    assert "interim look at n = 6 of 15 seeds per cell, alpha 0.05/2" in rows["C102"].note
    # a Holm p between 0.025 and 0.05 passes a single look but not a look at stage 2
    for gap in np.linspace(0.5, 3.0, 60):
        s2 = _stage2_with_seeds(6, float(gap))
        r = verdicts(pilot, s2)["C102"]
        h = float(r.note.split("Holm-adjusted p ")[1].split()[0])
        if 0.025 < h <= 0.05:
            assert r.verdict == INFO and "> 0.025" in r.note
            break
    else:
        pytest.fail("no gap gave a Holm p in (0.025, 0.05]")
    assert "final look at n = 15 of 15" in verdicts(pilot, _stage2_with_seeds(15, 1.0))["C102"].note


def test_a_look_at_stage2_keeps_whole_seed_blocks_only():
    pilot = fake_evidence({k: 0.0 for k in BASE})
    stage2 = _stage2_with_seeds(5, 4.0)
    # seed 4 finished in three of the four cells only: it is left out everywhere
    stage2["runs"] = [r for r in stage2["runs"]
                      if not (r["seed"] == 4 and r["noise"] == ASYM and r["init"] == "random")]
    kept, dropped = methods_cpu.whole_seed_blocks(stage2)
    assert dropped == [4] and {r["seed"] for r in kept["runs"]} == {0, 1, 2, 3}
    rows = verdicts(pilot, stage2)
    assert "n = 4 of 15" in rows["C102"].note and "seeds 4 left out" in rows["C102"].note
    assert "n=4" in rows["C102"].note and "n=5" not in rows["C102"].note
    # a resolved reversal in stage 2 is a FAIL
    reversed_ = _stage2_with_seeds(8, -4.0)
    assert verdicts(pilot, reversed_)["C107"].verdict == FAIL
