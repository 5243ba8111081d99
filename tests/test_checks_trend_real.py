"""C110-C119 (experiments/ledger/checks/trend_real.py): the statistic against independent computations, the
decision rule on synthetic evidence, the skipped rows without evidence, the figure."""

from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from experiments.common.runs import _to_jsonable
from experiments.ledger.checks import MODULES, trend_real as tr
from experiments.ledger.claims import FAIL, INFO, PASS

EPOCHS = (0, 1, 2, 4, 8, 16)
KNN = (0.20, 0.28, 0.31, 0.35, 0.38, 0.40)


def synthetic_evidence(knn=KNN) -> dict:
    """Six checkpoints whose every quantity moves the way the paper predicts, strictly monotone in k-NN."""
    cks = []
    for i, (e, a) in enumerate(zip(EPOCHS, knn)):
        cks.append({"epoch": e, "knn_acc": a, "knn_se": 0.005, "monitor_knn_acc": None if e == 0 else a - 0.01,
                    "alignment_K": 0.12 + 0.02 * i, "prominent": 1 + 2 * i, "gap_ratio": 0.9 - 0.1 * i,
                    "train_recovery": 0.13 + 0.03 * i, "alpha_realized": 0.8, "threshold": 0.866,
                    "rankme": 10.0 + i, "pi_I": 9.8 - 0.01 * i + 0.02 * i * i, "ratio": 1.9 + 0.05 * i,
                    "num_classes": 10})
    return {"num_classes": 10, "commit": "0123456789abcdef", "date": "2026-12-03", "settings": {}, "checkpoints": cks}


def _by(rows):
    return {r.claim: r for r in rows}


# ----------------------------------------------------------------------------- the statistic


@pytest.mark.parametrize("seed", range(8))
def test_spearman_equals_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = 4 + seed
    x = rng.normal(size=n)
    y = rng.integers(0, 3, size=n).astype(float) if seed % 2 else rng.normal(size=n)  # ties in y every other seed
    assert tr.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert np.allclose(tr.average_ranks(y), stats.rankdata(y))


def test_a_constant_quantity_has_rho_zero_and_no_critical_value():
    t = tr.trend_test([1, 1, 1, 1, 1, 1], KNN, +1)
    assert t["rho"] == 0.0 and t["p"] == 1.0 and t["r_crit"] is None


def _p_by_loop(q, a, d):
    """The one-sided p counted ordering by ordering with scipy's rho (independent of the vectorized count)."""
    obs = d * stats.spearmanr(q, a).statistic
    hits = total = 0
    for perm in itertools.permutations(range(len(q))):
        r = stats.spearmanr(np.asarray(q)[list(perm)], a).statistic
        hits += d * r >= obs - 1e-12
        total += 1
    return hits / total


@pytest.mark.parametrize("case", range(5))
def test_the_exact_permutation_p_matches_a_count_done_differently(case):
    rng = np.random.default_rng(100 + case)
    n = 5 + case % 2
    q = rng.normal(size=n) if case < 3 else rng.integers(0, 3, size=n).astype(float)  # ties in q
    a = rng.normal(size=n)
    d = 1 if case % 2 == 0 else -1
    if np.ptp(q) == 0:
        q[0] += 1.0
    t = tr.trend_test(q, a, d)
    assert t["exact"] and t["orderings"] == math.factorial(n)
    assert t["p"] == pytest.approx(_p_by_loop(q, a, d), abs=1e-12)
    # scipy's own exact permutation test agrees too ("pairings" permutes both samples, (n!)^2 pairings, each
    # ordering of q against a counted n! times; the statistic vectorized over them: Pearson of scipy's ranks)
    def rho(x, y, axis):
        rx, ry = stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis)
        rx, ry = rx - rx.mean(axis=axis, keepdims=True), ry - ry.mean(axis=axis, keepdims=True)
        return np.sum(rx * ry, axis=axis) / np.sqrt(np.sum(rx * rx, axis=axis) * np.sum(ry * ry, axis=axis))

    res = stats.permutation_test((q, a), rho, permutation_type="pairings", vectorized=True,
                                 alternative="greater" if d > 0 else "less", n_resamples=np.inf)
    assert t["p"] == pytest.approx(res.pvalue, abs=1e-9)


def test_the_critical_value_for_six_untied_points_is_the_tabled_0829():
    t = tr.trend_test(np.arange(6.0), KNN, +1)
    assert t["rho"] == pytest.approx(1.0) and t["p"] == pytest.approx(1 / 720)
    assert t["r_crit"] == pytest.approx(0.8285714286, abs=1e-9)  # 29/35: P(rho >= 29/35) = 21/720 <= 0.05


