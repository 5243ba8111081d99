"""2-D convolution for the CIFAR networks, with a formulation chosen per backend.

``conv2d(x, w, stride, impl)`` computes the same function as ``lax.conv_general_dilated``
with NHWC inputs, HWIO kernels and PyTorch's padding (``k // 2`` on every side), so parameters
and checkpoints do not depend on the formulation:

* ``"lax"``: XLA's convolution, forward and both gradients (the choice on GPU/TPU).
* ``"shiftdot"``: forward and input gradient by XLA's convolution; the kernel gradient,
  ``dw[i, j] = sum_{b,h,w} x_pad[b, s*h+i, s*w+j, :]^T g[b, h, w, :]``, as k*k matrix products
  over the NHWC data as it lies. It is a ``jax.custom_jvp`` whose tangent in w,
  :func:`conv_window_sum`, transposes to those products, so reverse mode gets the shiftdot kernel
  gradient and forward mode (``jax.jvp``, ``jax.jacfwd``, needed by the Jacobian spectra) works
  through every formulation. XLA's own kernel gradient is a
  convolution over a (C, H, W, B) transposed copy of the activations, and on CPU those
  transposes (fused with the BatchNorm that produced the activations) take about 45% of the
  SimCLR step's thread time in a profile of ResNet-32 at batch 128 (jax 0.10.2, 2 cores).
* ``"hybrid"``: ``"shiftdot"`` for convolutions with at least ``HYBRID_MIN_FEATURES`` output
  channels, ``"lax"`` for the narrower ones. In ``clspec bench simclr`` (ResNet-32, batch 128,
  2 shared cores, interleaved rounds) shiftdot ran stage2 and stage3 (32 and 64 channels)
  1.3-1.4x faster than lax.conv (forward+backward) and stage1 (16 channels, 32x32) no faster
  or slightly slower; the hybrid SimCLR step ran 1.21x faster than the lax.conv step.
* ``"cols"``: forward and input gradient by XLA's convolution; the kernel gradient as one product
  ``cols(x)^T g`` with the k*k windows of x side by side (im2col, :func:`conv_window_cols`), a
  ``jax.custom_jvp`` like shiftdot. Made for the per-point Jacobians of ``experiments.analysis.jacobian``
  (K kernel gradients per point, where shiftdot's k*k per-tap pieces cost a third of the time to
  assemble into the kernel). Not a training default: in ``clspec bench simclr --conv-impl
  hybrid,cols,shiftdot --steps 3`` (ResNet-32, 2026-12-01 19:59 UTC, quiet, 3 interleaved rounds) the
  SimCLR step ran at 71.3 images/s with cols against 74.4 hybrid and 74.3 shiftdot (0.96x), the
  fine-tuning step at 89.5 against 197.3 (0.45x: the im2col copy of every batch is paid once per
  image there, not once per K outputs).
* ``"auto"``: ``"hybrid"`` when ``jax.default_backend() == "cpu"``, ``"lax"`` elsewhere (GPU and
  TPU keep XLA's convolutions untouched).

Candidates measured and not kept (their code: commit 08cad03). One 3x3 stride-1
convolution, forward + both gradients, 64 views, 5 interleaved rounds in one process, median CPU
time of both threads in ms (``time.process_time``; the 2 cores were shared with six other agents at
a load average of 20-30, so wall times were unusable; a throwaway script that jits
``jax.grad`` of ``sum(conv2d(x, w, 1, impl) * g)`` in (x, w) per shape and formulation):

    shape (HxW, C->O)   lax   shiftdot  im2col  winograd  taps
    32x32, 16->16       9.3     27.8     47.0     56.7    45.1
    16x16, 32->32       8.8      6.6     25.1     19.8    25.6
     8x8,  64->64       4.6      7.5      7.1      9.9     8.7

* ``im2col``: ``concat(k*k windows) @ w.reshape(k*k*C, O)``, one GEMM per pass by autodiff
  (kernel gradient ``cols^T g``, input gradient ``g w^T`` scattered back): the 9x larger column
  matrix is written and read in every pass; 2-5x XLA's CPU time.
* ``winograd``: F(2x2, 3x3) (Lavin & Gray 2016; 2.25x fewer multiplies) with the transforms as
  sums of strided slices and the 16 products as one batched dot_general, all passes by autodiff:
  the transforms' memory traffic (16 arrays of a quarter of the input each) and the K = C = 16..64
  GEMMs cost more than the multiplies saved; 2-6x XLA's CPU time.
* ``taps``: the k*k window GEMMs summed (:func:`conv_window_sum` as the forward), all passes by
  autodiff: 2-5x.
* XLA CPU options: ``--xla_cpu_use_onednn``, ``--xla_cpu_experimental_onednn_custom_call``,
  ``--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY`` and
  ``--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION`` leave the
  compiled float32 convolutions as they are (no library call in the HLO; XLA's YNNPACK convolution
  admits int8 only in jax 0.10.2). BatchNorm + ReLU in the convolution's epilogue: XLA CPU fuses
  no elementwise consumer into a convolution or dot, so it would need a hand-written kernel.
* Two single-threaded XLA host devices, data parallel (``--xla_force_host_platform_device_count=2``,
  the batch sharded over them, with and without ``--xla_cpu_multi_thread_eigen=false``) instead of
  one device with two threads: the fine-tuning step (batch 64, hybrid) took 0.457 s / 0.484 s (median
  of 8) against 0.471 s on one device (2026-12-01 19:26 UTC, quiet): no gain, so XLA's own two
  threads are not the bottleneck.
* Activation layout: NCHW activations with OIHW kernels instead of NHWC / HWIO make lax.conv
  (forward + both gradients, batch 128) 1.145x slower at 32x32 with 16 channels, 1.053x at
  16x16 / 32 and 1.061x at 8x8 / 64 (``python -m experiments.bench.conv_layout``, quiet machine,
  experiments/ledger/evidence/conv_layout_quiet.json), so the networks stay NHWC.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

IMPLS = ("auto", "lax", "shiftdot", "hybrid", "cols")
HYBRID_MIN_FEATURES = 32
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_HI = lax.Precision.HIGHEST


def resolve_impl(impl: str) -> str:
    """The concrete formulation ``impl`` stands for on the current default backend."""
    if impl not in IMPLS:
        raise ValueError(f"conv_impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "hybrid" if jax.default_backend() == "cpu" else "lax"
    return impl


def conv_lax(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """XLA's convolution, NHWC x HWIO -> NHWC, padding k//2 on each side (PyTorch's ``padding=k//2``)."""
    k = w.shape[0]
    pad = ((k // 2, k // 2), (k // 2, k // 2))
    return lax.conv_general_dilated(
        x, w, (stride, stride), pad, dimension_numbers=DIMENSION_NUMBERS, precision=_HI
    )


def _shifted(x: jax.Array, k: int, stride: int, out_h: int, out_w: int) -> list[jax.Array]:
    """The k*k windows ``x_pad[:, i::stride, j::stride, :]`` of output size (out_h, out_w), row-major in (i, j)."""
    p = k // 2
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0))) if p else x
    b, c = x.shape[0], x.shape[-1]
    return [
        lax.slice(xp, (0, i, j, 0), (b, i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1, c),
                  (1, stride, stride, 1))
        for i in range(k)
        for j in range(k)
    ]


