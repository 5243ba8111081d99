"""Figures of the linear-head checks (``experiments/ledger/checks/head.py``, ``flips.py``, ``contrast.py``): pure functions
of the ``data`` a check's ``run`` returns, so re-plotting never recomputes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_COLORS = {"CL": "#1f77b4", "random": "#d62728", "raw": "#2ca02c"}


def _phase_grid(points, ykey, key):
    ys = sorted({q[ykey] for q in points})
    xs = sorted({q["alpha"] for q in points})
    M = np.full((len(ys), len(xs)), np.nan)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            v = [q[key] for q in points if q[ykey] == y and q["alpha"] == x]
            if v:
                M[i, j] = np.mean(v)
    return np.asarray(xs), np.asarray(ys), M


def _edges(v):
    """Cell edges around possibly uneven centers (midpoints; half a step beyond the ends)."""
    v = np.asarray(v, dtype=float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def plot_head(data, outdir, *, tight_ratios) -> list[Path]:
    """bias^2 and variance vs beta against Eq. 15 and the A.3 bound; ``tight_ratios(q, betas, n, n_sub)`` is
    the check's tightness of both delta terms on one graph (drawn in ``head_tightness.png``)."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    paths = []
    if "thm44_curve" in data:
        cur = data["thm44_curve"]
        pts = cur["points"]
        b = [q["beta"] for q in pts]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        ax = axes[0]
        ax.loglog(b, [q["bias2"] for q in pts], "o-", label=r"bias$^2$ (Eq. 13)")
        ax.loglog(b, [q["bias_bound"] for q in pts], "k--", label=r"Eq. 15: $(\frac{\beta}{1+\beta})^2 + 3(1-\bar K/n)\frac{2\beta+1}{(\beta+1)^2}\delta$")
        ax.loglog(b, [q["bias_lead"] for q in pts], ":", color="gray", label=r"leading $(\beta/(1+\beta))^2$")
        ax.set_xlabel(r"ridge $\beta$")
        ax.set_ylabel(r"bias$^2$")
        ax.legend(fontsize=8)
        ax = axes[1]
        ax.loglog(b, [q["variance"] for q in pts], "o-", color="C1", label=r"variance $\frac{\sigma^2}{n}\sum_i b_i^2$")
        ax.loglog(b, [q["var_bound"] for q in pts], "k--", label=r"A.3 bound (with $\sqrt{\delta}/\beta$ term)")
        ax.loglog(b, [q["var_lead"] for q in pts], ":", color="gray", label=r"leading $\sigma^2\frac{\bar K}{n}\frac{1}{(\beta+1)^2}$")
        ax.set_xlabel(r"ridge $\beta$")
        ax.set_ylabel(r"variance ($\sigma=1$)")
        ax.legend(fontsize=8)
        fig.suptitle(f"Theorem 4.4: n={cur['n']}, $\\bar K$={cur['n_sub']}, p={cur['p']}, "
                     f"$\\delta$={cur['delta_real']:.3g} (realized), $\\xi$=0")
        paths.append(plotting.save(fig, outdir / "head_bias_variance.png"))
    if data.get("thm44_tight"):
        paths.append(_tightness(plt, data, outdir, tight_ratios))
    return paths


