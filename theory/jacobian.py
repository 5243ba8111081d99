"""Jacobian spectra of deep networks (Section 4.2, Appendix C, Fig. 2a-b, Table 4).

For a network ``apply(params, x) -> (n, K)`` (any pytree of parameters; flax modules with
BatchNorm in evaluation mode included, so that each output depends on its own input only),
App. C's Jacobian is

    J(W) = [dz(x_1, W)/dW ... dz(x_n, W)/dW]^T  in R^{nK x P},   row i*K + k = output k of point i,

and ``y`` in R^{nK} is the one-hot label matrix flattened row-wise (the same layout).
This module computes, without ever holding J whole:

* :func:`gram_tiles` / :func:`gram`: the full output-space Gram ``G = J J^T`` (nK x nK, every
  cross-term between outputs) in tiles of blocks of points, the Jacobian blocks held within a
  memory budget (:func:`plan_blocks`) and float64 accumulation where asked;
* :func:`spectrum`: all singular values of J (sigma_i = sqrt(lambda_i(G))) and the left
  singular vectors;
* :mod:`theory.jacobian_lanczos`: the matrix-free top-k path, ``v -> J (J^T v)`` by one
  vjp and one jvp per block of points, Lanczos with full reorthogonalization, and the residual
  ``||G v - lambda v||`` of every returned pair;
* :func:`label_projections` (||Pi_I(y)||, ||Pi_N(y)||), :func:`alignment_ratio`
  (||J J^T y|| / ||J J^T||_F, Table 4), :func:`numerical_rank` (rule in its docstring),
  :func:`tail_fraction` and :func:`spectral_summary` (Fig. 2a), :func:`direction_alignment`
  (Fig. 2b).

Why not ``matfree``: its Lanczos (``matfree.decomp.tridiag_sym``) traces the matrix-vector
product into one compiled loop. Here one product is a host loop over blocks of points (one
compiled vjp and jvp per block, so memory stays at one block's activations); the Lanczos driver
below runs on the host, reports each product to a progress callback and keeps its whole state in
a :class:`LanczosState`, which the caller can save and resume from. It is 40 lines of textbook
algorithm (Golub & Van Loan, Alg. 10.1.1 with full reorthogonalization) and is tested against
dense ``eigh``.

Forward mode: the matrix-free path needs ``jax.jvp``. ``experiments.cifar.conv``'s convolutions
all have forward-mode rules (``shiftdot`` and ``cols`` are ``jax.custom_jvp``); a network that still holds a
``jax.custom_vjp`` function gets a ``ValueError`` from :func:`check_forward_mode` that says to build
it with ``conv_impl="lax"``. The Gram path uses reverse mode only and accepts either.

Speed (ResNet-32, K = 10, CPU): a Gram's first call is the compilation of one Jacobian block, the
blocks (per-point kernel gradients, see ``experiments.analysis.jacobian.jacobian_conv_impl``), the tile
products and ``eigh``; :data:`_CPU_OPTIONS` says which XLA settings the first and third use and why.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from theory._types import Array, Float

Apply = Callable[..., Array]
Gram = Float[Array, "nK nK"]

GIB = 2**30


# ----------------------------------------------------------------------------- the model


class Model(NamedTuple):
    """A network as App. C sees it: ``z = f(theta, x)`` with theta the flattened parameters.

    ``f(theta, x) = apply(unravel(theta), x)``; ``P = theta.size``; ``K`` outputs per point.
    """

    f: Callable[[Array, Array], Array]
    theta: Array
    unravel: Callable
    K: int

    @property
    def P(self) -> int:
        return int(self.theta.size)


def make_model(apply: Apply, params, x_example: Array) -> Model:
    """Wrap ``apply(params, x) -> (n, K)`` as a :class:`Model`, checking that they fit.

    Raises ``ValueError`` when ``apply`` fails on ``params`` (e.g. parameters of another
    network), when its output is not ``(n, K)`` floating point, or when the output of a point
    depends on the other points of the batch (BatchNorm in training mode).
    """
    theta, unravel = ravel_pytree(params)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        raise ValueError(f"params must be floating point, got dtype {theta.dtype}")
    x_example = jnp.asarray(x_example)
    if x_example.ndim < 1 or x_example.shape[0] < 2:
        raise ValueError(f"x_example must hold at least 2 points, got shape {x_example.shape}")
    try:
        out = jax.eval_shape(apply, params, x_example[:2])
    except Exception as err:  # noqa: BLE001 - any failure means they do not fit
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"params do not fit apply ({type(err).__name__}: {first})") from err
    if len(out.shape) != 2 or out.shape[0] != 2 or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"apply(params, x) must return (n, K) floats, got {out.shape} {out.dtype}")
    both = np.asarray(apply(params, x_example[:2]))
    alone = np.asarray(apply(params, x_example[:1]))
    scale = max(float(np.max(np.abs(both))), 1e-30)
    if np.all(np.isfinite(both)) and np.max(np.abs(both[:1] - alone)) > 1e-4 * scale:
        raise ValueError(
            "apply's output for a point depends on the other points of the batch "
            "(BatchNorm in training mode?): the Jacobian needs per-point outputs"
        )

    return Model(_model_fn(apply, params, unravel), theta, unravel, int(out.shape[1]))


_MODEL_FNS: dict = {}


def _model_fn(apply: Apply, params, unravel) -> Callable[[Array, Array], Array]:
    """``f(theta, x) = apply(unravel(theta), x)``, one function object per ``apply`` and parameter structure
    (tree, shapes, dtypes): networks of one architecture share it, and with it their compiled Jacobian blocks
    (:func:`compiled_block`). ``unravel`` depends on that structure only."""
    leaves, treedef = jax.tree.flatten(params)
    key = (apply, treedef, tuple((tuple(np.shape(v)), str(jnp.result_type(v))) for v in leaves))
    f = _MODEL_FNS.get(key)
    if f is None:
        def f(theta_, x):
            return apply(unravel(theta_), x)

        if len(_MODEL_FNS) > 16:
            _MODEL_FNS.clear()
        _MODEL_FNS[key] = f
    return f


def check_forward_mode(model: Model, x_example: Array) -> None:
    """Raise ``ValueError`` unless ``jax.jvp`` can differentiate the network (no custom_vjp)."""
    x1 = jnp.asarray(x_example)[:1]
    try:
        # tracing to a lowered computation (eval_shape alone does not reach custom_vjp's jvp rule)
        jax.jit(lambda t: jax.jvp(lambda s: model.f(s, x1), (t,), (t,))).lower(model.theta)
    except TypeError as err:
        if "custom_vjp" not in str(err):
            raise
        raise ValueError(
            "the network contains a jax.custom_vjp function, which forward mode (jvp) cannot "
            "differentiate: build it with conv_impl='lax'"
        ) from err


def check_outputs(model: Model, x: Array, block: int) -> np.ndarray:
    """The outputs ``(n, K)`` on ``x`` (host), or ``ValueError`` if any is NaN or infinite."""
    f = jax.jit(model.f)
    out = np.concatenate([np.asarray(f(model.theta, x[s : s + block])) for s in range(0, len(x), block)])
    bad = int(np.sum(~np.isfinite(out)))
    if bad:
        raise ValueError(f"the network's outputs on the {len(x)} points are not finite ({bad} NaN/inf values)")
    return out


# ----------------------------------------------------------------------------- Jacobian blocks


def jacobian_block(model: Model, theta: Array, x: Array) -> Float[Array, "bK P"]:
    """Rows ``i*K + k`` of J at parameters ``theta`` for the points ``x`` (b of them): per-point
    reverse mode, ``vmap`` over points of ``jacrev`` (K vjps sharing one forward pass each)."""
    per_point = jax.vmap(jax.jacrev(lambda t, xi: model.f(t, xi[None])[0]), in_axes=(None, 0))
    return per_point(theta, x).reshape(x.shape[0] * model.K, theta.size)


class BlockPlan(NamedTuple):
    """How :func:`gram_tiles` splits n points: blocks of ``block`` points, ``panel`` blocks held.

    ``block_bytes``: one Jacobian block (block*K*P*itemsize); ``workspace_bytes``: the scratch
    memory of computing one block (XLA's own estimate); ``peak_bytes``: the planned total,
    (panel + 1) blocks + workspace + the Gram itself.
    """

    n: int
    block: int
    panel: int
    block_bytes: int
    workspace_bytes: int
    peak_bytes: int

    @property
    def num_blocks(self) -> int:
        return -(-self.n // self.block)


_COMPILED: dict = {}

# XLA CPU settings, measured on ResNet-32 (K = 10, 25-point blocks, jax 0.10.2, 2 shared cores,
# interleaved in one process; CPU seconds, the machine being busy):
# * "block": LLVM optimization level 1 and the classic loop emitters instead of the MLIR fusion
#   emitters compile the vmap-of-jacrev block 1.5x faster (5.5 s instead of 8.4 s) and run it
#   within 3% of the default: the time of a block is in library dots and memory-bound fusions,
#   not in the code LLVM optimizes, and the compilation is part of every first call.
# * "contract": the tile product (bK, P) x (bK, P)^T with P ~ 460,000 goes to YNNPACK by default
#   and runs there at 0.46x the 2048^3 matmul rate per CPU second; XLA's Eigen dot runs it at
#   0.66x, so YNNPACK is switched off for it.
_CPU_OPTIONS = {
    "block": {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False},
    "contract": {"xla_cpu_experimental_ynn_fusion_type": ""},
}


def compiler_options(kind: str) -> dict:
    """The XLA options for compiling a Jacobian ``"block"`` or a tile ``"contract"`` (CPU only)."""
    return dict(_CPU_OPTIONS[kind]) if jax.default_backend() == "cpu" else {}


def compiled_block(model: Model, block: int, x_example: Array):
    """:func:`jacobian_block` compiled for ``block`` points shaped like ``x_example`` (cached per
    network and shape, so planning, every tile pass and repeated calls share one compilation)."""
    key = (id(model.f), block, tuple(x_example.shape[1:]), str(x_example.dtype), str(model.theta.dtype))
    hit = _COMPILED.get(key)
    if hit is None or hit[0] is not model.f:
        xb = jax.ShapeDtypeStruct((block,) + tuple(x_example.shape[1:]), x_example.dtype)
        theta = jax.ShapeDtypeStruct(model.theta.shape, model.theta.dtype)
        compiled = jax.jit(lambda t, x: jacobian_block(model, t, x)).lower(theta, xb).compile(
            compiler_options=compiler_options("block"))
        if len(_COMPILED) > 16:
            _COMPILED.clear()
        _COMPILED[key] = hit = (model.f, compiled)
    return hit[1]


def _workspace_bytes(model: Model, x_example: Array, block: int, gram_itemsize: int) -> int:
    """XLA's temporary-buffer size for one Jacobian block plus one tile product."""
    compiled = compiled_block(model, block, x_example)
    try:
        analysis = compiled.memory_analysis()
        temp = int(analysis.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - backends without a memory analysis
        temp = 0
    return temp + (block * model.K) ** 2 * gram_itemsize


def plan_blocks(
    model: Model, x_example: Array, n: int, *, budget_bytes: int, block: int | None = None,
    accumulate=None,
) -> BlockPlan:
    """The largest block (at most ``block`` points; default min(50, ceil(n/2))) whose plan fits
    ``budget_bytes``.

    The upper-triangle tiles of m blocks cost (m + 1) / 2m of the full product, but small tiles
    run slower: one tile product (bK, P) x (bK, P)^T of ResNet-32 (K = 10, P = 464,154, float32,
    2 cores, Eigen) ran at ~240 GFLOP/s with 250 rows, ~380 with 500 and ~396 with 1,000, so at
    n = 100 two 50-point blocks (3 tiles, 75% of the product) took 1.8 s against 2.6 s for four
    25-point blocks (10 tiles, 62.5%); at n = 200 four 50-point blocks beat two of 100.

    The plan holds ``panel`` Jacobian blocks and streams one more; the panel is as many blocks
    as the budget leaves room for (so with a budget smaller than J, J is never whole in memory;
    blocks outside the panel are recomputed). Raises ``ValueError`` if even one point per block
    does not fit.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if budget_bytes <= 0:
        raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
    itemsize = jnp.dtype(model.theta.dtype).itemsize
    acc_size = jnp.dtype(accumulate or model.theta.dtype).itemsize
    gram_bytes = (n * model.K) ** 2 * acc_size
    b = min(n, block or min(50, -(-n // 2)))  # default: >= 2 blocks, at most 50 points each
    while True:
        blk = b * model.K * model.P * itemsize
        ws = _workspace_bytes(model, x_example, b, acc_size)
        if acc_size > itemsize:  # the tile product casts both of its blocks to the accumulation dtype
            ws += 2 * blk * acc_size // itemsize
        need = min(2, -(-n // b)) * blk + ws + gram_bytes
        if need <= budget_bytes or b == 1:
            break
        b = max(1, b // 2) if need > 2 * budget_bytes else max(1, int(b * 0.8))
    if need > budget_bytes:
        raise ValueError(
            f"budget_bytes {budget_bytes} ({budget_bytes / GIB:.3g} GiB) is too small for one block of "
            f"1 point ({need / GIB:.3g} GiB with the {n * model.K}^2 Gram)"
        )
    m = -(-n // b)
    panel = int(min(m, max(1, (budget_bytes - ws - gram_bytes - blk) // blk)))
    if panel >= m - 1:
        panel = m  # the one streamed block would be the last: hold it too
    peak = (min(panel + 1, m)) * blk + ws + gram_bytes
    return BlockPlan(int(n), int(b), panel, int(blk), int(ws), int(peak))


def tile_order(num_blocks: int, panel: int) -> list[tuple[int, int]]:
    """The upper-triangle tiles (I, J), I <= J, in the order :func:`gram_tiles` computes them.

    Panels of ``panel`` consecutive blocks; the blocks after a panel are streamed last-first, so
    the last one streamed is the first block of the next panel and is kept, not recomputed.
    """
    order = []
    for p0 in range(0, num_blocks, panel):
        held = range(p0, min(p0 + panel, num_blocks))
        order += [(i, j) for j in held for i in held if i <= j]
        order += [(i, j) for j in range(num_blocks - 1, p0 + panel - 1, -1) for i in held]
    return order


def _contract(a: Array, b: Array) -> Array:
    return jax.lax.dot_general(a, b, (((1,), (1,)), ((), ())), precision=jax.lax.Precision.HIGHEST)


@functools.lru_cache(maxsize=None)
def _contract_fn(acc: str | None):
    """G_IJ = J_I J_J^T, jit-ed once per accumulation dtype (inputs cast to it first)."""
    opts = compiler_options("contract")
    if acc is None:
        return jax.jit(_contract, compiler_options=opts)
    return jax.jit(lambda a, b: _contract(a.astype(acc), b.astype(acc)), compiler_options=opts)


class TileStats(NamedTuple):
    """Seconds spent on Jacobian blocks and on tile products, FLOP of the products, blocks computed."""

    jacobian_s: float
    contract_s: float
    contract_flop: float
    blocks_computed: int


def gram_tiles(
    model: Model, x: Array, plan: BlockPlan, *, accumulate=None, skip=frozenset(),
    stats: list | None = None,
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Yield ``((I, J), G_IJ)`` for the upper-triangle tiles of G = J J^T, G_IJ = J_I J_J^T.

    Tiles in ``skip`` are not yielded, and a Jacobian block that only skipped tiles need is not
    computed (resume). ``accumulate=jnp.float64`` casts the blocks to float64 before the product
    (needs ``jax_enable_x64``). If ``stats`` is a list, a :class:`TileStats` is appended at the end.
    """
    import time

    if accumulate is not None and jnp.dtype(accumulate) == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("accumulate=float64 needs jax.config.update('jax_enable_x64', True)")
    n, b, m = len(x), plan.block, plan.num_blocks
    if plan.n != n:
        raise ValueError(f"plan is for n = {plan.n} points, x has {n}")
    block_fn = compiled_block(model, b, x)
    acc = jnp.dtype(accumulate) if accumulate is not None else None
    contract = _contract_fn(None if acc is None else str(acc))
    order = [t for t in tile_order(m, plan.panel) if t not in skip]
    t_jac = t_con = flop = 0.0
    computed = 0

    def block_of(i):
        nonlocal t_jac, computed
        t0 = time.perf_counter()
        xb = x[i * b : (i + 1) * b]
        rows = xb.shape[0] * model.K
        if xb.shape[0] < b:  # pad the last block with copies of its last point: no recompilation
            xb = jnp.concatenate([xb, jnp.repeat(xb[-1:], b - xb.shape[0], axis=0)])
        out = block_fn(model.theta, xb)
        out = (out if rows == out.shape[0] else out[:rows]).block_until_ready()
        t_jac += time.perf_counter() - t0
        computed += 1
        return out

    held: dict[int, Array] = {}
    streamed: tuple[int, Array] | None = None
    for p0 in range(0, m, plan.panel):
        panel = range(p0, min(p0 + plan.panel, m))
        todo = [t for t in order if t[0] in panel]
        need = {i for t in todo for i in t if i in panel}
        kept = {streamed[0]: streamed[1]} if streamed is not None and streamed[0] in need else {}
        held, streamed = {}, None  # free the previous panel before computing this one
        held = {i: kept[i] if i in kept else block_of(i) for i in panel if i in need}
        for i, j in todo:
            if j not in panel:
                if streamed is None or streamed[0] != j:
                    streamed = None
                    streamed = (j, block_of(j))
                right = streamed[1]
            else:
                right = held[j]
            t0 = time.perf_counter()
            tile = np.asarray(contract(held[i], right))
            if i == j:  # the product's two roundings of G_ab and G_ba differ (Eigen's dot): their mean
                tile = (tile + tile.T) / 2
            t_con += time.perf_counter() - t0
            flop += 2.0 * held[i].shape[0] * right.shape[0] * model.P
            yield (i, j), tile
        held = {}
    if stats is not None:
        stats.append(TileStats(t_jac, t_con, flop, computed))


def assemble(tiles: dict[tuple[int, int], np.ndarray], n: int, K: int, block: int) -> np.ndarray:
    """The symmetric nK x nK Gram from its upper-triangle tiles."""
    rows = block * K
    first = next(iter(tiles.values()))
    G = np.zeros((n * K, n * K), dtype=first.dtype)
    for (i, j), tile in tiles.items():
        G[i * rows : i * rows + tile.shape[0], j * rows : j * rows + tile.shape[1]] = tile
        if i != j:
            G[j * rows : j * rows + tile.shape[1], i * rows : i * rows + tile.shape[0]] = tile.T
    return G


def gram(
    model: Model, x: Array, *, budget_bytes: int = 4 * GIB, block: int | None = None, accumulate=None,
) -> np.ndarray:
    """G = J J^T (nK x nK, all output cross-terms), row/column i*K + k, within ``budget_bytes``."""
    plan = plan_blocks(model, x, len(x), budget_bytes=budget_bytes, block=block, accumulate=accumulate)
    tiles = dict(gram_tiles(model, x, plan, accumulate=accumulate))
    return assemble(tiles, len(x), model.K, plan.block)


# ----------------------------------------------------------------------------- spectrum


class Spectrum(NamedTuple):
    """Singular values of J in descending order and the matching left singular vectors (columns)."""

    sigma: Array
    U: Array


def spectrum(G: Gram) -> Spectrum:
    """All singular values of J from G = J J^T: sigma_i = sqrt(max(lambda_i, 0)), descending."""
    lam, U = jnp.linalg.eigh(jnp.asarray(G))
    lam, U = lam[::-1], U[:, ::-1]
    return Spectrum(jnp.sqrt(jnp.clip(lam, 0.0)), U)


def numerical_rank(sigma: Array, dim: int, eps: float) -> Array:
    """The number of singular values resolved above round-off.

    Rule: sigma_i > sigma_1 * sqrt(dim * eps), with ``dim`` = nK and ``eps`` the machine epsilon
    of the Gram's accumulation dtype. The eigenvalues of a Gram formed and diagonalized in that
    precision carry absolute errors of about dim * eps * lambda_1 (backward stability of the
    product and of eigh), which is sigma_1 * sqrt(dim * eps) on the singular-value scale.
    """
    return jnp.sum(sigma > sigma[0] * math.sqrt(dim * eps))


def tail_fraction(sigma: Array, m: int) -> Array:
    """The fraction of ||J||_F^2 = sum_i sigma_i^2 beyond the top ``m`` directions."""
    s2 = jnp.asarray(sigma) ** 2
    return jnp.sum(s2[m:]) / jnp.sum(s2)


def spectral_summary(sigma: Array, *, bins: int = 50, top: int = 10) -> dict:
    """Spectral-density summaries of the singular values (host numpy; Fig. 2a).

    Histogram counts on ``bins`` equal-width bins over [0, sigma_1] (Fig. 2a's axis), quantiles,
    the fraction of ||J||_F^2 beyond the top ``top`` directions, and the effective rank
    exp(H(p)) with p_i = sigma_i^2 / sum sigma^2.
    """
    s = np.asarray(sigma, dtype=np.float64)
    counts, edges = np.histogram(s, bins=bins, range=(0.0, float(s.max()) if s.size else 1.0))
    p = s**2 / np.sum(s**2)
    p = p[p > 0]
    return dict(
        hist_counts=counts.tolist(), hist_edges=edges.tolist(),
        quantiles={str(q): float(np.quantile(s, q)) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)},
        tail_fraction=float(np.sum(s[top:] ** 2) / np.sum(s**2)),
        effective_rank=float(np.exp(-np.sum(p * np.log(p)))),
    )


# ----------------------------------------------------------------------------- labels


def flatten_labels(labels: Array, K: int) -> Float[Array, " nK"]:
    """App. C's y: one-hot labels of shape (n, K) flattened row-wise to length nK."""
    return jax.nn.one_hot(jnp.asarray(labels), K).reshape(-1)


def label_projections(U_top: Float[Array, "nK k"], y: Float[Array, " nK"]) -> tuple[Array, Array]:
    """``(||Pi_I(y)||, ||Pi_N(y)||)``: the norms of y's projections onto the span of ``U_top``
    (the top-k left singular vectors of J, App. C's information space) and onto its complement."""
    coef = U_top.T @ y
    rest = y - U_top @ coef
    return jnp.linalg.norm(coef), jnp.linalg.norm(rest)


def direction_alignment(U: Float[Array, "nK m"], y: Float[Array, " nK"]) -> Array:
    """|u_i^T y| for each left singular vector u_i (Fig. 2b's y-axis)."""
    return jnp.abs(U.T @ y)


def alignment_ratio(Gy: Float[Array, " nK"], gram_fro: Array) -> Array:
    """Table 4's ||J J^T y|| / ||J J^T||_F from G y and ||G||_F."""
    return jnp.linalg.norm(Gy) / gram_fro
