"""Property tests of the Theorem 4.3 claims (C1-C6, C10-C11, C13-C14, C16) on drawn graphs.

Each explicit bound of Appendices A and B must hold on every graph the generator can make,
evaluated at that graph's realized delta and xi. Hypothesis draws sizes, delta, xi and seeds.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.checks import thm43
from theory import bounds, tolerances
from theory.graph import partition

ATOL = tolerances.eig_atol("float64")
RTOL = tolerances.bound_rtol("float64")

sizes_st = st.lists(st.integers(3, 14), min_size=2, max_size=5)


def _measure(sizes, delta, xi, seed):
    part = partition(sizes, n_classes=2)
    return thm43.measure_dense(part, delta, xi, seed, min(2 * part.n_sub, part.n - 1))


@settings(max_examples=20)
@given(sizes=sizes_st, delta=st.floats(0, 0.9), seed=st.integers(0, 2**31 - 1))
def test_appendix_a_bounds_hold_at_xi_zero(sizes, delta, seed):
    pt = _measure(sizes, delta, 0.0, seed)
    d = pt["delta_r"]
    assert d <= delta + 1e-12
    assert pt["top_err"] <= ATOL  # C1, Lemma A.2
    assert max(pt["col_ratio"]) <= bounds.column_ratio_bound(d) * (1 + RTOL)  # C2, Lemma A.1
    assert max(pt["perron_ratio"]) <= bounds.perron_ratio_bound(d) * (1 + RTOL)  # C3, Minc
    assert np.all(np.asarray(pt["l1_sq"]) >= bounds.perron_l1_sq_lower(pt["sizes"], d) * (1 - RTOL))  # C4
    assert np.all(np.asarray(pt["eig_sq_sum"]) <= bounds.block_eig_sq_sum_upper(pt["sizes"], d) * (1 + RTOL))  # C5
    assert np.all(np.asarray(pt["eig2"]) <= bounds.block_eig_upper(pt["sizes"], d) + ATOL)  # C6
    assert abs(pt["align_tilde"] - pt["l1_sq_sum"]) <= ATOL * pt["n"]  # C10, the alignment identity
    assert pt["align"] >= bounds.alignment_lower_exact(pt["sizes"], d) - ATOL  # C11 via Lemma A.3


@settings(max_examples=20)
@given(size=st.integers(4, 14), n_sub=st.integers(2, 6), delta=st.floats(0, 0.5),
       xi=st.floats(1e-5, 0.05), seed=st.integers(0, 2**31 - 1))
def test_appendix_b_explicit_bounds_hold_for_xi_positive(size, n_sub, delta, xi, seed):
    pt = _measure([size] * n_sub, delta, xi, seed)
    x = pt["xi_r"]
    assert 0 < x <= xi + 1e-12
    assert pt["h_ratio"] <= x * (1 + RTOL)  # C13: h_ij <= xi / sqrt(n_i n_j)
    assert pt["H_fro"] <= bounds.offblock_fro_upper(n_sub, x) * (1 + RTOL)  # C14
    assert pt["top_max"] <= 1 + ATOL  # C16: lambda~_i <= 1
    assert pt["top_min"] >= 1 - pt["E_2"] - ATOL  # C16: Weyl
    assert pt["eigvals"][0] >= 1 - ATOL  # A-tilde is itself a normalized adjacency: lambda_1 = 1


def test_judge_turns_a_violated_bound_into_a_fail_row():
    """A sweep where the measured sums exceed Cor. A.6's leading term at small delta fails C9."""
    pts = []
    for d in (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
        pts.append(_measure([8, 8, 8], d, 0.0, 0))
    for pt in pts:  # a measurement of lower order than claimed: leading term + 50 delta'^0.25
        pt["tail_sum"] = float(bounds.cor_a6_global_leading(pt["p"], pt["n_sub"], pt["delta_r"])
                               + 50 * bounds.delta_prime(pt["delta_r"]) ** 0.25)
        pt["partition"] = "test"
    sweeps = {"delta": pts, "xi": [], "path": [], "nsub": []}
    rows = thm43.judge(sweeps, None)
    c9 = [r for r in rows if r.claim == "C9"]
    assert c9 and c9[0].verdict == "FAIL"
    assert [r for r in rows if r.claim == "C7"][0].verdict == "PASS"