def test_the_critical_value_and_the_p_value_agree_everywhere():
    """``d rho >= r_crit`` exactly when ``p <= LEVEL``, for every ordering of six values."""
    base = np.arange(6.0)
    for perm in itertools.permutations(range(6)):
        t = tr.trend_test(base[list(perm)], KNN, +1)
        assert (round(t["rho"], tr.DIGITS) >= t["r_crit"]) == (t["p"] <= tr.LEVEL)


def test_beyond_exact_the_orderings_are_sampled_with_a_fixed_seed():
    q = np.arange(10.0)
    a = q + np.random.default_rng(0).normal(0, 1.0, 10)
    t = tr.trend_test(q, a, +1)
    assert not t["exact"] and t["orderings"] == tr.RANDOM_ORDERINGS and t == tr.trend_test(q, a, +1)
    assert t["p"] == pytest.approx(stats.spearmanr(q, a, alternative="greater").pvalue, abs=0.01)


@pytest.mark.parametrize("bad", [dict(q=[1, 2], a=[1, 2, 3]), dict(q=[1], a=[1]), dict(q=[1, float("nan")], a=[1, 2])])
def test_bad_input_to_the_statistic_names_it(bad):
    with pytest.raises(ValueError):
        tr.trend_test(bad["q"], bad["a"], +1)
    with pytest.raises(ValueError, match="direction"):
        tr.trend_test([1, 2, 3], [1, 2, 3], 0)


def test_linear_fit_matches_numpy():
    x, y = np.array([0.2, 0.3, 0.4]), np.array([1.0, 2.0, 2.5])
    b, m, r2 = tr.linear_fit(x, y)
    assert m == pytest.approx(7.5) and b == pytest.approx(-5 / 12)
    assert r2 == pytest.approx(stats.linregress(x, y).rvalue ** 2)


# ----------------------------------------------------------------------------- the rows


def test_registered_ids_in_range_and_missing_evidence_is_skipped(tmp_path):
    assert "experiments.ledger.checks.trend_real" in MODULES
    ids = [c.id for c in tr.CLAIMS]
    assert len(set(ids)) == len(ids) and all(110 <= int(i[1:]) <= 119 for i in ids)
    rows, data = tr.run("smoke", evidence=tmp_path / "none.json")
    assert {r.claim for r in rows} == set(ids) and data == {}
    assert all(r.verdict == INFO and "skipped" in r.note for r in rows)
    with pytest.raises(ValueError, match="preset"):
        tr.run("huge")


def test_predicted_trends_pass_and_the_figure_is_drawn(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(synthetic_evidence()))
    rows, data = tr.run("cpu", evidence=path)
    by = _by(rows)
    assert list(by) == [c.id for c in tr.CLAIMS]
    for cid in ("C110", "C111", "C112", "C113", "C115", "C116"):
        assert by[cid].verdict == PASS, (cid, by[cid].measured, by[cid].bound, by[cid].note)
        assert abs(by[cid].measured) == pytest.approx(1.0) and "n = 6" in by[cid].note and "p 0.0014" in by[cid].note
    assert by["C114"].verdict == INFO and "no predicted direction" in by["C114"].note
    assert all(by[c].verdict == INFO for c in ("C117", "C118", "C119"))
    assert "EXTRAPOLATION" in by["C118"].note and "bound is met" in by["C117"].note  # prominent reaches 11 >= K
    paths = tr.plot(json.loads(json.dumps(_to_jsonable(data))), tmp_path)
    assert len(paths) == 1 and paths[0].read_bytes()[:4] == b"\x89PNG"
    assert tr.judge(json.loads(json.dumps(_to_jsonable(data)))) == rows


def _edited(edit, knn=KNN):
    ev = synthetic_evidence(knn)
    edit(ev["checkpoints"])
    return _by(tr.rows_from_evidence(ev))


def test_the_wrong_sign_fails_even_when_not_significant_and_a_weak_right_sign_is_info():
    def swap_last_two(key):  # rho = 0.943 > 0: still significant
        def edit(cks):
            cks[-1][key], cks[-2][key] = cks[-2][key], cks[-1][key]
        return edit

    assert _edited(swap_last_two("alignment_K"))["C110"].verdict == PASS

    def weak(cks):  # alignment values in the order 2, 1, 3, 0, 5, 4: rho = 0.543 > 0, p > 0.05
        for c, v in zip(cks, (2, 1, 3, 0, 5, 4)):
            c["alignment_K"] = float(v)
    r = _edited(weak)["C110"]
    assert r.verdict == INFO and "not significant" in r.note

    def slightly_wrong(cks):  # 3, 4, 5, 0, 1, 2 against rising k-NN: rho -0.543, not significant, wrong sign
        for c, v in zip(cks, (3, 4, 5, 0, 1, 2)):
            c["alignment_K"] = float(v)
    r = _edited(slightly_wrong)["C110"]
    assert r.verdict == FAIL and r.measured < 0

    def constant(cks):
        for c in cks:
            c["prominent"] = 1
    r = _edited(constant)["C111"]
    assert r.verdict == FAIL and r.measured == 0.0


