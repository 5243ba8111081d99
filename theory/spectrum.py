"""The theory's quantities on any representation matrix F (n x d): spectrum, label alignment,
information/nuisance split, and the label-free rank measures used on real networks.

Theorem 4.3 says the contrastive representation has (i) K-bar prominent singular values and
much smaller remaining ones, (ii) a large alignment ``||V_I V_I^T Y||_F^2 / n`` (Eq. 25)
between the top singular vectors and the clean labels; Theorem 4.5 turns these into a
threshold on the noise rate below which the ridge head recovers every clean training label.
These functions measure (i), (ii) and the head on a given F, synthetic (``f_min`` of
:mod:`theory.representation`) or real (features of a trained encoder):

- :func:`singular_values` (``centred=False``: of F itself, as the theory's F;
  ``centred=True``: of F with its column means removed, i.e. PCA), :func:`prominent_count`
  (the largest log-gap rule), :func:`gap_ratio`;
- :func:`alignment_curve`: ``||V_k V_k^T Y||_F^2 / n`` for every k (Eq. 25's quantity, V_k
  the top-k left singular vectors);
- :func:`label_split`: ``||Pi_I y||`` and ``||Pi_N y||`` over the top-k left singular space
  and its complement in R^n (applied to the clean labels and to the noise ``Y_noisy - Y``);
- :func:`rankme` (Garrido et al. 2023, Eq. 1: uncentred singular values), :func:`rankme_pca`
  (the variant of the reptrix package: normalized eigenvalues of the covariance),
  :func:`effective_rank` (Roy and Vetterli 2007), :func:`participation_ratio`,
  :func:`alpha_req` (Agrawal et al. 2022: the power-law decay of the covariance spectrum, by
  weighted least squares in log-log space over a fit range scaled to the rank);
- :func:`flip_c_max` and :func:`recovery_threshold`: the realized ``c_max`` of a labelling and
  Theorem 4.5's ``1 / (1 + (n_max/n_min) c_max)`` with classes as the sub-classes;
- :func:`ridge_recovery`: the ridge head (Eq. 3, :func:`theory.head.ridge_head`) on noisy
  labels, scored against the clean labels on the training points.

Every function traces under ``jit``: shapes and Python arguments (k, eps, the fit range) are
static; only those are validated. :func:`theory.head.information_nuisance` computes the same
split as :func:`label_split` from an eigendecomposition of the n x n matrix ``F F^T``; this
module works from the thin SVD (``O(n d^2)``), so it runs on 50,000 CIFAR features.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory._types import Array, Labels, Representation
from theory.head import correct, ridge_head

# RankMe's epsilon (Garrido et al. 2023, Eq. 1; also reptrix's): keeps log p finite at p = 0.
RANKME_EPS = 1e-7

# prominent_count ignores gaps to singular values below this fraction of the largest: below it
# a "gap" is to the numerical null space (float64 SVD resolves sigma_i / sigma_1 down to ~1e-15;
# 1e-10 leaves a margin), not to a small but real part of the spectrum.
NULL_FRACTION = 1e-10


class PowerLaw(NamedTuple):
    """alpha-ReQ: ``lambda_i ~ c i^{-alpha}`` over ranks ``lo..hi`` (1-based, inclusive); ``r2``
    is the coefficient of determination of the fit in log space over the same ranks."""

    alpha: Array
    log_c: Array
    r2: Array
    lo: int
    hi: int


class LabelSplit(NamedTuple):
    """``||Pi_I y||^2`` (top-k left singular space of F), ``||Pi_N y||^2`` (its complement in R^n,
    computed as the residual ``||y - Pi_I y||^2``, not as a difference) and ``||y||^2``."""

    information_sq: Array
    nuisance_sq: Array
    total_sq: Array

    @property
    def information(self) -> Array:
        return jnp.sqrt(self.information_sq)

    @property
    def nuisance(self) -> Array:
        return jnp.sqrt(self.nuisance_sq)


def _check_F(F) -> tuple[int, int]:
    if F.ndim != 2 or F.shape[0] < 2 or F.shape[1] < 1:
        raise ValueError(f"F must be an (n, d) matrix with n >= 2, d >= 1, got shape {F.shape}")
    return F.shape


def _check_Y(F, Y):
    Y = jnp.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != F.shape[0]:
        raise ValueError(f"Y must have one row per row of F (n={F.shape[0]}), got shape {Y.shape}")
    return Y.astype(F.dtype)


def _check_k(k, r: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= r:
        raise ValueError(f"{name} must be an integer in [1, min(n, d)={r}], got {k!r}")
    return k


def centre(F: Representation) -> Representation:
    """F with its column means removed (the rows' mean feature subtracted)."""
    return F - jnp.mean(F, axis=0, keepdims=True)


# ----------------------------------------------------------------------------- spectrum


def singular_values(F: Representation, *, centred: bool = False) -> Array:
    """The ``min(n, d)`` singular values of F, descending (``centred=True``: of :func:`centre` (F)).

    The theory's F (Eqs. 7-8) is uncentred: the singular values of ``f_min`` are ``sqrt(lambda_i)``
    of A-bar. The centred ones are those PCA (and reptrix) uses.
    """
    _check_F(F)
    return _svals(centre(F) if centred else F)


@jax.jit
def _svals(F):
    return jnp.linalg.svd(F, compute_uv=False)


def prominent_count(sigma: Array, *, max_count: int | None = None, floor: float = NULL_FRACTION) -> Array:
    """The number of prominent singular values by the largest log-gap rule.

    ``argmax_i log(sigma_i / sigma_{i+1})`` over ``1 <= i <= max_count`` (default: all but the last)
    with ``sigma_{i+1} > floor * sigma_1`` (a gap into the numerical null space is not counted;
    ``floor`` defaults to :data:`NULL_FRACTION`, for float64 data; features computed in float32 need
    a larger one); the count is that i. For ``f_min`` with xi = 0 and small delta it is K-bar
    (Lemma A.2 / Corollary A.5: ``sigma_{K-bar} = 1``, ``sigma_{K-bar+1} = O(delta^{1/4})``).
    Returns 0 when no gap qualifies (rank <= 1).
    """
    r = sigma.shape[0]
    m = r - 1 if max_count is None else max_count
    if r < 2:
        raise ValueError(f"sigma must hold >= 2 singular values, got {r}")
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= r - 1:
        raise ValueError(f"max_count must be an integer in [1, {r - 1}], got {max_count!r}")
    return _prominent(sigma, m, float(floor))


@partial(jax.jit, static_argnums=(1, 2))
def _prominent(sigma, m, floor):
    top = sigma[:m]
    nxt = sigma[1 : m + 1]
    ok = nxt > floor * sigma[0]
    gap = jnp.where(ok, jnp.log(jnp.where(top > 0, top, 1.0)) - jnp.log(jnp.where(ok, nxt, 1.0)), -jnp.inf)
    return jnp.where(jnp.any(ok), jnp.argmax(gap) + 1, 0)


def gap_ratio(sigma: Array, k: int) -> Array:
    """``sigma_k / sigma_{k+1}`` (1-based k); inf when ``sigma_{k+1} = 0``."""
    _check_k(k, sigma.shape[0] - 1, "k")
    return sigma[k - 1] / sigma[k]


# ----------------------------------------------------------------------------- labels


class Basis(NamedTuple):
    """The thin SVD ``F = U diag(s) Vt``: U (n, r) left singular vectors, s (r,) descending,
    Vt (r, d), r = min(n, d). Every label quantity below is a function of it; compute it once
    with :func:`basis` and pass it wherever an F is accepted."""

    U: Array
    s: Array
    Vt: Array


# basis(method="gram") drops directions with s_i below this fraction of s_1: the Gram matrix's
# eigenvalues carry an absolute error of about eps * s_1^2, so s_i < sqrt(eps) s_1 ~ 1.5e-8 s_1
# (float64) is not resolved; 1e-7 leaves a margin. Those directions count as F's null space.
GRAM_FLOOR = 1e-7


def basis(F: Representation, *, method: str = "svd") -> Basis:
    """The thin SVD of F (see :class:`Basis`).

    ``method="svd"``: LAPACK's SVD of F (accurate to round-off for every singular value).
    ``method="gram"``: the eigendecomposition of the smaller Gram matrix (``F^T F`` or ``F F^T``),
    then ``U = F V / s``. Several times faster for wide F (raw pixels, d = 3072; measured 1500 x 1000:
    SVD 32 s, Gram 9-19 s on 2 shared cores) and as accurate for singular values above
    ``GRAM_FLOOR * s_1``; smaller ones are returned as 0 with zero singular vectors.
    """
    if isinstance(F, Basis):
        return F
    _check_F(F)
    if method == "svd":
        return Basis(*_svd(F))
    if method == "gram":
        return Basis(*_gram_basis(F))
    raise ValueError(f"method must be 'svd' or 'gram', got {method!r}")


@jax.jit
def _svd(F):
    return jnp.linalg.svd(F, full_matrices=False)


@jax.jit
def _gram_basis(F):
    n, d = F.shape
    wide = n < d
    G = F @ F.T if wide else F.T @ F
    lam, Q = jnp.linalg.eigh(G)
    lam, Q = lam[::-1], Q[:, ::-1]
    s = jnp.sqrt(jnp.maximum(lam, 0.0))
    keep = s > GRAM_FLOOR * s[0]
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    s = jnp.where(keep, s, 0.0)
    if wide:  # Q are the left singular vectors
        U = Q * keep[None, :]
        Vt = inv[:, None] * (U.T @ F)
    else:  # Q are the right singular vectors
        U = (F @ Q) * inv[None, :]
        Vt = (Q * keep[None, :]).T
    return U, s, Vt


def label_energy(F: Representation | Basis, Y) -> Array:
    """``e_i = sum_j (u_i^T y_j)^2`` for the ``min(n, d)`` left singular vectors u_i of F (descending
    singular values), so that ``sum_{i<=k} e_i = ||V_k V_k^T Y||_F^2``."""
    B = basis(F)
    return _energy(B.U, _check_Y(B.U, Y))


@jax.jit
def _energy(U, Y):
    return jnp.sum((U.T @ Y) ** 2, axis=1)


def alignment_curve(F: Representation | Basis, Y) -> Array:
    """``A(k) = ||V_k V_k^T Y||_F^2 / n`` for ``k = 1..min(n, d)`` (entry k-1): Eq. 25's quantity,
    with V_k the top-k left singular vectors of F. For one-hot Y, ``||Y||_F^2 = n``, so A(k) is
    the normalized projection of Theorem 4.3 and ``A(K-bar) -> 1`` on ``f_min`` as delta -> 0."""
    B = basis(F)
    return jnp.cumsum(label_energy(B, Y)) / B.U.shape[0]


def label_split(F: Representation | Basis, y, k: int) -> LabelSplit:
    """``Pi_I y`` onto the top-k left singular space of F (information) and ``Pi_N y = y - Pi_I y``
    (nuisance: the remaining singular directions and F's null space in R^n), in Frobenius norm
    over the columns of y (Oymak et al. 2019; the paper's App. C, Table 4)."""
    B = basis(F)
    k = _check_k(k, B.s.shape[0])
    return LabelSplit(*_split(B.U, _check_Y(B.U, y), k))


@partial(jax.jit, static_argnums=2)
def _split(U, Y, k):
    Uk = U[:, :k]
    proj = Uk @ (Uk.T @ Y)
    return jnp.sum(proj**2), jnp.sum((Y - proj) ** 2), jnp.sum(Y**2)


# ----------------------------------------------------------------------------- label-free ranks


def _entropy_exp(p):
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


@partial(jax.jit, static_argnames=("eps",))
def rankme(sigma: Array, *, eps: float = RANKME_EPS) -> Array:
    """RankMe (Garrido et al. 2023, Eq. 1): ``exp(-sum_k p_k log p_k)`` with
    ``p_k = sigma_k / ||sigma||_1 + eps``, over the *uncentred* singular values of the embeddings."""
    return _entropy_exp(sigma / jnp.sum(jnp.abs(sigma)) + eps)


@partial(jax.jit, static_argnames=("eps",))
def rankme_pca(sigma_centred: Array, *, eps: float = RANKME_EPS) -> Array:
    """The RankMe of the reptrix package: the same entropy over ``p_k = lambda_k / sum lambda + eps``,
    ``lambda_k = sigma_k^2`` the eigenvalues of the covariance (PCA explained-variance ratios) of
    the *centred* features. Pass ``singular_values(F, centred=True)``."""
    lam = sigma_centred**2
    return _entropy_exp(lam / jnp.sum(lam) + eps)


@jax.jit
def effective_rank(sigma: Array) -> Array:
    """Effective rank (Roy and Vetterli 2007): ``exp(H(p))``, ``p_k = sigma_k / ||sigma||_1``
    (RankMe with eps = 0); between 1 and the number of non-zero singular values."""
    return _entropy_exp(sigma / jnp.sum(jnp.abs(sigma)))


@jax.jit
def participation_ratio(sigma: Array) -> Array:
    """``(sum lambda)^2 / sum lambda^2`` with ``lambda = sigma^2``: the number of equal eigenvalues
    with the same first two moments."""
    lam = sigma**2
    return jnp.sum(lam) ** 2 / jnp.sum(lam**2)


def fit_range(r: int) -> tuple[int, int]:
    """alpha-ReQ's fit range for a spectrum of r eigenvalues, scaled to r (1-based, inclusive):
    ranks ``lo = r // 32 + 2`` to ``hi = max(lo + 2, r // 2)``. It skips the top ~3% (the class
    directions the power law does not describe; reptrix skips the top 5 of 2048) and the lower half
    (round-off and finite-n effects). r = 64 (ResNet-32 features) gives ranks 4..32."""
    if isinstance(r, bool) or not isinstance(r, int) or r < 4:
        raise ValueError(f"alpha-ReQ needs a spectrum of >= 4 eigenvalues, got r={r!r}")
    lo = r // 32 + 2
    hi = min(r, max(lo + 2, r // 2))
    return lo, hi


def alpha_req(sigma_centred: Array, *, fit: tuple[int, int] | None = None) -> PowerLaw:
    """alpha-ReQ (Agrawal et al. 2022): the exponent alpha of ``lambda_i ~ c i^{-alpha}``, with
    ``lambda = sigma_centred^2`` the covariance eigenvalues normalized to sum 1.

    Weighted least squares of ``log lambda_i`` on ``(-log i, 1)`` with weights ``1/i`` over the
    ranks ``fit = (lo, hi)`` (1-based, inclusive; default :func:`fit_range`), as reptrix and
    Stringer et al. 2019 do. ``r2`` is ``1 - SS_res / SS_tot`` of the fitted line in log space
    over the fit range (unweighted). Exactly zero eigenvalues are clipped to the float64 tiny.
    """
    r = sigma_centred.shape[0]
    lo, hi = fit_range(r) if fit is None else fit
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo and lo + 2 <= hi <= r):
        raise ValueError(f"fit must be (lo, hi) with 1 <= lo, lo + 2 <= hi <= {r}, got {fit!r}")
    alpha, log_c, r2 = _alpha(sigma_centred, lo, hi)
    return PowerLaw(alpha, log_c, r2, lo, hi)


@partial(jax.jit, static_argnums=(1, 2))
def _alpha(sigma, lo, hi):
    lam = sigma**2
    lam = lam / jnp.sum(lam)
    y = jnp.log(jnp.maximum(lam[lo - 1 : hi], jnp.finfo(lam.dtype).tiny))
    i = jnp.arange(lo, hi + 1, dtype=lam.dtype)
    X = jnp.stack([-jnp.log(i), jnp.ones_like(i)], axis=1)
    w = 1.0 / i
    coef = jnp.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y))
    res = y - X @ coef
    r2 = 1.0 - jnp.sum(res**2) / jnp.sum((y - jnp.mean(y)) ** 2)
    return coef[0], coef[1], r2


