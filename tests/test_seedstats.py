"""experiments/common/seedstats: Welch's t-test, Holm's adjustment and Welch power, each against an
independent computation (scipy.stats, a step-down loop, noncentral t from scipy.stats, a simulation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from experiments.common import seedstats

samples = st.lists(st.floats(-50, 150, allow_nan=False, allow_infinity=False), min_size=2, max_size=12)


def _scipy_welch(a, b, level=0.95):
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(confidence_level=level)
    return r.statistic, r.pvalue, r.df, ci.low, ci.high


def test_welch_matches_scipy_on_the_pilots_c101_cells():
    cl, rnd = [19.5, 18.2, 19.0], [18.4, 13.3, 14.2]  # elr sym 0.8, table1_cpu.json
    w = seedstats.welch(cl, rnd)
    t, p, df, lo, hi = _scipy_welch(cl, rnd)
    assert (w.t, w.p, w.df, w.lo, w.hi) == pytest.approx((t, p, df, lo, hi), rel=1e-10)
    assert w.diff == pytest.approx(np.mean(cl) - np.mean(rnd)) and w.n_a == w.n_b == 3
    # the old rule's "2.2 standard errors" is a p of 0.143 at its 2.2 Welch df
    assert w.t == pytest.approx(2.227, abs=1e-3) and w.df == pytest.approx(2.231, abs=1e-3) and 0.1 < w.p < 0.2


@given(samples, samples, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_welch_t_df_p_and_interval_match_scipy(a, b, level):
    a, b = np.round(a, 1), np.round(b, 1)  # accuracies in the evidence have one decimal
    assume(np.std(a) > 1e-6 or np.std(b) > 1e-6)
    w = seedstats.welch(a, b, level=level)
    t, p, df, lo, hi = _scipy_welch(a, b, level)
    assert w.t == pytest.approx(t, rel=1e-8, abs=1e-9) and w.df == pytest.approx(df, rel=1e-8)
    assert w.p == pytest.approx(p, rel=1e-6, abs=1e-12)
    assert (w.lo, w.hi) == pytest.approx((lo, hi), rel=1e-8, abs=1e-8)
    assert w.lo <= w.diff <= w.hi
    # the interval excludes 0 exactly when the test rejects at 1 - level
    if abs(w.p - (1 - level)) > 1e-9:
        assert (w.lo > 0 or w.hi < 0) == (w.p < 1 - level)


def test_welch_degenerate_and_bad_input():
    w = seedstats.welch([10.0, 10.0], [8.0, 8.0, 8.0])
    assert w.se == 0 and w.p == 0 and w.lo == w.hi == pytest.approx(2.0) and w.t == math.inf
    assert seedstats.welch([5.0, 5.0], [5.0, 5.0]).p == 1.0
    with pytest.raises(ValueError, match="b needs at least 2 values"):
        seedstats.welch([1.0, 2.0], [3.0])
    with pytest.raises(ValueError, match="level must be in"):
        seedstats.welch([1.0, 2.0], [3.0, 4.0], level=95)


def _holm_loop(p):
    """Holm's adjusted p written out: walk the p-values from the smallest, multiply the k-th smallest by
    (m - k + 1), cap at 1, and never let an adjusted value fall below the one before it."""
    m = len(p)
    ranked = sorted(range(m), key=lambda i: (p[i], i))
    out, running = [0.0] * m, 0.0
    for k, i in enumerate(ranked, start=1):
        running = max(running, min(1.0, (m - k + 1) * p[i]))
        out[i] = running
    return out


def _holm_rejects(p, alpha):
    """Holm's step-down procedure itself: reject the smallest p while p_(k) <= alpha / (m - k + 1)."""
    m = len(p)
    rejected = set()
    for k, i in enumerate(sorted(range(m), key=lambda i: p[i]), start=1):
        if p[i] > alpha / (m - k + 1):
            break
        rejected.add(i)
    return rejected


def test_holm_on_a_worked_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    assert seedstats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert seedstats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="values in"):
        seedstats.holm([0.1, 1.5])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.floats(0.001, 0.2))
