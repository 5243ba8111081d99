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


def eig_atol(dtype) -> float:
    return EIG_ATOL[str(dtype)]


def bound_rtol(dtype) -> float:
    return BOUND_RTOL[str(dtype)]

# Hidden constants of O(.) terms (theory.bounds.hidden_constant): the constant fitted on
# the smaller half of a sweep may be at most this multiple of the one on the larger half.
# Sweeps span at least a decade of the small parameter, so a term of one order lower than
# claimed grows the constant by >= 10x and fails; sampling noise between seeds stays well
# under 2x.
HIDDEN_CONSTANT_GROWTH = 2.0