# ----------------------------------------------------------------------------- the head (Thm 4.5)


def one_hot(labels, num_classes: int, dtype=jnp.float64) -> Labels:
    """(n,) class indices -> (n, K) one-hot label matrix."""
    return jax.nn.one_hot(jnp.asarray(labels), num_classes, dtype=dtype)


def flip_c_max(clean, noisy, num_classes: int) -> Array:
    """The realized ``c_max = max_{j, k != j} m_{j,k} / m_j`` of a labelling, with the classes as the
    sub-classes (Section 4: ``c_{k|kbar} = m_{kbar,k} / m_kbar``, m_j = mislabeled points of class j,
    m_{j,k} = those labeled k); over classes with ``m_j > 0``; 0 when nothing is flipped."""
    return _c_max(jnp.asarray(clean), jnp.asarray(noisy), num_classes)


@partial(jax.jit, static_argnums=2)
def _c_max(clean, noisy, K):
    counts = jnp.zeros((K, K)).at[clean, noisy].add(1.0)
    off = counts * (1.0 - jnp.eye(K))
    m = jnp.sum(off, axis=1)
    c = jnp.max(off, axis=1) / jnp.where(m > 0, m, 1.0)
    return jnp.max(jnp.where(m > 0, c, 0.0))


def recovery_threshold(c_max, n_max_over_n_min) -> Array:
    """Theorem 4.5 (Eq. 5) at delta = 0: every training label is recovered for
    ``alpha < 1 / (1 + (n_max / n_min) c_max)``."""
    return 1.0 / (1.0 + n_max_over_n_min * c_max)