def _tightness(plt, data, outdir: Path, tight_ratios) -> Path:
    """Eq. 15's and A.3's delta terms: max over beta of (measured - leading)/(delta term) against the realized delta,
    random graphs (``thm44_grid`` at the largest p) vs structured and ascent-found W (``thm44_tight``)."""
    from experiments.common import plotting

    cur, betas = data["thm44_curve"], np.asarray(data["config"]["betas"], dtype=float)
    pmax = max(q["p"] for q in data["thm44_tight"])
    series = {"random graphs": [q for q in data["thm44_grid"] if q["p"] == pmax and q["delta"] > 0]}
    for q in data["thm44_tight"]:
        series.setdefault(q["kind"], []).append(q)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (ax, title) in enumerate(zip(axes, ("Eq. 15 delta term (C33)", r"A.3 $\sqrt{\delta}/\beta$ term (C35)"))):
        for name, pts in series.items():
            pts = sorted(pts, key=lambda q: q["delta_real"])
            r = [tight_ratios(q, betas, cur["n"], cur["n_sub"])[i] for q in pts]
            ax.semilogx([q["delta_real"] for q in pts], r, "o-" if name == "random graphs" else "s--", ms=4, label=name)
        ax.axhline(0.0, color="k", lw=1, ls=":")
        ax.set_xlabel(r"realized $\delta$")
        ax.set_ylabel(r"max$_\beta$ (measured - leading) / (delta term)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle(f"How tight Theorem 4.4's delta terms are: n={cur['n']}, $\\bar K$={cur['n_sub']}, p={pmax}, xi = 0")
    return plotting.save(fig, outdir / "head_tightness.png")


def plot_flips(data, outdir) -> list[Path]:
    """What ``data`` holds of: the phase diagrams (delta = 0) and the delta > 0 boundary (checks/flips.py),
    the GD curves and the beta path (checks/contrast.py)."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    paths = []
    if "phase_ratio" in data and "phase_c" in data:
        fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
        asym = [q for q in data["phase_ratio"] if q["kind"] == "asymmetric"]
        for col, (pts, ykey, ylabel, boundary) in enumerate((
            (asym, "ratio", r"$n_{\max}/n_{\min}$ (flips to one class, $c_{\max}=1$)",
             lambda y: 1.0 / (1.0 + y)),
            (data["phase_c"], "c_nominal", r"$c_{\max}$ (prescribed; balanced)", lambda y: 1.0 / (1.0 + y)),
        )):
            for r_i, rep in enumerate(("cl", "random")):
                ax = axes[r_i, col]
                xs, ys, M = _phase_grid(pts, ykey, rep)
                im = ax.pcolormesh(_edges(xs), _edges(ys), M, vmin=0, vmax=1, cmap="viridis", shading="flat")
                ax.grid(False)
                yy = np.linspace(ys[0], ys[-1], 100)
                ax.plot(boundary(yy), yy, "w--", lw=2, label=r"Thm 4.5: $\alpha = 1/(1+\frac{n_{\max}}{n_{\min}}c_{\max})$")
                ax.set_ylabel(ylabel)
                ax.set_title(("CL representation" if rep == "cl" else "random features") + r", recovery")
                if r_i == 1:
                    ax.set_xlabel(r"mislabeled fraction $\alpha$ (per sub-class)")
                ax.legend(loc="upper right", fontsize=7)
                fig.colorbar(im, ax=ax, label="fraction predicted with clean label")
        fig.suptitle(r"Theorem 4.5 phase diagrams ($\delta=\xi=0$, ridge $\beta$=" + f"{data.get('flip_beta', 0):g})")
        paths.append(plotting.save(fig, outdir / "head_phase_diagrams.png"))
    if "gd" in data:
        gd = data["gd"]
        steps = np.maximum(np.asarray(gd["steps"]), 0.5)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, loss in zip(axes, ("mse", "ce")):
            for rep in ("CL", "random", "raw"):
                tr = gd.get(f"{rep}/{loss}")
                if tr is None:
                    continue
                ax.semilogx(steps, tr["acc_clean"], "-", color=_COLORS[rep], label=f"{rep}: clean labels")
                ax.semilogx(steps, tr["acc_noisy"], "--", color=_COLORS[rep], label=f"{rep}: noisy labels")
            ax.set_xlabel("gradient-descent iteration t")
            ax.set_title(f"{loss.upper()} head, $\\beta$=0, $\\alpha$={gd['alpha']:.2f}")
        axes[0].set_ylabel("training accuracy")
        axes[1].legend(fontsize=7, loc="lower left")
        paths.append(plotting.save(fig, outdir / "head_gd_dynamics.png"))
    if "contrast" in data:
        con = data["contrast"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for rep, cur in con["curves"].items():
            b = [q["beta"] for q in cur]
            ax.semilogx(b, [q["acc_clean"] for q in cur], "o-", color=_COLORS[rep], label=f"{rep}: clean-label acc")
            ax.semilogx(b, [q["fit_flipped"] for q in cur], "x--", color=_COLORS[rep], label=f"{rep}: flipped labels fit")
        ax.set_xlabel(r"ridge $\beta$")
        ax.set_ylabel("fraction of training points")
        ax.set_title(f"Ridge head, symmetric flips $\\alpha$={con['alpha']:.2f}, n={con['n']}, p={con['p']}")
        ax.legend(fontsize=7)
        paths.append(plotting.save(fig, outdir / "head_contrast_beta.png"))
    if "content" in data:
        con = data["content"]
        betas = np.asarray(con["betas"])
        fig, ax = plt.subplots(figsize=(6, 4))
        base = [g for g in con["graphs"] if g["ratio"] == 1.0 and g["xi"] == 0]
        for i, (g, bd) in enumerate(zip(base, con["boundary"])):
            ax.semilogx(betas, bd, "-", color=f"C{i % 10}",
                        label=f"$\\delta$={g['delta_real']:.2g}")
            ax.axvline(10 * np.sqrt(g["delta_real"]), color=f"C{i % 10}", ls=":", lw=0.8)
        ax.axhline(0.5, color="k", ls="--", lw=0.8, label=r"Thm 4.5: $1/(1+c_{\max})$")
        ax.set_xlabel(r"ridge $\beta$ (dotted: $10\sqrt{\delta}$, the regime of C37)")
        ax.set_ylabel(r"last fully recovered $\alpha$")
        ax.set_title(r"Theorem 4.5 with $\delta>0$: balanced, $c_{\max}=1$, $\xi=0$, $F^*\Sigma$")
        ax.legend(fontsize=7)
        paths.append(plotting.save(fig, outdir / "head_flip_boundary_delta.png"))
    return paths


def plot_contrast(data, outdir) -> list[Path]:
    """The GD curves and the beta path of checks/contrast.py (see :func:`plot_flips`)."""
    return plot_flips(data, outdir)
