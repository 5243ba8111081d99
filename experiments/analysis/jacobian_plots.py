"""Fig. 2a (histogram of the Jacobian's singular values, log counts) and Fig. 2b (|u_i^T y| against
sigma_i) from the metrics `clspec jacobian` saves: a pure function of the saved results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.common import plotting


def plot_fig2(metrics: dict, outdir: Path, *, prefix: str = "jacobian") -> list[Path]:
    plt = plotting.pyplot()
    results = metrics["results"]
    top = max(max(r["sigma"]) for r in results.values())
    bins = np.linspace(0.0, top, 41)
    paths = []
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, r in results.items():
        ax.hist(r["sigma"], bins=bins, histtype="step", linewidth=1.6, label=f"{name} ({len(r['sigma'])} values)")
    ax.set_yscale("log")
    ax.set_xlabel(r"singular value $\sigma_i$ of $J(W_0)$")
    ax.set_ylabel("count (log scale)")
    n = next(iter(results.values()))["n"]
    ax.set_title(f"Fig. 2a: Jacobian spectrum, n = {n}")
    ax.legend(fontsize=8)
    paths.append(plotting.save(fig, Path(outdir) / f"{prefix}_fig2a.png"))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, r in results.items():
        ax.scatter(r["sigma"], r["alignment"], s=6, alpha=0.6, label=name)
    ax.set_xlabel(r"singular value $\sigma_i$")
    ax.set_ylabel(r"$|u_i^\top y|$")
    ax.set_xscale("symlog", linthresh=max(1e-3, 1e-3 * top))
    ax.set_title("Fig. 2b: label alignment of each singular direction")
    ax.legend(fontsize=8)
    paths.append(plotting.save(fig, Path(outdir) / f"{prefix}_fig2b.png"))
    return paths