def class_size_ratio(labels, num_classes: int) -> Array:
    """``n_max / n_min`` over the classes present in ``labels``."""
    return _size_ratio(jnp.asarray(labels), num_classes)


@partial(jax.jit, static_argnums=1)
def _size_ratio(labels, K):
    sizes = jnp.zeros(K).at[labels].add(1.0)
    present = sizes > 0
    return jnp.max(sizes) / jnp.min(jnp.where(present, sizes, jnp.inf))


class Recovery(NamedTuple):
    """The ridge head on noisy labels: ``clean`` the fraction of training points whose clean label
    strictly wins (Thm 4.5's event, point by point), ``noisy_fit`` the fraction of the mislabeled
    points predicted with their noisy label (NaN if none), and the head W."""

    clean: Array
    noisy_fit: Array
    W: Array


def ridge_recovery(F: Representation | Basis, clean, noisy, num_classes: int, beta: float) -> Recovery:
    """The ridge head ``W = (F^T F + beta I)^{-1} F^T Y-hat`` (Eq. 3) on the noisy one-hot labels,
    scored on the same training points against the clean and the noisy labels. With an F it
    calls :func:`theory.head.ridge_head`; with a :class:`Basis` it uses :func:`ridge_svd`."""
    Y_hat = one_hot(noisy, num_classes, jnp.float64)
    if isinstance(F, Basis):
        Z, W = ridge_svd(F, Y_hat, beta)
    else:
        _check_F(F)
        W = ridge_head(F, Y_hat.astype(F.dtype), beta)
        Z = F @ W
    clean, noisy = jnp.asarray(clean), jnp.asarray(noisy)
    flipped = clean != noisy
    hit_clean = correct(Z, clean)
    hit_noisy = correct(Z, noisy)
    n_flip = jnp.sum(flipped)
    fit = jnp.where(n_flip > 0, jnp.sum(hit_noisy & flipped) / jnp.maximum(n_flip, 1), jnp.nan)
    return Recovery(jnp.mean(hit_clean.astype(Z.dtype)), fit, W)


