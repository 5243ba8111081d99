"""Closed-form bounds of the paper, one function a statement, with the constants as printed.

Notation: ``delta`` and ``xi`` are the compactness and distinguishability levels of
Assumptions 4.1 and 4.2; ``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1); ``n_k`` the
size of a sub-class; ``n_sub`` = K-bar; ``p`` the representation dimension.

Where the paper states only an order, O(.), the function returns the explicit
leading term and the caller fits the hidden constant over a sweep
(:func:`hidden_constant`).
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------
# Sub-class structure: Theorem 4.3, Appendix A (xi = 0) and Appendix B (xi > 0)
# ----------------------------------------------------------------------------


def delta_prime(delta):
    """``delta' = (1 + delta)^{3/2} - 1`` (Lemma A.1): the column-entry ratio of a block of A-bar is <= 1 + delta'."""
    return (1.0 + np.asarray(delta, dtype=float)) ** 1.5 - 1.0


def column_ratio_bound(delta):
    """Lemma A.1: within one column of a block of A-bar, any two entries differ by a factor <= 1 + delta'."""
    return 1.0 + delta_prime(delta)


def perron_ratio_bound(delta):
    """Lemma A.3's tool (Minc 1970): max_i e_i / min_j e_j <= 1 + delta' for the Perron vector of a block."""
    return 1.0 + delta_prime(delta)


def perron_l1_sq_lower(n_k, delta):
    """Lemma A.3: ``||v_{k,1}||_1^2 >= n_k^2 / (1 + (n_k - 1)(1 + delta')^2)``."""
    dp = delta_prime(delta)
    n_k = np.asarray(n_k, dtype=float)
    return n_k**2 / (1.0 + (n_k - 1.0) * (1.0 + dp) ** 2)


def block_eig_sq_sum_upper(n_k, delta):
    """Lemma A.4: ``sum_i lambda_{k,i}^2 <= (1 + (n_k - 1)(1 + delta')^2)(1 + delta')^2 / n_k``."""
    dp = delta_prime(delta)
    n_k = np.asarray(n_k, dtype=float)
    return (1.0 + (n_k - 1.0) * (1.0 + dp) ** 2) * (1.0 + dp) ** 2 / n_k


def block_eig_upper(n_k, delta):
    """Corollary A.5: for i >= 2, ``lambda_{k,i} <= sqrt(Lemma A.4 bound - 1)`` = O(sqrt(delta'))."""
    return np.sqrt(np.maximum(block_eig_sq_sum_upper(n_k, delta) - 1.0, 0.0))


def eq12_leading(delta):
    """Eq. 12: ``sum_{i>=2} lambda_{k,i}^2 <= 4 delta' + O(delta'^2)``; returns ``4 delta'``."""
    return 4.0 * delta_prime(delta)


def cor_a6_block_leading(p_k, delta):
    """Corollary A.6, one block: ``sum_{i=2}^{p_k} lambda_{k,i} <= 2 sqrt(p_k - 1) sqrt(delta') + O(delta')``."""
    return 2.0 * np.sqrt(np.maximum(np.asarray(p_k, dtype=float) - 1.0, 0.0)) * np.sqrt(delta_prime(delta))


def cor_a6_global_leading(p, n_sub, delta):
    """Corollary A.6: ``sum_{i=Kbar+1}^{p} lambda_i <= 2 sqrt((p - Kbar) Kbar delta') + O(delta')``."""
    return 2.0 * np.sqrt(max(p - n_sub, 0) * n_sub * delta_prime(delta))


def alignment_lower_exact(sizes, delta):
    """Eq. 25 via Lemma A.3: ``||V_I V_I^T Y||_F^2 / n >= sum_k n_k^2 / (1 + (n_k - 1)(1 + delta')^2) / n``.

    Exact (no O-term): the alignment identity makes ``||V_I V_I^T Y||_F^2 = sum_k ||v_{k,1}||_1^2``.
    """
    sizes = np.asarray(sizes, dtype=float)
    return float(np.sum(perron_l1_sq_lower(sizes, delta)) / np.sum(sizes))


def alignment_lower_leading(sizes, delta):
    """Eq. 25 as printed: ``||V_I V_I^T Y||_F^2 / n >= 1 - (2/n) sum_k (n_k - 1) delta' - O(delta'^2)``."""
    sizes = np.asarray(sizes, dtype=float)
    return float(1.0 - 2.0 * np.sum(sizes - 1.0) * delta_prime(delta) / np.sum(sizes))


def offblock_entry_upper(n_i, n_j, xi):
    """Lemma B.1: an off-block entry of the normalized adjacency is ``<= xi / sqrt(n_i n_j)``
    (= K-bar xi / n for balanced sub-classes, as printed)."""
    return xi / np.sqrt(np.asarray(n_i, dtype=float) * np.asarray(n_j, dtype=float))


def offblock_fro_upper(n_sub, xi):
    """Lemma B.1: ``||H||_F <= sqrt(1 - 1/Kbar) Kbar xi`` (= xi sqrt(Kbar (Kbar - 1)), any sizes)."""
    return float(np.sqrt(1.0 - 1.0 / n_sub) * n_sub * xi)


def perturbation_scale(n_sub, xi):
    """Lemmas B.1/B.2: the order ``Kbar^{5/2} xi`` of ``||E||_F`` and of the top eigenvalues' drop."""
    return float(n_sub**2.5 * xi)


def alignment_drop_scale(n, n_sub, xi):
    """Lemma B.3: the order ``n Kbar^2 xi`` of the drop of ``||V_I V_I^T Y||_F^2`` when xi > 0."""
    return float(n * n_sub**2 * xi)


def hidden_constant(scale, excess, growth: float):
    """Fit the hidden constant of an O(scale) term over a sweep and say whether it stays bounded.

    ``c_k = max(excess_k, 0) / scale_k`` for each sweep point with ``scale_k > 0``. The
    constant "stays bounded as the small parameter -> 0" when the largest ``c`` over the
    smaller half of the scales is at most ``growth`` times the largest over the larger
    half. Returns ``(c_small, c_large, bounded)``: a term of a lower order than claimed
    makes ``c`` grow like a negative power of the scale and fails this.
    """
    scale = np.asarray(scale, dtype=float)
    excess = np.maximum(np.asarray(excess, dtype=float), 0.0)
    keep = scale > 0
    scale, excess = scale[keep], excess[keep]
    if scale.size < 2:
        raise ValueError(f"hidden_constant needs at least 2 sweep points with scale > 0, got {scale.size}")
    c = excess / scale
    order = np.argsort(scale)
    half = scale.size // 2
    small, large = c[order[:half]], c[order[half:]]
    c_small, c_large = float(small.max()), float(large.max())
    return c_small, c_large, bool(c_small <= growth * c_large + 1e-300)
