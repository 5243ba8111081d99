"""Figures of the Theorem 4.3 checks (``experiments.ledger.checks.thm43``): pure functions of its saved data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from theory import bounds


def _spectrum(plt, sw, outdir: Path) -> Path:
    """The singular values of F vs delta (xi = 0), and what xi changes: the drop of the top K-bar
    below 1 and the change of the tail, each on its own log axis so that no two curves overlap."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    from experiments.common import plotting

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    cmap = plt.get_cmap("viridis")

    def first(kind):
        pts = [pt for pt in sw[kind] if pt["seed"] == min(q["seed"] for q in sw[kind])]
        name = pts[0]["partition"] if pts else ""
        return [pt for pt in pts if pt["partition"] == name], name

    def sv(pt):
        return np.sqrt(np.maximum(np.asarray(pt["eigvals"]), 0.0))

    pts, name = first("delta")
    vals = sorted({pt["delta"] for pt in pts})
    for j, v in enumerate(vals):
        s = sv(next(q for q in pts if q["delta"] == v))
        axes[0].semilogy(np.arange(1, s.size + 1), np.maximum(s, 1e-16), "o-", ms=3, lw=1,
                         color=cmap(j / max(len(vals) - 1, 1)), label=rf"$\delta$ = {v:g}")
    if pts:
        axes[0].axvline(pts[0]["n_sub"] + 0.5, color="k", ls=":", lw=1, label=r"$\bar K$ + 1/2")
    axes[0].set_title(rf"$\sigma_i(F)$ vs $\delta$, $\xi$ = 0 ({name})")
    axes[0].set_ylabel(r"$\sigma_i(F) = \sqrt{\max(\lambda_i, 0)}$")

    pts, name = first("xi")
    base = next((q for q in pts if q["xi"] == 0), None)
    vals = sorted({pt["xi"] for pt in pts if pt["xi"] > 0})
    for j, v in enumerate(vals):
        pt = next(q for q in pts if q["xi"] == v)
        s, K = sv(pt), pt["n_sub"]
        c = cmap(j / max(len(vals) - 1, 1))
        axes[1].semilogy(np.arange(1, K + 1), np.maximum(1.0 - s[:K], 1e-17), "o-", ms=3, lw=1, color=c, label=rf"$\xi$ = {v:g}")
        if base is not None:
            d = np.abs(s[K:] - sv(base)[K:])
            axes[2].semilogy(np.arange(K + 1, s.size + 1), np.maximum(d, 1e-17), "o-", ms=3, lw=1, color=c, label=rf"$\xi$ = {v:g}")
    delta = pts[0]["delta"] if pts else 0.0
    axes[1].set_title(rf"top $\bar K$: $1 - \sigma_i(F)$ vs $\xi$ ($\delta$ = {delta:g})")
    axes[1].set_ylabel(r"$1 - \sigma_i(F)$, $i \leq \bar K$")
    axes[2].set_title(rf"tail: $|\sigma_i(F) - \sigma_i(F; \xi = 0)|$ ($\delta$ = {delta:g})")
    axes[2].set_ylabel(r"change of $\sigma_i(F)$, $i > \bar K$, from $\xi$ = 0")
    for ax in axes:
        ax.set_xlabel("index i")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return plotting.save(fig, outdir / "thm43_spectrum.png")


