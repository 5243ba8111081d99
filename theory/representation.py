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

from theory import _random, tolerances
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
    if isinstance(W, jax.core.Tracer):  # traced into the caller's program
        d = jnp.sum(W, axis=1)
        s = 1.0 / jnp.sqrt(d)
        return s[:, None] * W * s[None, :]
    return _normalized_adjacency(W)


@jax.jit
def _normalized_adjacency(W):
    """:func:`normalized_adjacency` compiled for a concrete ``W`` (one program per shape, not one per operation),
    rounded as the operation-by-operation evaluation was: ``1 / sqrt(d)`` as a square root then a division (the
    barrier keeps XLA from fusing them into one ``rsqrt``, which rounds differently). The committed ledger's
    numbers, to the last bit."""
    d = jnp.sum(W, axis=1)
    s = 1.0 / jax.lax.optimization_barrier(jnp.sqrt(d))
    return s[:, None] * W * s[None, :]


def _same_block(part: Partition) -> np.ndarray:
    """``same[i, j]``: points i and j are in one sub-class (a host array: a jitted function takes it as an
    argument, so it is neither a per-partition constant of the program nor recomputed there)."""
    return part.sub_of_point[:, None] == part.sub_of_point[None, :]


def block_normalized_adjacency(W: Weights, part: Partition) -> Weights:
    """App. B's ``A-bar`` for xi > 0: each diagonal block normalized by its own degrees,
    the off-diagonal blocks dropped. Its top K-bar eigenvalues are exactly 1."""
    return _block_normalized(W, _same_block(part))


@jax.jit
def _block_normalized(W, same):
    return _normalized_adjacency(jnp.where(same, W, 0.0))


class BlockPerturbation(NamedTuple):
    """Lemma B.1's perturbation ``E = A-tilde - A-bar`` of the block-normalized matrix.

    ``E_fro`` = ``||E||_F``; ``H_fro`` = ``||H||_F`` of its off-block part; ``h_ratio`` =
    ``max_ij h_ij sqrt(n_i n_j)`` over off-block entries (Lemma B.1: ``<= xi``); ``within_max`` =
    ``max |E_ij|`` over within-block entries (Lemma B.1: ``O(K-bar^3 (1 + delta)^2 xi / n)``).
    """

    E_fro: Array
    H_fro: Array
    h_ratio: Array
    within_max: Array


def block_perturbation(W: Weights, part: Partition) -> BlockPerturbation:
    """The norms of Lemma B.1's ``E = A-tilde - A-bar`` and of its off-block part ``H``."""
    same = _same_block(part)
    sizes = np.asarray(part.sizes, dtype=float)[part.sub_of_point]
    # A-tilde and A-bar come out of their own programs: fused here, a product of one and the difference could
    # become a fused multiply-add, which rounds differently
    return BlockPerturbation(*_perturbation_norms(_normalized_adjacency(W), _block_normalized(W, same), same, sizes))


@jax.jit
def _perturbation_norms(At, Ab, same, sizes):
    E = At - Ab
    H = jnp.where(same, 0.0, At)
    sizes = sizes.astype(At.dtype)
    h_ratio = jnp.max(H * jnp.sqrt(sizes[:, None] * sizes[None, :]))
    return jnp.linalg.norm(E), jnp.linalg.norm(H), h_ratio, jnp.max(jnp.where(same, jnp.abs(E), 0.0))


def structured_perturbation(graph: StructuredGraph) -> tuple[Array, BlockPerturbation]:
    """The blocks of App. B's A-bar (each normalized by its own degrees), shape (K-bar, m, m),
    and the norms of Lemma B.1's ``E = A-tilde - A-bar`` of a matrix-free graph.

    ``||E||_F^2`` = the within-block differences plus ``||H||_F^2``, with
    ``H = (xi/r) diag(s) (A A^T - blockdiag(A_k A_k^T)) diag(s)``, ``s = 1/sqrt(degrees)``;
    ``h_ratio`` is left 0 here (:func:`theory.graph.measure_structured` measures it).
    """
    blocks = graph.blocks
    n_sub, m, _ = blocks.shape
    d_full = graph.degrees().reshape(n_sub, m)
    d_in = jnp.sum(blocks, axis=2)
    Ab = blocks / jnp.sqrt(d_in[:, :, None] * d_in[:, None, :])
    At = blocks / jnp.sqrt(d_full[:, :, None] * d_full[:, None, :])
    at = graph.factors / jnp.sqrt(d_full.reshape(-1))[:, None]
    rank = at.shape[1]
    atb = at.reshape(n_sub, m, rank)
    own = jnp.sum(jnp.einsum("kir,kis->krs", atb, atb) ** 2)
    h_fro_sq = (graph.xi / rank) ** 2 * (jnp.sum((at.T @ at) ** 2) - own)
    e_fro = jnp.sqrt(jnp.sum((At - Ab) ** 2) + h_fro_sq)
    zero = jnp.zeros((), blocks.dtype)
    return Ab, BlockPerturbation(e_fro, jnp.sqrt(jnp.maximum(h_fro_sq, 0.0)), zero, jnp.max(jnp.abs(At - Ab)))


