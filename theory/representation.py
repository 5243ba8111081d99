"""The optimal representation of the spectral contrastive loss (Eqs. 7-8) and its spectrum.

``F_min = F* Sigma R``: the top-p unit eigenvectors of the normalized adjacency
``A-bar = D^{-1/2} W D^{-1/2}``, scaled by ``sqrt(max(lambda, 0))`` (Eckart-Young for
the PSD product ``F F^T``: negative eigenvalues contribute nothing), up to an
orthogonal ``R``. Its singular values are ``sqrt(max(lambda_i, 0))`` and its left
singular vectors the eigenvectors ``v_i``.

Eigenpairs come from dense ``eigh`` for small n and from Lanczos (ARPACK through
``scipy.sparse.linalg.eigsh``, with a matrix-free JAX product) for large n or for a
:class:`theory.graph.StructuredGraph`; :func:`top_eigh` chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse.linalg as spla

from theory import tolerances
from theory._types import Array, Eigvals, Eigvecs, Labels, Representation, Weights
from theory.graph import Partition, StructuredGraph

# Above this many points, top_eigh(method="auto") uses Lanczos instead of dense eigh.
DENSE_MAX_N = 4000


class LinearOp(NamedTuple):
    """A symmetric n x n operator given by its product with an (n, b) block."""

    matmat: Callable[[Array], Array]
    n: int
    dtype: jnp.dtype


def normalized_adjacency(W: Weights) -> Weights:
    """``A-bar = D^{-1/2} W D^{-1/2}`` with ``D = diag(W 1)`` (Section 4)."""
    d = jnp.sum(W, axis=1)
    s = 1.0 / jnp.sqrt(d)
    return s[:, None] * W * s[None, :]


def block_normalized_adjacency(W: Weights, part: Partition) -> Weights:
    """App. B's ``A-bar`` for xi > 0: each diagonal block normalized by its own degrees,
    the off-diagonal blocks dropped. Its top K-bar eigenvalues are exactly 1."""
    same = jnp.asarray(part.sub_of_point[:, None] == part.sub_of_point[None, :])
    return normalized_adjacency(jnp.where(same, W, 0.0))


class BlockPerturbation(NamedTuple):
    """Lemma B.1's perturbation ``E = A-tilde - A-bar`` of the block-normalized matrix.

    ``E_fro`` = ``||E||_F``; ``H_fro`` = ``||H||_F`` of its off-block part; ``h_ratio`` =
    ``max_ij h_ij sqrt(n_i n_j)`` over off-block entries (Lemma B.1: ``<= xi``).
    """

    E_fro: Array
    H_fro: Array
    h_ratio: Array


def block_perturbation(W: Weights, part: Partition) -> BlockPerturbation:
    """The norms of Lemma B.1's ``E = A-tilde - A-bar`` and of its off-block part ``H``."""
    At = normalized_adjacency(W)
    E = At - block_normalized_adjacency(W, part)
    same = jnp.asarray(part.sub_of_point[:, None] == part.sub_of_point[None, :])
    H = jnp.where(same, 0.0, At)
    sizes = jnp.asarray(np.asarray(part.sizes, dtype=float)[part.sub_of_point], dtype=At.dtype)
    h_ratio = jnp.max(H * jnp.sqrt(sizes[:, None] * sizes[None, :]))
    return BlockPerturbation(jnp.linalg.norm(E), jnp.linalg.norm(H), h_ratio)


def sym_norm2(E: Array) -> Array:
    """Spectral norm ``||E||_2`` of a symmetric matrix: its largest absolute eigenvalue."""
    return jnp.max(jnp.abs(jnp.linalg.eigvalsh(E)))


def normalized_operator(graph: StructuredGraph, *, within_only: bool = False) -> LinearOp:
    """``A-bar`` of a structured graph as a matrix-free operator.

    ``within_only=True`` gives the block-normalized matrix of Appendix B (cross
    weights dropped before normalizing).
    """
    if within_only:
        graph = graph._replace(xi=0.0)
    s = 1.0 / jnp.sqrt(graph.degrees())

    def matmat(x):
        sx = s[:, None] * x if x.ndim == 2 else s * x
        y = graph.matmat(sx)
        return s[:, None] * y if y.ndim == 2 else s * y

    return LinearOp(jax.jit(matmat), graph.n, graph.blocks.dtype)


def _as_operator(A) -> LinearOp:
    if isinstance(A, LinearOp):
        return A
    A = jnp.asarray(A)
    return LinearOp(jax.jit(lambda x: A @ x), A.shape[0], A.dtype)


