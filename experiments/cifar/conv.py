"""2-D convolution for the CIFAR networks, with a formulation chosen per backend.

``conv2d(x, w, stride, impl)`` computes the same function as
``lax.conv_general_dilated`` with NHWC inputs, HWIO kernels and PyTorch's padding
(``k // 2`` on every side), so checkpoints do not depend on the formulation.
``impl="lax"`` is XLA's convolution (the right choice on GPU/TPU); ``impl="auto"``
picks the fastest formulation measured for the current backend.
"""

from __future__ import annotations

import jax
from jax import lax

IMPLS = ("auto", "lax")
DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def resolve_impl(impl: str) -> str:
    """The concrete formulation ``impl`` stands for on the current default backend."""
    if impl not in IMPLS:
        raise ValueError(f"conv_impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "lax"
    return impl


def conv_lax(x: jax.Array, w: jax.Array, stride: int = 1) -> jax.Array:
    """XLA's convolution, NHWC x HWIO -> NHWC, padding k//2 on each side (PyTorch's ``padding=k//2``)."""
    k = w.shape[0]
    pad = ((k // 2, k // 2), (k // 2, k // 2))
    return lax.conv_general_dilated(
        x, w, (stride, stride), pad, dimension_numbers=DIMENSION_NUMBERS,
        precision=lax.Precision.HIGHEST,
    )


def conv2d(x: jax.Array, w: jax.Array, stride: int = 1, impl: str = "auto") -> jax.Array:
    """Convolve NHWC ``x`` with the HWIO kernel ``w`` (square, odd size) at ``stride``."""
    impl = resolve_impl(impl)
    return conv_lax(x, w, stride)