def ridge_svd(B: Basis, Y_hat, beta: float) -> tuple[Array, Array]:
    """The ridge head of Eq. 3 from the SVD: ``F W = U diag(b) U^T Y-hat`` with
    ``b_i = s_i^2 / (s_i^2 + beta)`` (Section 2's ``F* B F*^T Y-hat``) and
    ``W = Vt^T diag(s_i / (s_i^2 + beta)) U^T Y-hat``. Returns (training predictions, W). One SVD
    serves a whole beta path; ``beta = 0`` gives the least-squares head on F's column space."""
    beta = float(beta)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    return _ridge_svd(B, _check_Y(B.U, Y_hat), beta)


@jax.jit
def _ridge_svd(B, Y, beta):
    s = B.s
    den = s**2 + beta
    ok = den > 0
    b = jnp.where(ok, s**2 / jnp.where(ok, den, 1.0), 0.0)
    g = jnp.where(ok, s / jnp.where(ok, den, 1.0), 0.0)
    C = B.U.T @ Y
    return B.U @ (b[:, None] * C), B.Vt.T @ (g[:, None] * C)


def head_accuracy(F: Representation, W: Array, labels) -> Array:
    """Fraction of the rows of F whose label strictly wins under the head W (e.g. test accuracy)."""
    return jnp.mean(correct(F @ W, jnp.asarray(labels)).astype(F.dtype))