def top_eigh(A, p: int, *, method: str = "auto", tol: float = tolerances.LANCZOS_TOL, seed: int = 0):
    """The p largest eigenvalues (descending) and their unit eigenvectors of a symmetric A.

    Args:
      A: a dense symmetric array, or a :class:`LinearOp`.
      p: how many eigenpairs.
      method: ``"dense"`` (eigh), ``"lanczos"`` (ARPACK, matrix-free), or ``"auto"``:
        dense for arrays with n <= ``DENSE_MAX_N``, Lanczos otherwise.
      tol: Lanczos relative tolerance.
      seed: seeds Lanczos's start vector, so results are reproducible.
    """
    n = A.n if isinstance(A, LinearOp) else np.shape(A)[0]
    if not 1 <= p <= n:
        raise ValueError(f"p must be in [1, n={n}], got {p}")
    if method == "auto":
        method = "dense" if (not isinstance(A, LinearOp) and n <= DENSE_MAX_N) else "lanczos"
    if method == "dense":
        if isinstance(A, LinearOp):
            A = A.matmat(jnp.eye(n, dtype=A.dtype))
        # LAPACK's syevr through scipy computes only the p wanted pairs; on the CPU it is several
        # times faster than jnp.linalg.eigh, which computes all n.
        lam, V = scipy.linalg.eigh(np.asarray(A), subset_by_index=[n - p, n - 1], driver="evr")
        return jnp.asarray(lam[::-1]), jnp.asarray(V[:, ::-1])
    if method != "lanczos":
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")
    op = _as_operator(A)
    if p >= n - 1:
        raise ValueError(f"Lanczos needs p < n - 1 (p={p}, n={n}); use method='dense'")
    dtype = np.dtype(op.dtype)

    def mv(x):
        return np.asarray(op.matmat(jnp.asarray(x.reshape(n, -1), dtype=op.dtype)), dtype=dtype).reshape(x.shape)

    lin = spla.LinearOperator((n, n), matvec=mv, matmat=mv, dtype=dtype)
    v0 = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    ncv = min(n, max(2 * p + 1, p + 64))
    lam, V = spla.eigsh(lin, k=p, which="LA", tol=tol, v0=v0, ncv=ncv)
    order = np.argsort(lam)[::-1]
    return jnp.asarray(lam[order]), jnp.asarray(V[:, order])


class Spectral(NamedTuple):
    """The optimal representation and its spectrum.

    ``F`` (n, p) = ``V diag(sqrt(max(lambda, 0)))``; ``eigvals`` the top-p eigenvalues
    of A-bar (descending); ``eigvecs`` (n, p) the left singular vectors of F;
    ``singular_values`` = ``sqrt(max(eigvals, 0))``.
    """

    F: Representation
    eigvals: Eigvals
    eigvecs: Eigvecs

    @property
    def singular_values(self) -> Eigvals:
        return jnp.sqrt(jnp.maximum(self.eigvals, 0.0))


def optimal_representation(Abar, p: int, *, n_sub: int | None = None, method: str = "auto") -> Spectral:
    """``F_min = F* Sigma`` (Eqs. 7-8, taking R = I) from the top-p eigenpairs of A-bar.

    Args:
      Abar: the normalized adjacency (dense) or a :class:`LinearOp`.
      p: representation dimension. The theory needs ``p >= K-bar``; pass ``n_sub``
        to have that checked.
    """
    if n_sub is not None and p < n_sub:
        raise ValueError(f"p must be >= K-bar={n_sub} (the proofs need p >= K-bar), got {p}")
    lam, V = top_eigh(Abar, p, method=method)
    return Spectral(V * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :], lam, V)


def alignment(V: Eigvecs, Y: Labels) -> Array:
    """Normalized projection of the labels on span(V): ``||V V^T Y||_F^2 / ||Y||_F^2`` (Eq. 25).

    V must have orthonormal columns.
    """
    return jnp.sum((V.T @ Y) ** 2) / jnp.sum(Y**2)


def principal_angle_sines(U: Array, V: Array) -> Array:
    """Sines of the principal angles between span(U) and span(V) (orthonormal columns), descending.

    Use this, not eigenvector-by-eigenvector comparison, where eigenvalues repeat.
    """
    cos = jnp.linalg.svd(U.T @ V, compute_uv=False)
    return jnp.sqrt(jnp.clip(1.0 - cos**2, 0.0, 1.0))[::-1]


def subspace_distance(U: Array, V: Array) -> Array:
    """The largest principal-angle sine, ``||U U^T - V V^T||_2`` for equal dimensions."""
    return principal_angle_sines(U, V)[0]


def degree_weighted(F: Representation, W: Weights) -> Representation:
    """The minimizer of Eq. 1 itself, from ``F = F* Sigma``: ``f_min(x_i) = u_i / sqrt(w_i / S)``
    with ``u_i`` the rows of ``F* Sigma`` (HaoChen et al. 2021, Lemma 3.2: the spectral loss is
    ``||A-bar - U U^T||_F^2 + const`` with ``u_i = sqrt(w_i / S) f(x_i)``), times the global constant
    ``1/sqrt(n)``: row i is scaled by ``sqrt(mean(w) / w_i)``.

    The paper's ``F_min = F* Sigma R`` drops the weighting; the two agree when all degrees are
    equal, and the constant keeps a ridge ``beta`` meaning the same on both.
    """
    w = jnp.sum(W, axis=1)
    return F * jnp.sqrt(jnp.mean(w) / w)[:, None]
