"""Numerical tolerances, in one place, with the reason beside each.

They absorb floating-point round-off only. A bound that fails by more than these is
a finding, reported as FAIL; these numbers are never widened to turn a row green.
"""

from __future__ import annotations

# Dense symmetric eigensolvers (LAPACK syevd via jnp.linalg.eigh) are backward stable:
# eigenvalue errors are about n * eps * ||A||_2. For a normalized adjacency ||A||_2 = 1
# and n <= 5,000 in float64 that is < 1e-12; 1e-10 leaves two orders of margin.
EIG_ATOL = {"float64": 1e-10, "float32": 1e-4}

# Comparing a computed quantity with a closed-form bound evaluated in the same precision:
# relative round-off of sums of O(n) terms, n <= 20,000, in float64.
BOUND_RTOL = {"float64": 1e-9, "float32": 1e-4}

# Lanczos (ARPACK) against dense eigh on the same matrix: the acceptance level.
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

# The order test of O(.) claims (theory.bounds.loglog_order, experiments.claims.order_row).
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
