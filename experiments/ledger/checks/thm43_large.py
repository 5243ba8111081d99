"""The ``large`` preset of the Theorem 4.3 checks: a matrix-free graph of n = 20,000 points.

Measured with ``theory``'s matrix-free pieces (``StructuredGraph``, Lanczos, ``measure_structured``,
``structured_perturbation``); the records have the fields of ``thm43.measure_dense``. Two (delta, xi)
points only, so the order tests are INFO at this preset (they need two decades).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from theory import tolerances
from theory.graph import Partition, balanced_partition, make_structured_graph, measure_structured
from theory.representation import (block_spectra, lanczos_vs_dense, normalized_operator, perron_space, perturbation_norm2,
                                   structured_perturbation, top_eigh)


def measure_large(part: Partition, delta: float, xi: float, seed: int, p: int, rank: int, record) -> dict:
    """The xi > 0 quantities (and the per-block Appendix A ones) on a matrix-free graph."""
    g = make_structured_graph(jax.random.PRNGKey(seed), part, delta, xi, rank=rank)
    meters = measure_structured(g)
    Ab_blocks, pert = structured_perturbation(g)
    spec = block_spectra(list(np.asarray(Ab_blocks)), p)
    if xi > 0:
        lam, V = top_eigh(normalized_operator(g), p, method="lanczos")
    else:  # block-diagonal: the spectrum is the union of the block spectra, the top K-bar space the Perron vectors
        lam, V = spec.top_sorted, perron_space(spec.perron, part)
    return record(part, delta, xi, seed, p, meters.delta, meters.xi, lam, V, spec, E_fro=float(pert.E_fro),
                   E_2=perturbation_norm2(g) if xi > 0 else 0.0, H_fro=float(pert.H_fro), h_ratio=meters.h_ratio,
                   within_max=float(pert.within_max))


def sweeps(cfg, seed: int, progress, record) -> dict:
    """The large preset's sweeps: two (delta, xi) points at n = 20,000, each serving the fixed-size checks and the joint path."""
    part = balanced_partition(cfg.large_n_sub, cfg.large_m, cfg.large_classes)
    p = part.n_sub + cfg.large_extra_p
    out = {"delta": [], "xi": [], "path": [], "nsub": [], "tight": []}
    # xi > 0 points move delta and xi together, so they serve the fixed-size checks and the joint path
    tasks = [("delta", d, 0.0) for d in cfg.large_deltas] + [("xi", d, x) for d, x in zip(cfg.large_deltas, cfg.large_xis)]
    for kind, d, x in progress(tasks, desc="thm43 n=20,000"):
        t0 = time.perf_counter()
        pt = measure_large(part, d, x, seed, p, cfg.rank, record)
        pt.update(seconds=time.perf_counter() - t0, partition=f"structured K={cfg.large_classes} K-bar={part.n_sub} n={part.n}")
        out[kind].append(pt)
        if kind == "xi":
            out["path"].append(pt)
    return out


def lanczos_agreement(cfg, seed: int) -> str:
    """Top eigenvalues from Lanczos (matrix-free) against dense eigh on the same n = 3,000 graph, as a note."""
    part = balanced_partition(cfg.agree_n_sub, cfg.large_m, min(cfg.large_classes, cfg.agree_n_sub))
    g = make_structured_graph(jax.random.PRNGKey(seed), part, cfg.large_deltas[0], cfg.large_xis[-1], rank=cfg.rank)
    err, dense_s, lanczos_s = lanczos_vs_dense(g, part.n_sub + cfg.large_extra_p)
    return (f"Solver check: top {part.n_sub + cfg.large_extra_p} eigenvalues from Lanczos (matrix-free) vs dense eigh on the "
            f"same n = {part.n} graph differ by at most {err:.2e} (tolerance {tolerances.LANCZOS_VS_DENSE:.0e}); dense "
            f"{dense_s:.1f} s, Lanczos {lanczos_s:.1f} s.")
