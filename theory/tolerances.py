"""Numerical tolerances, in one place, with the reason beside each.

They absorb floating-point round-off, the rounding of the paper's printed numbers and
Monte-Carlo error, or read a word of the paper ("similar", ">>") as a number; each was fixed
before the runs it judges. A bound that fails by more than these is a finding, reported as FAIL;
these numbers are never widened to turn a row green. (A claim's own threshold, stated once in
the claim, stays beside it in its check module.)
"""

from __future__ import annotations

# Dense symmetric eigensolvers (LAPACK syevd via jnp.linalg.eigh) are backward stable:
# eigenvalue errors are about n * eps * ||A||_2. For a normalized adjacency ||A||_2 = 1
# and n <= 5,000 in float64 that is < 1e-12; 1e-10 leaves two orders of margin.
EIG_ATOL = {"float64": 1e-10, "float32": 1e-4}

# Comparing a computed quantity with a closed-form bound evaluated in the same precision:
# relative round-off of sums of O(n) terms, n <= 20,000, in float64.
BOUND_RTOL = {"float64": 1e-9, "float32": 1e-4}

# Lanczos (ARPACK) against dense eigh on the same matrix: the agreement the `large` preset's solver check requires.
LANCZOS_VS_DENSE = 1e-8

# ARPACK convergence tolerance for the matrix-free path (relative accuracy of the Ritz values).
# 1e-10 keeps the eigenvalues within LANCZOS_VS_DENSE of dense eigh with two orders of margin
# (measured: 2.7e-14 at n = 3,000) and costs ~20% less than 1e-12 at n = 20,000.
LANCZOS_TOL = 1e-10


# Eigenvalues closer than this form one cluster for theory.representation.canonical_basis.
# True repeats (the top K-bar eigenvalues 1 of A-bar, Lemma A.2) come out of a backward-stable
# solver within n eps ||A|| < 1e-12 of each other; distinct eigenvalues closer than 1e-9 have
# eigenvectors determined only to about eps / gap = 1e-7 anyway, so merging them costs nothing.
EIG_CLUSTER = 1e-9


# A realized delta or xi (theory.graph.measure_delta / measure_xi) against the requested one: the meters
# form max / min - 1 of entries like 1 + delta * u, and each rounding of such an O(1) number costs up to
# eps = 2.2e-16 absolutely (1.1 - 1 = 0.10000000000000009 > 0.1), a few roundings < 1e-15. A relative
# tolerance cannot absorb it at tiny delta (delta = 1e-10: the error is ~1e-7 relative).
METER_ATOL = 1e-15


def eig_atol(dtype) -> float:
    return EIG_ATOL[str(dtype)]


def bound_rtol(dtype) -> float:
    return BOUND_RTOL[str(dtype)]

# The order test of O(.) claims (theory.bounds.loglog_order, experiments.ledger.claims.order_row).
# A claim y = O(x^q) as x -> 0 FAILs when q lies above the bootstrap interval of the fitted
# log-log slope by more than ORDER_SLACK. Power: over ORDER_MIN_DECADES = 2 decades of x a term of order q - 1/2 changes
# y by 10x relative to x^q, which moves the fitted slope by about 0.3 or more, while seed-to-seed
# scatter of the sweeps here moves it by < 0.05 (the interval's half-width on the real sweeps).
ORDER_MIN_DECADES = 2.0
# How far below the interval (x -> 0) the claimed order may lie before the test FAILs. A quantity
# of exactly the claimed order bends before its asymptote (its hidden constant converges, e.g.
# ||E||_F = c xi (1 - O(xi))): on the real sweeps such rows fit slopes 0.988-0.998 for a claimed 1
# with intervals only 0.01 wide, so with no slack they would FAIL although the claim holds. A
# slack of 0.1 allows the constant to grow 10^0.2 = 1.6x over two decades; a term half an order
# lower than claimed, sized like the measured quantity at the top of the sweep, lowers the
# fitted slope by >= 0.3 over two decades and still FAILs (tests/test_mutations_thm43.py).
ORDER_SLACK = 0.1
# Two-sided level of the bootstrap interval: the test rejects a claim that holds with
# probability about (1 - ORDER_LEVEL) / 2 = 2.5% when the measured order equals the claimed one.
ORDER_LEVEL = 0.95
# Bootstrap resamples: the percentile error of 2000 resamples at the 2.5% tail is about
# sqrt(0.025 * 0.975 / 2000) = 0.35% in probability, negligible beside the level.
ORDER_BOOT = 2000

# Singular values of features computed in float32 (``clspec spectrum``, the pre-training monitor):
# the prominent-count rule ignores those below this fraction of s_1. float32 rounding perturbs the
# singular values by about eps32 ||F||_F <= 6e-8 sqrt(d) s_1 (5e-7 s_1 at d = 64); 1e-5 leaves a
# margin. Below it a "gap" is to round-off (e.g. the dead ReLU units of a projection head), not to a
# small part of the spectrum.
FLOAT32_FLOOR = 1e-5


# Identities evaluated two ways in float64 on n <= 1000 points (sums of O(n p) products of O(1)
# numbers): n p eps is about 1e-11; 1e-9 leaves margin.
ROUNDOFF = 1e-9
# Eq. 7-8's minimum f_min against the loss evaluated at F_min (C19), relative to |f_min|: a sum of
# n^2 terms in float64, n <= 640, carries a relative error of about n^2 eps = 1e-11; 1e-10 leaves margin.
LOSS_RTOL = 1e-10
# loss(f_min + e) - loss(f_min) >= 0 (C20), relative to |f_min|: the difference of two evaluations of
# the same O(|f_min|) sum, each rounded at about 1e-14 |f_min| (a minimizer's excess is second order
# in e, so round-off of the two evaluations, not the excess, sets the floor); 1e-12 leaves margin.
EXCESS_RTOL = 1e-12
# ||Pi_I(y)||^2 + ||Pi_N(y)||^2 = n (C95) for float64 projections on float64 Lanczos vectors:
# round-off is about 1e-14 n; 1e-9 (relative) leaves margin.
SUM_RTOL = 1e-9

# Monte-Carlo bands: |MC mean - expected| <= MC_C * s / sqrt(samples), s the sample std of one
# estimate (C30, C62, C63, and the tests of theory/training.py). MC_C = 4 is a 4-sigma band of the
# CLT: a correct identity fails it with probability about 6e-5 per setting.
MC_C = 4.0

# The paper's words as numbers. "beta >> s" (Theorems 4.4-4.5; C36, C37-C41) is read as
# beta >= REGIME s, and "s << beta << 1" as REGIME s <= beta <= 1 / REGIME.
REGIME = 10.0
# "Similar or higher" alignment (C54, C56, C91): at most ALIGN_SLACK (of ||y||^2, or of the alignment
# in [0, 1]) lower.
ALIGN_SLACK = 0.05

# The paper's printed numbers (checks/tables.py, C70-C79), rounded to the digits printed:
# a mean of three gains, each the difference of two Table 1 cells rounded to 0.05: error <= 0.1;
TABLE_GAIN_MEAN = 0.1
# a mean of two Table 3 top-1 gains, cells rounded to 0.005: error <= 0.01;
TABLE_TOP1_GAIN_MEAN = 0.01
# ||Pi_I||^2 + ||Pi_N||^2 of Table 4, norms of about 30 rounded to 5e-4: error <= 2 * 30 * 5e-4 = 0.03
# per term, 0.04 for the sum;
TABLE4_SUM_SQ = 0.04
# a difference of two Table 4 cells rounded to 5e-4: error <= 1e-3.
TABLE4_DIFF = 1e-3