def perturbation_norm2(graph: StructuredGraph) -> float:
    """``||A-tilde - A-bar||_2`` of a matrix-free graph by Lanczos on +E and -E (E is symmetric)."""
    full, within = normalized_operator(graph), normalized_operator(graph, within_only=True)
    tops = []
    for sign in (1.0, -1.0):
        op = full._replace(matmat=jax.jit(lambda x, s=sign: s * (full.matmat(x) - within.matmat(x))))
        tops.append(float(top_eigh(op, 1, method="lanczos")[0][0]))
    return max(abs(t) for t in tops)


class BlockSpectra(NamedTuple):
    """Per-block spectra of a block-diagonal A-bar (xi = 0, or App. B's block-normalized matrix).

    Lists with one entry per block: ``col_ratio`` (max column-entry ratio, Lemma A.1),
    ``perron_ratio`` (max/min Perron entry, Lemma A.3), ``l1_sq`` (``||v_{k,1}||_1^2``),
    ``eig_sq_sum`` (``sum_i lambda_{k,i}^2``, Lemma A.4), ``eig2`` (``lambda_{k,2}``, Cor. A.5),
    ``tail_sq`` (``sum_{i>=2} lambda_{k,i}^2``, Eq. 12), ``p_k`` (how many of the block's
    eigenpairs are among the top p of the whole matrix), ``block_tail_sum``
    (``sum_{i=2}^{p_k} lambda_{k,i}``, Cor. A.6); ``perron`` the positive unit Perron vectors;
    ``top_sorted`` the top-p eigenvalues of the whole matrix.
    """

    col_ratio: list
    perron_ratio: list
    l1_sq: list
    eig_sq_sum: list
    eig2: list
    tail_sq: list
    p_k: list
    block_tail_sum: list
    perron: list
    top_sorted: np.ndarray


def block_spectra(blocks, p: int) -> BlockSpectra:
    """:class:`BlockSpectra` of the diagonal blocks of a block-diagonal normalized adjacency."""
    out = {k: [] for k in ("col_ratio", "perron_ratio", "l1_sq", "eig_sq_sum", "eig2", "tail_sq", "perron")}
    eigs = []
    for blk in blocks:
        blk = np.asarray(blk)
        lam, U = np.linalg.eigh(blk)
        lam, U = lam[::-1], U[:, ::-1]
        v1 = U[:, 0] * np.sign(U[:, 0].sum())
        out["perron"].append(v1)
        out["col_ratio"].append(float(np.max(blk.max(axis=0) / blk.min(axis=0))))
        out["perron_ratio"].append(float(v1.max() / v1.min()) if v1.min() > 0 else float("inf"))
        out["l1_sq"].append(float(np.abs(v1).sum() ** 2))
        out["eig_sq_sum"].append(float(np.sum(lam**2)))
        out["eig2"].append(float(lam[1]) if lam.size > 1 else 0.0)
        out["tail_sq"].append(float(np.sum(lam[1:] ** 2)))
        eigs.append(lam)
    allv = np.concatenate(eigs)
    owner = np.concatenate([np.full(e.size, k) for k, e in enumerate(eigs)])
    top = np.argsort(-allv, kind="stable")[:p]
    p_k = [int(np.sum(owner[top] == k)) for k in range(len(eigs))]
    return BlockSpectra(**out, p_k=p_k, block_tail_sum=[float(np.sum(e[1:pk])) for e, pk in zip(eigs, p_k)],
                        top_sorted=np.sort(allv)[::-1][:p])


def perron_space(perron: list, part: Partition) -> np.ndarray:
    """The unperturbed top-K-bar space (n, K-bar): block k's Perron vector padded with zeros."""
    VI = np.zeros((part.n, part.n_sub))
    for k, (lo, hi) in enumerate(zip(part.offsets[:-1], part.offsets[1:])):
        VI[lo:hi, k] = perron[k]
    return VI