def _tightness(plt, sw, outdir: Path, xi_ratios) -> Path:
    """measured / bound against delta (top row: Appendix A, xi = 0) and against xi (bottom row: Lemmas B.1-B.2,
    App. B.2) for the random graphs (worst over partitions and seeds) and each structured / adversarial
    construction (``experiments.ledger.checks.thm43._constructions``); ``xi_ratios`` maps a claim to its
    measured / bound at one point of the xi sweep (the check's own rule, so the figure shows what is judged)."""
    from experiments.common import plotting

    fams = (("Cor. A.5 (C6)", lambda pt: max(e / b if b > 0 else 0.0 for e, b in
                                            zip(pt["eig2"], bounds.block_eig_upper(np.asarray(pt["sizes"]), pt["delta_r"])))),
            ("Lemma A.4 - 1 (C5)", lambda pt: max((e - 1.0) / (b - 1.0) for e, b in
                                                zip(pt["eig_sq_sum"], bounds.block_eig_sq_sum_upper(np.asarray(pt["sizes"]), pt["delta_r"])))),
            ("Eq. 12 leading (C7)", lambda pt: max(pt["tail_sq"]) / float(bounds.eq12_leading(pt["delta_r"]))),
            ("Cor. A.6 leading (C9)", lambda pt: pt["tail_sum"] / float(bounds.cor_a6_global_leading(pt["p"], pt["n_sub"], pt["delta_r"]))))
    xi_fams = (("Lemma B.1 entries (C13)", "C13"), ("Lemma B.1 ||H||_F (C14)", "C14"),
               ("Weyl, (1 - $\\tilde\\lambda_{\\bar K}$)/$\\|E\\|_2$ (C16)", "C16"), ("App. B.2 bias (C27)", "C27"))
    fig, axes = plt.subplots(2, len(fams), figsize=(16, 7.6))
    rand = [pt for pt in sw["delta"] if pt["delta_r"] > 0]
    tight = sw.get("tight", [])
    for ax, (name, ratio) in zip(axes[0], fams):
        ds = sorted({pt["delta"] for pt in rand})
        worst = [max(ratio(pt) for pt in rand if pt["delta"] == d) for d in ds]
        ax.loglog([max(pt["delta_r"] for pt in rand if pt["delta"] == d) for d in ds], worst, "o-", ms=4, label="random (worst)")
        for kind in dict.fromkeys(pt.get("construction", "two-level") for pt in tight):
            pts = sorted((pt for pt in tight if pt.get("construction", "two-level") == kind), key=lambda q: q["delta_r"])
            ax.loglog([pt["delta_r"] for pt in pts], [ratio(pt) for pt in pts], "s--", ms=4, label=kind)
        ax.axhline(1.0, color="k", lw=1, ls=":")
        ax.set_xlabel(r"realized $\delta$")
        ax.set_ylabel("measured / bound")
        ax.set_title(name)
        ax.legend(fontsize=7)
    xi_rand, flat = [pt for pt in sw.get("xi", []) if pt["xi_r"] > 0], sw.get("tight_xi", [])
    for ax, (name, cid) in zip(axes[1], xi_fams):
        xs = sorted({pt["xi"] for pt in xi_rand})
        ax.semilogx([max(pt["xi_r"] for pt in xi_rand if pt["xi"] == x) for x in xs],
                    [max(xi_ratios[cid](pt) for pt in xi_rand if pt["xi"] == x) for x in xs], "o-", ms=4,
                    label=f"random (worst), delta = {xi_rand[0]['delta']:g}" if xi_rand else "random")
        if flat:
            ax.semilogx([pt["xi_r"] for pt in flat], [xi_ratios[cid](pt) for pt in flat], "s--", ms=4,
                        label="flat cross = xi, delta = 0")
        ax.axhline(1.0, color="k", lw=1, ls=":")
        ax.set_xlabel(r"realized $\xi$")
        ax.set_ylabel("measured / bound")
        ax.set_title(name)
        ax.legend(fontsize=7)
    return plotting.save(fig, outdir / "thm43_tightness.png")


