"""What ``clspec spectrum`` writes: ``spectrum.json``, ``summary.md`` and the figures (all or nothing,
staged in a temporary folder and moved into place), and the figure of the per-epoch spectral
monitor of a pre-training run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from experiments.cifar.loop import METRICS_JSONL
from experiments.cifar.monitors import MONITOR_KEYS
from experiments.common import runs

RESULT = "spectrum.json"


def write_outputs(out: Path, result: dict, *, overwrite: bool) -> None:
    """Write every output into a staging folder, then move it into place: all or nothing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        runs.write_json(stage / RESULT, result)
        runs.atomic_write_text(stage / "summary.md", summary_markdown(result))
        plot(result, stage)
        old = None
        if out.exists():
            if any(out.iterdir()) and not overwrite:
                raise ValueError(f"--out {out} exists and is not empty: pass --overwrite or another --out")
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _fmt(x, digits=4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_markdown(result: dict) -> str:
    K = result["num_classes"]
    noise = result["noise"]
    lines = [
        f"# clspec spectrum: {result.get('source', '')}",
        "",
        f"`{result.get('command', '')}` on {result.get('date', '')}, commit `{(result.get('commit') or 'unknown')[:12]}`.",
        f"n = {result['n_train']} training points, K = {K} classes, noise {noise.get('spec')} "
        f"(realized rate {_fmt(noise.get('rate'))}); split over the top k = {result['k']} singular directions; "
        f"head beta = {result['settings']['beta']:g} with F scaled to s_1 = 1.",
        "",
        "| representation | d | prominent (uncentred / centred) | s_K/s_K+1 | A(K) | A(K) centred | "
        "clean info frac | noise info frac | RankMe | RankMe-PCA | erank | alpha-ReQ (R^2) | "
        "train recovery | noise memorized | test acc | c_max | Thm 4.5 threshold |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["representations"].items():
        a = r["alpha_req"]
        h = r["head"]
        lines.append("| " + " | ".join([
            name, str(r["d"]), f"{r['prominent']} / {r['prominent_centred']} (K = {K})", _fmt(r["gap_K"]),
            _fmt(r["alignment_K"]), _fmt(r["alignment_K_centred"]), _fmt(r["split_clean"]["information_fraction"]),
            _fmt(r["split_noise"]["information_fraction"]), _fmt(r["rankme"]), _fmt(r["rankme_pca"]),
            _fmt(r["effective_rank"]), "-" if a is None else f"{a['alpha']:.3g} ({a['r2']:.3g})",
            _fmt(h["train_recovery"]), _fmt(h["noisy_memorized"]), _fmt(h["test_acc"]), _fmt(h["c_max"]),
            _fmt(h["threshold"])]) + " |")
    lines += ["", "A(K) = ||V_K V_K^T Y||_F^2 / n (Eq. 25); info frac = ||Pi_I y||^2 / ||y||^2 over the top-k space "
              "for the clean labels Y and the noise Y_noisy - Y; train recovery = fraction of training points whose "
              "clean label wins under the ridge head trained on the noisy labels (Thm 4.5 claims 1 below the "
              "threshold).", ""]
    t = result.get("timing")
    if t:
        lines += [f"Timing: {timing_text(t)}.", ""]
    return "\n".join(lines) + "\n"


def timing_text(t: dict) -> str:
    return ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items() if k.endswith("_s"))


def one_line(result: dict) -> str:
    parts = []
    for name, r in result["representations"].items():
        parts.append(f"{name}: A(K) {r['alignment_K']:.3f}, prominent {r['prominent']}, "
                     f"recovery {r['head']['train_recovery']:.3f}")
    return "; ".join(parts)


def plot(result: dict, outdir: Path) -> list[Path]:
    """The four figures, a pure function of ``result``."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    K = result["num_classes"]
    reps = result["representations"]
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in reps.items():
        for ax, key in zip(axes, ("sigma", "sigma_centred")):
            s = np.asarray(r[key])
            s = s / s[0]
            ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-16), ".-", ms=3, label=name)
    for ax, title in zip(axes, ("uncentred (the theory's F)", "centred (PCA)")):
        ax.axvline(K, color="k", ls="--", lw=1, label=f"K = {K}")
        ax.set_xlabel("index i")
        ax.set_ylabel(r"$\sigma_i / \sigma_1$")
        ax.set_title(f"singular values, {title}")
        ax.set_xscale("log")
    axes[0].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "spectrum.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in reps.items():
        A = np.asarray(r["alignment"])
        ax.plot(np.arange(1, len(A) + 1), A, ".-", ms=3, label=name)
    ax.axvline(K, color="k", ls="--", lw=1, label=f"K = {K}")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel(r"$A(k) = \|V_k V_k^\top Y\|_F^2 / n$")
    ax.set_title("alignment of the top-k singular space with the clean labels (Eq. 25)")
    ax.legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "alignment.png"))

    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(reps)), 4))
    names = list(reps)
    x = np.arange(len(names))
    clean = [reps[n]["split_clean"]["information_fraction"] for n in names]
    noise = [reps[n]["split_noise"]["information_fraction"] for n in names]
    ax.bar(x - 0.2, clean, 0.4, label=r"clean labels $Y$")
    ax.bar(x + 0.2, noise, 0.4, label=r"noise $\hat Y - Y$")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, fontsize=7)
    ax.set_ylabel(r"$\|\Pi_I y\|^2 / \|y\|^2$ (rest: $\Pi_N$)")
    ax.set_title(f"information fraction over the top-{result['k']} singular space ({result['noise'].get('spec')})")
    ax.legend(fontsize=8)
    paths.append(plotting.save(fig, outdir / "split.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in reps.items():
        c = r["recovery_curve"]
        if c:
            line, = axes[0].plot([p["alpha_realized"] for p in c], [p["train_recovery"] for p in c], "o-", ms=3,
                                 label=name)
            axes[0].plot([p["alpha_realized"] for p in c], [p["threshold"] for p in c], ":", color=line.get_color())
        bp = r["beta_path"]
        line, = axes[1].semilogx([p["beta"] for p in bp], [p["train_recovery"] for p in bp], "o-", ms=3, label=name)
        if bp[0]["test_acc"] is not None:
            axes[1].semilogx([p["beta"] for p in bp], [p["test_acc"] for p in bp], "s--", ms=3,
                             color=line.get_color())
    axes[0].set_xlabel(r"realized noise rate $\alpha$")
    axes[0].set_ylabel("clean-label recovery on the training points")
    axes[0].set_title(r"ridge head (dotted: Thm 4.5 threshold $1/(1 + (n_{max}/n_{min}) c_{max})$ at each $\alpha$)",
                      fontsize=8)
    axes[1].set_xlabel(r"$\beta$ ($F$ scaled to $\sigma_1 = 1$)")
    axes[1].set_ylabel("train recovery (o) / test accuracy (s)")
    axes[1].set_title(f"beta path at {result['noise'].get('spec')}")
    axes[0].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "recovery.png"))
    return paths


def read_monitor(run_dir: Path) -> list[dict]:
    from experiments.cifar.loop import METRICS_JSONL

    path = Path(run_dir) / METRICS_JSONL
    if not path.exists():
        raise FileNotFoundError(f"run folder {run_dir} has no {METRICS_JSONL}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "spec_alignment_K" in r]
    if not rows:
        raise ValueError(f"run folder {run_dir}: {METRICS_JSONL} has no spectral monitor columns "
                         f"({', '.join(MONITOR_KEYS)}); it was written before the monitor existed")
    return rows


def plot_monitor(rows: list[dict], outdir: Path) -> Path:
    from experiments.common import plotting

    plt = plotting.pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.2))
    for ax, key, label in zip(axes, ("knn_acc",) + MONITOR_KEYS,
                              ("k-NN accuracy", "top-K alignment A(K)", "RankMe", "prominent count",
                               r"$\sigma_K / \sigma_{K+1}$")):
        ax.plot(epochs, [r.get(key) for r in rows], "o-", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
    return plotting.save(fig, Path(outdir) / "monitor.png")