def kernel_grad_shiftdot(x: jax.Array, g: jax.Array, k: int, stride: int) -> jax.Array:
    """The gradient of ``sum(conv(x, w) * g)`` in w, as k*k (B*H*W)-contractions in NHWC order."""
    b, out_h, out_w, o = g.shape
    c = x.shape[-1]
    g2 = g.reshape(-1, o)
    grads = [
        lax.dot_general(xs.reshape(-1, c), g2, (((0,), (0,)), ((), ())), precision=_HI)
        for xs in _shifted(x, k, stride, out_h, out_w)
    ]
    return jnp.stack(grads).reshape(k, k, c, o)


def conv_window_sum(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_lax` as the sum over the k*k kernel taps of ``window_ij(x) @ w[i, j]``.

    Linear in ``w``, and JAX's transpose of it in ``w`` is :func:`kernel_grad_shiftdot` (the
    transpose of each ``(B*H*W, C) @ (C, O)`` product is ``window_ij(x)^T g``): the tangent of
    :func:`conv_shiftdot` in ``w`` is this function, so reverse mode gets the shiftdot kernel
    gradient and forward mode (``jax.jvp``, ``jax.jacfwd``) a correct directional derivative.
    """
    k = w.shape[0]
    b, h, wd, c = x.shape
    out_h, out_w = (h - 1) // stride + 1, (wd - 1) // stride + 1
    o = w.shape[-1]
    y = None
    for t, xs in enumerate(_shifted(x, k, stride, out_h, out_w)):
        term = lax.dot_general(xs.reshape(-1, c), w[t // k, t % k], (((1,), (0,)), ((), ())), precision=_HI)
        y = term if y is None else y + term
    return y.reshape(b, out_h, out_w, o)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def conv_shiftdot(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_lax` whose derivative in ``w`` is :func:`conv_window_sum` (a ``jax.custom_jvp``).

    The tangent ``conv_lax(dx, w) + conv_window_sum(x, dw)`` is linear in ``(dx, dw)`` and built
    from transposable primitives, so ``jax.grad``/``jax.vjp`` transpose it (input gradient:
    XLA's; kernel gradient: :func:`kernel_grad_shiftdot`) and ``jax.jvp``/``jax.jacfwd`` evaluate
    it. Zero tangents stay symbolic, so a network input that needs no gradient costs nothing.
    """
    return conv_lax(x, w, stride)


def _lax_conv_jvp(kernel_tangent, stride, primals, tangents):
    """The jvp rule of a convolution computed by :func:`conv_lax` whose tangent in ``w`` is
    ``kernel_tangent(x, dw, stride)`` (a linear, transposable form of the same convolution)."""
    x, w = primals
    dx, dw = tangents
    y = conv_lax(x, w, stride)
    dy = None
    if not isinstance(dx, SymbolicZero):
        dy = conv_lax(dx, w, stride)
    if not isinstance(dw, SymbolicZero):
        dw_term = kernel_tangent(x, dw, stride)
        dy = dw_term if dy is None else dy + dw_term
    return y, jnp.zeros_like(y) if dy is None else dy


@functools.partial(conv_shiftdot.defjvp, symbolic_zeros=True)
def _shiftdot_jvp(stride, primals, tangents):
    return _lax_conv_jvp(conv_window_sum, stride, primals, tangents)


def conv_window_cols(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_lax` as one product ``cols(x) @ w.reshape(k*k*C, O)``, with ``cols(x)`` the k*k
    windows side by side (im2col). Linear in ``w``; its transpose in ``w`` is one product
    ``cols(x)^T g`` that lands in the kernel's own layout (no per-tap pieces to assemble)."""
    k = w.shape[0]
    b, h, wd, c = x.shape
    out_h, out_w = (h - 1) // stride + 1, (wd - 1) // stride + 1
    o = w.shape[-1]
    windows = _shifted(x, k, stride, out_h, out_w)
    cols = windows[0] if len(windows) == 1 else jnp.concatenate(windows, axis=-1)
    y = lax.dot_general(cols.reshape(-1, k * k * c), w.reshape(k * k * c, o), (((1,), (0,)), ((), ())),
                        precision=_HI)
    return y.reshape(b, out_h, out_w, o)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def conv_cols(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_lax` whose derivative in ``w`` is :func:`conv_window_cols` (a ``jax.custom_jvp``,
    as :func:`conv_shiftdot`): the formulation for per-point Jacobians (``experiments.analysis.jacobian``),
    where the kernel gradient of every (point, output) row is one product per layer."""
    return conv_lax(x, w, stride)


@functools.partial(conv_cols.defjvp, symbolic_zeros=True)
def _cols_jvp(stride, primals, tangents):
    return _lax_conv_jvp(conv_window_cols, stride, primals, tangents)


def conv_hybrid(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_shiftdot` for wide convolutions (>= HYBRID_MIN_FEATURES outputs), else :func:`conv_lax`."""
    if w.shape[-1] >= HYBRID_MIN_FEATURES:
        return conv_shiftdot(x, w, stride)
    return conv_lax(x, w, stride)


_FORMULATIONS = {"lax": conv_lax, "shiftdot": conv_shiftdot, "hybrid": conv_hybrid, "cols": conv_cols}


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, impl: str = "auto") -> jax.Array:
    """Convolve NHWC ``x`` with the HWIO kernel ``w`` (square, odd size) at ``stride``."""
    if w.ndim != 4 or w.shape[0] != w.shape[1] or w.shape[0] % 2 != 1:
        raise ValueError(f"w must be a square odd-sized HWIO kernel, got shape {w.shape}")
    if x.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(f"x must be NHWC with {w.shape[2]} channels, got shape {x.shape}")
    return _FORMULATIONS[resolve_impl(impl)](x, w, stride)