def test_holm_matches_the_loop_and_the_step_down_procedure(p, alpha):
    adj = seedstats.holm(p)
    assert adj == pytest.approx(_holm_loop(p), rel=1e-12, abs=1e-15)
    assert np.all(adj >= np.asarray(p) - 1e-15) and np.all(adj <= 1.0)
    m = len(p)
    assume(all(abs(q * (m - k) - alpha) > 1e-9 for q in p for k in range(m)))  # no tie with the boundary
    assert {i for i, a in enumerate(adj) if a <= alpha} == _holm_rejects(p, alpha)


def test_welch_power_matches_scipys_noncentral_t_and_a_simulation():
    diff, sa, sb, n, alpha = 2.0, 1.0, 2.0, 5, 0.05
    va, vb = sa**2 / n, sb**2 / n
    df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / (n - 1))
    crit, nc = stats.t.ppf(1 - alpha / 2, df), diff / math.sqrt(va + vb)
    expected = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    got = seedstats.welch_power(diff, sa, sb, n, alpha=alpha)
    assert got == pytest.approx(expected, rel=1e-8)
    # the approximation against the rejection rate of the Welch test itself, 20,000 simulated pairs of cells
    # (binomial SE of the rate <= 0.0035; the tolerance 0.02 is ~6 of them, room for the approximation)
    rng = np.random.default_rng(0)
    a = rng.normal(diff, sa, (20_000, n))
    b = rng.normal(0.0, sb, (20_000, n))
    rate = float(np.mean(stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue <= alpha))
    assert got == pytest.approx(rate, abs=0.02)
    assert seedstats.welch_power(0.0, sa, sb, n, alpha=alpha) == pytest.approx(alpha, rel=1e-6)


@given(st.floats(0.5, 10), st.floats(0.2, 5), st.floats(0.2, 5), st.sampled_from([0.05, 0.05 / 9]))
def test_seeds_needed_is_the_first_n_with_enough_power(diff, sa, sb, alpha):
    n = seedstats.seeds_needed(diff, sa, sb, alpha=alpha, power=0.8, n_max=400)
    assume(n is not None)
    assert seedstats.welch_power(diff, sa, sb, n, alpha=alpha) >= 0.8
    if n > 2:
        assert seedstats.welch_power(diff, sa, sb, n - 1, alpha=alpha) < 0.8
    assert seedstats.seeds_needed(-diff, sa, sb, alpha=alpha, n_max=400) == n  # two-sided: symmetric
    # a stricter level never needs fewer seeds
    assert (seedstats.seeds_needed(diff, sa, sb, alpha=alpha / 10, n_max=4000) or 10**9) >= n


def test_seeds_needed_bad_input_and_no_difference():
    assert seedstats.seeds_needed(0.0, 1.0, 1.0) is None
    assert seedstats.seeds_needed(0.01, 3.0, 3.0, n_max=50) is None
    # scipy's nctdtr is nan deep in the lower tail (nc = 12 here): the power is still a number
    assert 0.999 < seedstats.welch_power(3.0, 0.5, 0.25, 5) <= 1.0
    with pytest.raises(ValueError, match="power must be in"):
        seedstats.seeds_needed(1.0, 1.0, 1.0, power=1.0)
    with pytest.raises(ValueError, match="n_a and n_b must be >= 2"):
        seedstats.welch_power(1.0, 1.0, 1.0, 1)


def test_detectable_difference_is_the_difference_with_that_power():
    d = seedstats.detectable_difference(0.66, 1.04, 15, alpha=0.05 / 9)
    assert seedstats.welch_power(d, 0.66, 1.04, 15, alpha=0.05 / 9) == pytest.approx(0.8, abs=1e-9)
    assert seedstats.seeds_needed(d * 1.001, 0.66, 1.04, alpha=0.05 / 9) <= 15
    assert seedstats.detectable_difference(0.66, 1.04, 30, alpha=0.05 / 9) < d
