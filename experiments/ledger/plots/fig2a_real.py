"""Figures of ``experiments/ledger/checks/fig2a_real.py``: App. C Fig. 2a (log-count histograms of every singular
value of J(W_0)) and Fig. 2b (label alignment of each singular direction), random init vs pre-trained, one row per
BatchNorm convention; pure functions of the evidence the check reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODES = ("running", "batch")
INITS = (("random", "random init", "C0"), ("pretrained", "SimCLR pre-trained (cpu preset)", "C3"))
AXIS = 500.0  # the right end of the paper's Fig. 2a x axis


def main_run(runs: dict) -> tuple[str, dict] | None:
    """The run the figures show: n = 1,000 (the paper's n) if the evidence has it, else the largest float32 run."""
    if not runs:
        return None
    if "n=1000" in runs:
        return "n=1000", runs["n=1000"]
    key = max((k for k in runs if "float64" not in k), key=lambda k: runs[k]["config"]["n"], default=None)
    return None if key is None else (key, runs[key])


def _hist_panel(ax, values: dict, xlabel: str, *, axis_line: bool = False) -> None:
    top = max(float(np.max(v)) for v in values.values())
    bins = np.linspace(0.0, top * 1.0001, 51)
    for (name, label, color), v in values.items():
        ax.hist(v, bins=bins, histtype="step", linewidth=1.6, color=color, label=label)
    if axis_line and top > AXIS:
        ax.axvline(AXIS, color="0.4", ls=":", lw=1.0, label="paper's axis end (~500)")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log scale)")


def plot(data: dict, outdir) -> list[Path]:
    """``fig2a_real_hist.png`` (raw sigma_i, sigma_i / sigma_1, sigma_i / ||J||_F; rows: BatchNorm convention) and
    ``fig2a_real_alignment.png`` (|u_i^T y| against sigma_i, and the fraction of ||y||^2 in the top-m directions)."""
    picked = main_run((data or {}).get("runs") or {})
    if picked is None:
        return []
    from experiments.common import plotting

    key, run = picked
    nets = run["networks"]
    modes = [m for m in MODES if any(f"{i}/{m}" in nets for i, _, _ in INITS)]
    if not modes:
        return []
    plt = plotting.pyplot()
    n, nK = run["config"]["n"], run["config"]["n"] * run["config"]["K"]
    extra = f" ({run['config'].get('tiles', 'float32')} Gram tiles; the paper: n = 1,000)" if key != "n=1000" else ""
    paths = []
    fig, axes = plt.subplots(len(modes), 3, figsize=(14, 3.6 * len(modes)), squeeze=False)
    for r, mode in enumerate(modes):
        have = {spec: np.asarray(nets[f"{spec[0]}/{mode}"]["sigma"], float) for spec in INITS if f"{spec[0]}/{mode}" in nets}
        what = f"BatchNorm: {'running statistics' if mode == 'running' else 'batch statistics of the n points (fixed)'}"
        _hist_panel(axes[r, 0], have, r"singular value $\sigma_i$ of $J(W_0)$", axis_line=True)
        axes[r, 0].ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))  # 1e5-wide axes: no run-on labels
        _hist_panel(axes[r, 1], {k: v / v[0] for k, v in have.items()}, r"$\sigma_i / \sigma_1$")
        _hist_panel(axes[r, 2], {k: v / np.sqrt(np.sum(v**2)) for k, v in have.items()}, r"$\sigma_i / \|J\|_F$")
        axes[r, 0].set_title(f"Fig. 2a, raw ({what})", fontsize=9)
        axes[r, 1].set_title("normalized by the largest", fontsize=9)
        axes[r, 2].set_title("normalized by the Frobenius norm", fontsize=9)
        axes[r, 0].legend(fontsize=7)
    fig.suptitle(f"ResNet-32, all {nK:,} singular values of the initial Jacobian, n = {n:,} CIFAR-10 test points{extra}",
                 fontsize=10)
    paths.append(plotting.save(fig, Path(outdir) / "fig2a_real_hist.png"))

    fig, axes = plt.subplots(2, len(modes), figsize=(6.2 * len(modes), 7.4), squeeze=False)
    for c, mode in enumerate(modes):
        for name, label, color in INITS:
            r = nets.get(f"{name}/{mode}")
            if r is None:
                continue
            s, a2 = np.asarray(r["sigma"], float), np.asarray(r["alignment_sq"], float)
            axes[0, c].scatter(np.maximum(s, 1e-12 * s[0]), np.sqrt(a2), s=4, alpha=0.5, color=color, label=label)
            m = np.arange(1, len(s) + 1)
            axes[1, c].plot(m, np.cumsum(a2) / np.sum(a2), color=color, label=label)
        axes[0, c].set_xscale("log")
        axes[0, c].set_xlabel(r"singular value $\sigma_i$ (log scale)")
        axes[0, c].set_ylabel(r"$|u_i^\top y|$  ($\sum_i (u_i^\top y)^2 = n$)")
        axes[0, c].set_title(f"Fig. 2b, BatchNorm {mode} statistics", fontsize=9)
        axes[0, c].legend(fontsize=7)
        axes[1, c].axvline(10, color="0.4", ls=":", lw=1.0)
        axes[1, c].set_xscale("log")
        axes[1, c].set_xlabel("number m of top singular directions (dotted: App. C's 10)")
        axes[1, c].set_ylabel(r"fraction of $\|y\|^2$ in the top m")
        axes[1, c].legend(fontsize=7)
    fig.suptitle(f"Label alignment of each singular direction, n = {n:,}{extra}", fontsize=10)
    paths.append(plotting.save(fig, Path(outdir) / "fig2a_real_alignment.png"))
    return paths
