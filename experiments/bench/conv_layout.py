"""NHWC vs NCHW activations for ``lax.conv`` on this backend (which activation layout the networks use).

    python -m experiments.bench.conv_layout [OUT.json]

One 3x3 stride-1 convolution of each ResNet-32 stage's shape (batch 128), forward plus both
gradients of ``sum(conv(x, w)^2)``, jitted per layout, the two layouts timed in interleaved rounds
in one process; prints the median wall time of each and the ratio NCHW / NHWC (> 1: NHWC, the
layout the CIFAR networks use, is faster).
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

SHAPES = ((32, 16), (16, 32), (8, 64))  # (H = W, channels) of ResNet-32's three stages
LAYOUTS = {"NHWC": ("NHWC", "HWIO", "NHWC"), "NCHW": ("NCHW", "OIHW", "NCHW")}


def job(layout: str, batch: int, size: int, channels: int):
    dn = LAYOUTS[layout]

    def loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
        return jnp.sum(y * y)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    rng = np.random.default_rng(0)
    x_shape = (batch, size, size, channels) if layout == "NHWC" else (batch, channels, size, size)
    w_shape = (3, 3, channels, channels) if layout == "NHWC" else (channels, channels, 3, 3)
    x = jnp.asarray(rng.standard_normal(x_shape, np.float32))
    w = jnp.asarray(0.1 * rng.standard_normal(w_shape, np.float32))
    jax.block_until_ready(step(x, w))  # compile outside the timing
    return lambda: jax.block_until_ready(step(x, w))


def compare(batch: int = 128, rounds: int = 7) -> dict:
    out = {}
    for size, channels in SHAPES:
        jobs = {name: job(name, batch, size, channels) for name in LAYOUTS}
        times = {name: [] for name in jobs}
        for _ in range(rounds):
            for name, fn in jobs.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        med = {name: 1e3 * float(np.median(v)) for name, v in times.items()}
        out[f"{size}x{size}, {channels}->{channels}"] = {
            "NHWC_ms": round(med["NHWC"], 2), "NCHW_ms": round(med["NCHW"], 2),
            "NCHW_over_NHWC": round(med["NCHW"] / med["NHWC"], 3)}
    return {"batch": batch, "rounds": rounds, "backend": jax.default_backend(), "shapes": out}


def main(argv: list[str]) -> int:
    rep = compare()
    for shape, r in rep["shapes"].items():
        print(f"{shape:>16}: NHWC {r['NHWC_ms']:8.2f} ms  NCHW {r['NCHW_ms']:8.2f} ms  NCHW/NHWC {r['NCHW_over_NHWC']:.3f}")
    if argv:
        with open(argv[0], "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