def lanczos_vs_dense(graph: StructuredGraph, p: int) -> tuple[float, float, float]:
    """The top-p eigenvalues of a structured graph's A-bar by Lanczos (matrix-free) and by dense eigh:
    ``(max abs difference, dense seconds, Lanczos seconds)``. Small n only (it forms the matrix)."""
    import time

    t0 = time.perf_counter()
    lam_d, _ = top_eigh(normalized_adjacency(graph.dense()), p, method="dense")
    t1 = time.perf_counter()
    lam_l, _ = top_eigh(normalized_operator(graph), p, method="lanczos")
    t2 = time.perf_counter()
    return float(jnp.max(jnp.abs(lam_d - lam_l))), t1 - t0, t2 - t1


@jax.jit
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

    The eigenvectors come in :func:`canonical_basis`: within a repeated eigenvalue their basis
    does not depend on the solver (nor on the machine's LAPACK).
    """
    n = A.n if isinstance(A, LinearOp) else np.shape(A)[0]
    if not 1 <= p <= n:
        raise ValueError(f"p must be in [1, n={n}], got {p}")
    if method == "auto":
        method = "dense" if (not isinstance(A, LinearOp) and n <= DENSE_MAX_N) else "lanczos"
    if method not in ("dense", "lanczos"):
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")
    lam, V = _solve(A, p, method, tol, seed, n)
    return lam, canonical_basis(lam, V)


def _solve(A, p: int, method: str, tol: float, seed: int, n: int):
    """The eigensolver behind :func:`top_eigh`, before the basis is made canonical."""
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


def canonical_basis(lam: Eigvals, V: Eigvecs, *, tol: float = tolerances.EIG_CLUSTER) -> Eigvecs:
    """The eigenvectors ``V`` (columns, eigenvalues ``lam`` descending) in a basis that depends only
    on the eigenspaces, not on the solver's choice within a repeated eigenvalue.

    Eigenvalues closer than ``tol`` form one cluster (the top K-bar eigenvalues of A-bar are all 1,
    Lemma A.2). Within each cluster with basis ``V_c`` the columns become ``P M (M^T P M)^{-1/2}``,
    ``P = V_c V_c^T`` the cluster's projector and ``M`` a fixed reference matrix (``jax.random.normal``
    at key 0, the same on every machine): the polar factor of ``V_c^T M`` rotates ``V_c`` there. A
    rotation or sign flip of ``V`` inside a cluster, which another LAPACK may return, gives the
    same output. Traces under ``jit`` (the clusters are masks, not Python branches).
    """
    lam, V = jnp.asarray(lam), jnp.asarray(V)
    if V.ndim != 2 or lam.shape != (V.shape[1],):
        raise ValueError(f"lam must have one entry per column of V {V.shape}, got shape {lam.shape}")
    if isinstance(lam, jax.core.Tracer) or isinstance(V, jax.core.Tracer):  # traced into the caller's program
        return _rotate(lam, V, jax.random.normal(jax.random.PRNGKey(0), V.shape, dtype=V.dtype), tol, V.T)
    M = _random.draw(jax.random.normal, jax.random.PRNGKey(0), V.shape, V.dtype)
    return _canonical_basis(lam, V, M, tol)


@jax.jit
def _canonical_basis(lam, V, M, tol):
    """:func:`canonical_basis` compiled for concrete arrays (one program per shape), rounded as the
    operation-by-operation evaluation was: the barrier keeps ``V^T`` a transposed copy rather than folded into
    the product (see :func:`_normalized_adjacency`)."""
    return _rotate(lam, V, M, tol, jax.lax.optimization_barrier(V.T))


def _rotate(lam, V, M, tol, VT):
    cluster = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(jnp.abs(jnp.diff(lam)) > tol).astype(jnp.int32)])
    same = cluster[:, None] == cluster[None, :]
    B = jnp.where(same, VT @ M, 0.0)  # block diagonal over the clusters
    U, _, Wt = jnp.linalg.svd(B)
    return V @ (U @ Wt)


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
    return Spectral(_scale_columns(V, lam), lam, V)


@jax.jit
def _scale_columns(V, lam):
    return V * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :]


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
    if isinstance(F, jax.core.Tracer) or isinstance(W, jax.core.Tracer):
        w = jnp.sum(W, axis=1)
        return F * jnp.sqrt(jnp.mean(w) / w)[:, None]
    return _degree_weighted(F, W)


@jax.jit
def _degree_weighted(F, W):
    """Compiled for concrete arrays, rounded as evaluated operation by operation: the barrier keeps XLA from
    merging the two sums (the degrees, then their mean) into one."""
    w = jax.lax.optimization_barrier(jnp.sum(W, axis=1))
    return F * jnp.sqrt(jnp.mean(w) / w)[:, None]
