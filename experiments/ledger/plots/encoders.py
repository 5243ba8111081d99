"""Figures of the encoder checks (``experiments/ledger/checks/encoders.py``): pure functions of the ``data``
its ``run`` returns, so re-plotting never retrains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

def plot(data: dict, outdir) -> list[Path]:
    """The learned singular spectrum and the subspace / alignment curves over training."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    k = data["config"]["n_sub"]
    sqrt_lam = np.sqrt(np.maximum(np.asarray(data["closed_form"]["eigvals"]), 0.0))
    paths = []

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, name in zip(axes, ("table", "linear", "mlp")):
        h = data["runs"][f"{name}/spectral"]
        step = np.asarray(h["step"])
        sv = np.asarray(h["singular_values"])
        for i in range(sv.shape[1]):
            ax.plot(step, sv[:, i], color="C0" if i < k else "C1", lw=1.2)
        for i, s in enumerate(sqrt_lam):
            ax.axhline(max(s, 1e-4), color="C0" if i < k else "C1", ls="--", lw=0.8, alpha=0.6)
        if name == "linear":
            for s in np.asarray(data["linear_class_optimum"]["singular_values"]):
                ax.axhline(max(s, 1e-4), color="k", ls=":", lw=0.8, alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(f"{name}, spectral loss (SGD on sampled pairs)")
        ax.set_xlabel("Adam step")
    axes[0].set_ylabel(r"singular values of $U=\sqrt{w/S}\,F$")
    axes[0].plot([], [], color="C0", label=rf"top $\bar K$={k} (learned)")
    axes[0].plot([], [], color="C1", label="remaining (learned)")
    axes[0].plot([], [], color="gray", ls="--", label=r"closed form $\sqrt{\lambda_i}$")
    axes[0].legend(fontsize=8, loc="lower right")
    axes[1].plot([], [], color="k", ls=":", label="best linear encoder (closed form)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Learned singular spectrum vs the closed form (n={data['n']}, p={data['config']['p']})")
    paths.append(plotting.save(fig, outdir / "encoders_singular_values.png"))

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    for c, name in enumerate(("table", "linear", "mlp")):
        for loss, ls in (("spectral", "-"), ("nt_xent", ":")):
            h = data["runs"][f"{name}/{loss}"]
            ax1.plot(h["step"], h["sine"], color=f"C{c}", ls=ls, label=f"{name}, {loss}")
            ax2.plot(h["step"], h["alignment_f"], color=f"C{c}", ls=ls, label=f"{name}, {loss}")
            ax3.plot(h["step"], h["alignment_bias"], color=f"C{c}", ls=ls, label=f"{name}, {loss}")
    ax2.axhline(data["closed_form"]["alignment_f"], color="k", ls="--", lw=0.8, label=r"closed form $f_{min}$")
    ax3.axhline(data["closed_form"]["alignment_bias"], color="k", ls="--", lw=0.8, label=r"closed form $f_{min}$")
    ax1.set_ylabel(r"largest principal-angle sine to $f_{min}$'s top-$\bar K$ space")
    ax2.set_ylabel(r"alignment $\|VV^TY\|_F^2/\|Y\|_F^2$, V: top-$\bar K$ of F")
    ax3.set_ylabel(r"alignment, V: $[\mathbf{1}$, top-$(\bar K-1)$ of centred F$]$")
    for ax in (ax1, ax2, ax3):
        ax.set_xlabel("Adam step")
        ax.set_ylim(0, 1.05)
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle("Distance to the closed form and label alignment over training (3 encoders x 2 losses)")
    paths.append(plotting.save(fig, outdir / "encoders_subspace_alignment.png"))
    return paths