def test_a_falling_quantity_predicted_to_fall_passes_and_rising_fails():
    assert _edited(lambda cks: None)["C112"].verdict == PASS

    def rising(cks):
        for i, c in enumerate(cks):
            c["gap_ratio"] = 0.5 + 0.05 * i
    r = _edited(rising)["C112"]
    assert r.verdict == FAIL and r.measured == pytest.approx(1.0) and r.bound < 0


def test_too_few_checkpoints_are_info():
    ev = synthetic_evidence()
    ev["checkpoints"] = ev["checkpoints"][:3]
    rows = tr.rows_from_evidence(ev)
    assert all(r.verdict == INFO for r in rows)
    assert "too few checkpoints" in _by(rows)["C110"].note


def test_extrapolation_rows():
    for step, beyond in ((0.05, False), (0.02, True)):  # rises to 0.35: the line reaches 1 at k-NN 0.945; to 0.2: at 1.7
        def low_recovery(cks):
            for i, c in enumerate(cks):
                c["train_recovery"] = 0.1 + step * i
        r = _edited(low_recovery)["C118"]
        b, m, _ = tr.linear_fit(KNN, [0.1 + step * i for i in range(6)])
        assert r.verdict == INFO and "EXTRAPOLATION" in r.note and r.measured == pytest.approx((1.0 - b) / m)
        assert (r.measured > 1) == beyond and ("not at any accuracy" in r.note) == beyond

    def falling_pi(cks):  # below the initialization and falling: no extrapolation
        for i, c in enumerate(cks):
            c["pi_I"] = 9.8 - 0.05 * i
    r = _edited(falling_pi)["C119"]
    assert r.verdict == INFO and "slopes away" in r.note and r.measured == pytest.approx(9.8 - 0.25)

    def dip_then_rise(cks):  # below epoch 0 at the end but the fit slopes up
        for c, v in zip(cks, (9.8, 9.0, 9.2, 9.4, 9.6, 9.7)):
            c["pi_I"] = v
    r = _edited(dip_then_rise)["C119"]
    b, m, _ = tr.linear_fit(KNN, (9.8, 9.0, 9.2, 9.4, 9.6, 9.7))
    assert "EXTRAPOLATION" in r.note and r.measured == pytest.approx((9.8 - b) / m) and r.measured > KNN[-1]

    def constant(cks):  # one prominent value throughout: no slope (round-off is not a trend)
        for c in cks:
            c["prominent"] = 1
    r = _edited(constant)["C117"]
    assert r.verdict == INFO and "the same at all 6 checkpoints" in r.note and r.measured == 1.0

    ev = synthetic_evidence()
    ev["checkpoints"] = ev["checkpoints"][1:]  # no epoch 0
    assert "no epoch-0" in _by(tr.rows_from_evidence(ev))["C119"].note


def test_rows_do_not_depend_on_the_order_of_the_checkpoints_in_the_file():
    ev = synthetic_evidence()
    shuffled = copy.deepcopy(ev)
    shuffled["checkpoints"] = shuffled["checkpoints"][::-1]
    assert tr.rows_from_evidence(ev) == tr.rows_from_evidence(shuffled)


def test_the_bootstrap_interval_matches_an_independent_loop_over_the_same_resamples():
    from scipy.stats import spearmanr

    from experiments.ledger.checks import trend_real as tr

    q = np.array([0.14, 0.18, 0.19, 0.20, 0.21, 0.21])
    a = np.array([0.257, 0.290, 0.333, 0.366, 0.380, 0.401])
    lo, hi = tr.bootstrap_interval(q, a, resamples=2000, seed=3)
    idx = np.random.default_rng(3).integers(0, len(q), size=(2000, len(q)))
    rhos = []
    for i in idx:
        if np.ptp(q[i]) == 0 or np.ptp(a[i]) == 0:
            rhos.append(0.0)
        else:
            rhos.append(spearmanr(q[i], a[i]).statistic)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])), abs=1e-12)
    assert -1.0 <= lo <= tr.spearman(q, a) <= hi <= 1.0
    assert tr.bootstrap_interval(q, a) == tr.bootstrap_interval(q, a)  # seeded: the same numbers every run
