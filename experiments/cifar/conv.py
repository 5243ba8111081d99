"""2-D convolution for the CIFAR networks, with a formulation chosen per backend.

``conv2d(x, w, stride, impl)`` computes the same function as ``lax.conv_general_dilated``
with NHWC inputs, HWIO kernels and PyTorch's padding (``k // 2`` on every side), so parameters
and checkpoints do not depend on the formulation:

* ``"lax"``: XLA's convolution, forward and both gradients (the choice on GPU/TPU).
* ``"shiftdot"``: forward and input gradient by XLA's convolution; the kernel gradient,
  ``dw[i, j] = sum_{b,h,w} x_pad[b, s*h+i, s*w+j, :]^T g[b, h, w, :]``, as k*k matrix products
  over the NHWC data as it lies (a ``jax.custom_vjp``). XLA's own kernel gradient is a
  convolution over a (C, H, W, B) transposed copy of the activations, and on CPU those
  transposes (fused with the BatchNorm that produced the activations) take about 45% of the
  SimCLR step's thread time in a profile of ResNet-32 at batch 128 (jax 0.10.2, 2 cores).
* ``"hybrid"``: ``"shiftdot"`` for convolutions with at least ``HYBRID_MIN_FEATURES`` output
  channels, ``"lax"`` for the narrower ones. In ``clspec bench simclr`` (ResNet-32, batch 128,
  2 shared cores, interleaved rounds) shiftdot ran stage2 and stage3 (32 and 64 channels)
  1.3-1.4x faster than lax.conv (forward+backward) and stage1 (16 channels, 32x32) no faster
  or slightly slower; the hybrid SimCLR step ran 1.21x faster than the lax.conv step.
* ``"auto"``: ``"hybrid"`` when ``jax.default_backend() == "cpu"``, ``"lax"`` elsewhere (GPU and
  TPU keep XLA's convolutions untouched).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

IMPLS = ("auto", "lax", "shiftdot", "hybrid")
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_shiftdot(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_lax` with the kernel gradient of :func:`kernel_grad_shiftdot`."""
    return conv_lax(x, w, stride)


def _shiftdot_fwd(x, w, stride):
    return conv_lax(x, w, stride), (x, w)


def _shiftdot_bwd(stride, res, g):
    x, w = res
    _, input_vjp = jax.vjp(lambda x_: conv_lax(x_, w, stride), x)
    (dx,) = input_vjp(g)
    return dx, kernel_grad_shiftdot(x, g, w.shape[0], stride)


conv_shiftdot.defvjp(_shiftdot_fwd, _shiftdot_bwd)

def conv_hybrid(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """:func:`conv_shiftdot` for wide convolutions (>= HYBRID_MIN_FEATURES outputs), else :func:`conv_lax`."""
    if w.shape[-1] >= HYBRID_MIN_FEATURES:
        return conv_shiftdot(x, w, stride)
    return conv_lax(x, w, stride)


_FORMULATIONS = {"lax": conv_lax, "shiftdot": conv_shiftdot, "hybrid": conv_hybrid}


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, impl: str = "auto") -> jax.Array:
    """Convolve NHWC ``x`` with the HWIO kernel ``w`` (square, odd size) at ``stride``."""
    if w.ndim != 4 or w.shape[0] != w.shape[1] or w.shape[0] % 2 != 1:
        raise ValueError(f"w must be a square odd-sized HWIO kernel, got shape {w.shape}")
    if x.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(f"x must be NHWC with {w.shape[2]} channels, got shape {x.shape}")
    return _FORMULATIONS[resolve_impl(impl)](x, w, stride)