def plot(data: dict, outdir: Path, *, xi_ratios) -> list[Path]:
    """The figures of ``experiments.ledger.checks.thm43``, a pure function of its ``data``."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    sw = data["sweeps"]
    paths = [_spectrum(plt, sw, outdir), _tightness(plt, sw, outdir, xi_ratios)]

    # 2. alignment vs delta and xi against bounds
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in sorted({pt["partition"] for pt in sw["delta"]}):
        pts = sorted([pt for pt in sw["delta"] if pt["partition"] == name and pt["delta_r"] > 0], key=lambda q: q["delta_r"])
        if not pts:
            continue
        x = [pt["delta_r"] for pt in pts]
        l, = axes[0].loglog(x, [max(1 - pt["align"], 1e-16) for pt in pts], "o", ms=4, label=f"measured, {name}")
        axes[0].loglog(x, [1 - bounds.alignment_lower_exact(pt["sizes"], pt["delta_r"]) for pt in pts], "-",
                       color=l.get_color(), lw=1, label="Lemma A.3 bound")
        axes[0].loglog(x, [1 - bounds.alignment_lower_leading(pt["sizes"], pt["delta_r"]) for pt in pts], "--",
                       color=l.get_color(), lw=1, label="Eq. 25 leading term")
    axes[0].set_xlabel(r"realized $\delta$ ($\xi = 0$)")
    axes[0].set_ylabel(r"misalignment $1 - \|V_I V_I^\top Y\|_F^2 / n$")
    axes[0].set_title("Eq. 25: measured (dots) must stay below the bounds (lines)")
    axes[0].legend(fontsize=6)
    for name in sorted({pt["partition"] for pt in sw["xi"]}):
        pts = sorted([pt for pt in sw["xi"] if pt["partition"] == name and pt["xi_r"] > 0], key=lambda q: q["xi_r"])
        if not pts:
            continue
        x = [pt["xi_r"] for pt in pts]
        axes[1].loglog(x, [max(pt["align_bar"] - pt["align_tilde"], 1e-16) for pt in pts], "o", ms=4,
                       label=f"drop, {name}")
    axes[1].set_xlabel(r"realized $\xi$ ($\delta$ = " + f"{sw['xi'][0]['delta'] if sw['xi'] else 0.0:g})")
    axes[1].set_ylabel(r"$\|V_I V_I^\top Y\|_F^2 - \|\tilde V_I \tilde V_I^\top Y\|_F^2$")
    axes[1].set_title(r"Lemma B.3: alignment drop, claimed $O(n \bar K^2 \xi)$")
    axes[1].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "thm43_alignment.png"))

    # 3. eigenvalue sums: measured vs bound
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    pts = [pt for pt in sw["delta"] if pt["delta_r"] > 0]
    for name in sorted({pt["partition"] for pt in pts}):
        sel = sorted([pt for pt in pts if pt["partition"] == name], key=lambda q: q["delta_r"])
        x = [pt["delta_r"] for pt in sel]
        l, = axes[0].loglog(x, [pt["tail_sum"] for pt in sel], "o", ms=4, label=f"measured, {name}")
        axes[0].loglog(x, [bounds.cor_a6_global_leading(pt["p"], pt["n_sub"], pt["delta_r"]) for pt in sel], "-",
                       color=l.get_color(), lw=1)
        l, = axes[1].loglog(x, [max(pt["tail_sq"]) for pt in sel], "o", ms=4, label=f"measured, {name}")
        axes[1].loglog(x, [float(bounds.eq12_leading(pt["delta_r"])) for pt in sel], "-", color="k", lw=1)
        axes[1].loglog(x, [max(bounds.block_eig_sq_sum_upper(pt["sizes"], pt["delta_r"])) - 1 for pt in sel], ":",
                       color=l.get_color(), lw=1)
    axes[0].set_xlabel(r"realized $\delta$")
    axes[0].set_ylabel(r"$\sum_{i=\bar K+1}^{p} \lambda_i$")
    axes[0].set_title(r"Cor. A.6: measured (dots) vs $2\sqrt{(p-\bar K)\bar K\delta'}$ (lines)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel(r"realized $\delta$")
    axes[1].set_ylabel(r"$\max_{\bar k} \sum_{i\geq 2} \lambda_{\bar k,i}^2$")
    axes[1].set_title(r"Eq. 12: measured vs $4\delta'$ (solid), Lemma A.4 (dotted)")
    axes[1].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "thm43_eigensums.png"))
    return paths