def scale_to_unit_top(F: Representation) -> Representation:
    """F / sigma_1(F): the largest singular value becomes 1, as for ``f_min`` (Lemma A.2). A ridge
    ``beta`` then means the same relative shrinkage ``b_i = lambda_i / (lambda_i + beta)`` on every
    representation compared (the real-data analogue of the Frobenius matching of C42/C43)."""
    return F / _svals(F)[0]


# ----------------------------------------------------------------------------- all at once


class Summary(NamedTuple):
    """The cheap spectral numbers of one representation (see :func:`spectral_summary`)."""

    sigma: Array
    sigma_centred: Array
    prominent: Array
    prominent_centred: Array
    gap_K: Array
    alignment_K: Array
    rankme: Array
    rankme_pca: Array
    effective_rank: Array


def spectral_summary(F: Representation, labels, num_classes: int, *, floor: float = NULL_FRACTION) -> Summary:
    """Singular values (both), prominent counts (both), ``sigma_K / sigma_{K+1}`` (uncentred),
    top-K alignment ``A(K)`` of the one-hot clean labels, RankMe (both variants) and the effective
    rank, for K = ``num_classes`` (<= min(n, d) - 1)."""
    n, d = _check_F(F)
    _check_k(num_classes, min(n, d) - 1, "num_classes")
    Y = one_hot(labels, num_classes, F.dtype)
    B = basis(F)
    s, sc = B.s, singular_values(F, centred=True)
    return Summary(
        sigma=s, sigma_centred=sc, prominent=prominent_count(s, floor=floor), prominent_centred=prominent_count(sc, floor=floor),
        gap_K=gap_ratio(s, num_classes), alignment_K=alignment_curve(B, Y)[num_classes - 1],
        rankme=rankme(s), rankme_pca=rankme_pca(sc), effective_rank=effective_rank(s),
    )
