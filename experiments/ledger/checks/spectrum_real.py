"""The theory's structure on real CIFAR-10 features, CPU-scale (C80-C89): SimCLR vs random init vs raw pixels.

Reads the committed evidence file ``experiments/ledger/evidence/spectrum_cpu.json``: the output of
``clspec spectrum`` (see :data:`COMMAND`) on the ``cpu``-preset SimCLR checkpoint (ResNet-32, 16 epochs
on 8,000 CIFAR-10 training images, the preset as re-sized on 2026-12-01; the file before used the old
4,000 x 12 checkpoint), measured on the ``cpu`` training preset's 4,000 images (a class-balanced draw
inside the 8,000), with the random initialization of the same network and the raw pixels of the same
4,000 images as baselines, at symmetric noise 0.8. The rows
hold the theory's qualitative statements (Theorem 4.3 (i)-(ii), the split of C47, Theorem 4.5,
the contrast of C42/C43) against those numbers; each row can fail. They are CPU-scale: 16 epochs
of SimCLR on 8,000 images is far from the paper's 1000 epochs on 50,000, so a FAIL here is a
finding about a briefly trained encoder, not a refutation of the paper. Without the evidence
file every claim gets an INFO row saying it was skipped and why.

Claim IDs C80-C89 (the ranges of :mod:`experiments.ledger.claims` end at C79).
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.ledger.claims import GE, INFO, LE, Claim, by_id, no_progress, row

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "spectrum_cpu.json"
COMMAND = ("clspec spectrum --checkpoint results/cifar/pretrain-cpu --limit 4000 --test-limit 1000 "
           "--noise sym:0.8 --baseline random raw --out results/spectrum/cpu")
CL, RANDOM, RAW = "checkpoint-pretrain-resnet32/encoder", "random/encoder", "raw/pixels"
CL_PROJ, RANDOM_PROJ = "checkpoint-pretrain-resnet32/projection", "random/projection"

CLAIMS = (
    Claim("C80", "Thm 4.3 (ii), Eq. 25", "Real features: the top-K alignment ||V_K V_K^T Y||_F^2 / n of the SimCLR "
          "encoder is higher than that of the same network at random initialization."),
    Claim("C81", "Thm 4.3 (ii), Eq. 25", "Real features: the SimCLR encoder's top-K alignment is higher than that "
          "of the raw pixels."),
    Claim("C82", "Thm 4.3 (i)", "Real features: the SimCLR encoder has at least K prominent singular values "
          "(largest log-gap rule; the theory predicts K-bar >= K)."),
    Claim("C83", "Thm 4.3 / App. C (C47)", "Real features: the label noise Y_noisy - Y puts a smaller fraction of its "
          "energy in the top-K singular space than the clean labels do (SimCLR encoder, sym 0.8)."),
    Claim("C84", "Thm 4.5, Cor 4.6", "Real features: below the threshold 1/(1 + (n_max/n_min) c_max) the ridge head "
          "on the SimCLR encoder recovers the clean label of every training point (sym 0.8)."),
    Claim("C85", "Sec. 4.1 (contrast, C42)", "Real features: at the same beta, the ridge head on the SimCLR encoder "
          "recovers more clean training labels than on the random-init encoder (sym 0.8)."),
    Claim("C86", "Sec. 4.1 (contrast, C43)", "Real features: at the same beta, the ridge head on the SimCLR encoder "
          "recovers more clean training labels than on the raw pixels (sym 0.8)."),
    Claim("C87", "Sec. 4.1 (contrast, C43)", "Real features: as beta -> 0 the head on the raw pixels memorizes at least "
          "as many flipped labels as the head on the SimCLR encoder."),
    Claim("C88", "Sec. 2 (encoder vs projection)", "The theory's f is the encoder; SimCLR's loss sees the "
          "projection: top-K alignment, prominent count and RankMe of both."),
    Claim("C89", "label-free ranks", "RankMe (both variants), effective rank and alpha-ReQ of CL, random-init and "
          "raw-pixel features."),
)
C = by_id(CLAIMS)


def run(preset: str, *, seed: int = 0, progress=no_progress, evidence: Path | str | None = None):
    """Rows from the evidence file (the preset and seed do not change it: it is a recorded run)."""
    from experiments.ledger.claims import recorded_evidence

    path, skipped = recorded_evidence(preset, evidence, EVIDENCE, CLAIMS,
                                      f"produce it with `{COMMAND}` and copy spectrum.json there")
    if skipped:
        return skipped, {}
    result = json.loads(path.read_text())
    data = {"evidence": str(path), "result": _small(result), "judged": _judged(result)}
    return judge(data), data


def judge(data: dict) -> list:
    """The rows from a run's ``data["judged"]``: the evidence's numbers that the rows read."""
    return rows_from_evidence(data["judged"])


def _judged(result: dict) -> dict:
    """The evidence without its per-direction arrays (singular values, alignment curve), which no row reads."""
    drop = ("sigma", "sigma_centred", "alignment")
    return {**result, "representations": {name: {k: v for k, v in r.items() if k not in drop}
                                          for name, r in result["representations"].items()}}


def _small(result: dict) -> dict:
    """What the figure needs (alignment curves, recovery curves), not every singular value."""
    reps = {}
    for name, r in result["representations"].items():
        reps[name] = {"alignment": r["alignment"][:64], "recovery_curve": r["recovery_curve"],
                      "sigma": r["sigma"][:64]}
    return {"num_classes": result["num_classes"], "representations": reps}


def rows_from_evidence(result: dict) -> list:
    reps = result["representations"]
    K = result["num_classes"]
    meta = (f"CPU-scale; n={result['n_train']}, K={K}, noise {result['noise']['spec']} (realized "
            f"{result['noise']['rate']:.3f}), beta={result['settings']['beta']:g} on F/s_1; "
            f"{result.get('commit', '?')[:10] if result.get('commit') else 'commit ?'} {result.get('date', '')}")
    rows = []
    missing = [n for n in (CL, RANDOM, RAW) if n not in reps]
    if missing:
        note = f"skipped: the evidence has no {', '.join(missing)} (has {', '.join(reps)})"
        return [row(c, 0.0, None, "", verdict=INFO, setting="CPU-scale", note=note) for c in CLAIMS]
    cl, rnd, raw = reps[CL], reps[RANDOM], reps[RAW]

    def pair(cid, key, a, b, relation, what):
        va, vb = _get(a, key), _get(b, key)
        return row(C[cid], va, vb, relation, setting=meta, note=f"{what}: measured = CL encoder, bound = {vb:.4g}")

    rows.append(pair("C80", "alignment_K", cl, rnd, GE, f"A(K) CL {_get(cl, 'alignment_K'):.4f} vs random init"))
    rows.append(pair("C81", "alignment_K", cl, raw, GE, f"A(K) CL {_get(cl, 'alignment_K'):.4f} vs raw pixels"))
    rows.append(row(C["C82"], cl["prominent"], K, GE, setting=meta,
                    note=f"largest log-gap rule on the uncentred singular values; centred: {cl['prominent_centred']}; "
                         f"random init {rnd['prominent']}/{rnd['prominent_centred']}, raw {raw['prominent']}/"
                         f"{raw['prominent_centred']} (uncentred/centred); s_K/s_K+1 CL {cl['gap_K']:.3g}, random "
                         f"{rnd['gap_K']:.3g}, raw {raw['gap_K']:.3g}"))
    fn, fc = cl["split_noise"]["information_fraction"], cl["split_clean"]["information_fraction"]
    rows.append(row(C["C83"], fn, fc, LE, setting=meta,
                    note=f"||Pi_I dY||^2/||dY||^2 (measured) vs ||Pi_I Y||^2/||Y||^2 (bound), top-{result['k']}; "
                         f"random init {rnd['split_noise']['information_fraction']:.4f} vs "
                         f"{rnd['split_clean']['information_fraction']:.4f}, raw "
                         f"{raw['split_noise']['information_fraction']:.4f} vs "
                         f"{raw['split_clean']['information_fraction']:.4f}"))
    h = cl["head"]
    below = h["alpha_realized"] < h["threshold"]
    curve = cl["recovery_curve"]
    rows.append(row(C["C84"], h["train_recovery"], 1.0, GE, setting=meta,
                    verdict=None if below else INFO,
                    note=(f"alpha {h['alpha_realized']:.3f} {'<' if below else '>='} threshold {h['threshold']:.4f} "
                          f"(realized c_max {h['c_max']:.4f}, n_max/n_min {h['n_max_over_n_min']:.3f}); "
                          f"recovery at alpha = 0: {curve[0]['train_recovery']:.4f}" if curve else "")
                    + ("" if below else "; the theorem says nothing above its threshold")))
    rows.append(row(C["C85"], h["train_recovery"], rnd["head"]["train_recovery"], GE, setting=meta,
                    note=f"train recovery; test accuracy CL {_opt(h['test_acc'])} vs random {_opt(rnd['head']['test_acc'])}"))
    rows.append(row(C["C86"], h["train_recovery"], raw["head"]["train_recovery"], GE, setting=meta,
                    note=f"train recovery; test accuracy CL {_opt(h['test_acc'])} vs raw {_opt(raw['head']['test_acc'])}"))
    b_cl, b_raw = cl["beta_path"][0], raw["beta_path"][0]
    rows.append(row(C["C87"], b_cl["noisy_memorized"], b_raw["noisy_memorized"], LE, setting=meta + f"; beta={b_cl['beta']:g}",
                    note=f"fraction of flipped labels fitted: CL {b_cl['noisy_memorized']:.4f} (d={cl['d']}) vs raw "
                         f"{b_raw['noisy_memorized']:.4f} (d={raw['d']}), random init "
                         f"{rnd['beta_path'][0]['noisy_memorized']:.4f}"))
    proj = reps.get(CL_PROJ)
    if proj is not None:
        rows.append(row(C["C88"], proj["alignment_K"], None, "", verdict=INFO, setting=meta,
                        note=f"projection A(K) {proj['alignment_K']:.4f} vs encoder {cl['alignment_K']:.4f}; prominent "
                             f"{proj['prominent']} vs {cl['prominent']}; RankMe {proj['rankme']:.2f} vs {cl['rankme']:.2f}"))
    else:
        rows.append(row(C["C88"], 0.0, None, "", verdict=INFO, setting=meta, note="skipped: no projection output in the evidence"))
    rows.append(row(C["C89"], cl["rankme"], None, "", verdict=INFO, setting=meta,
                    note="; ".join(f"{label}: RankMe {r['rankme']:.2f}, RankMe-PCA {r['rankme_pca']:.2f}, erank "
                                   f"{r['effective_rank']:.2f}, alpha-ReQ {_alpha(r)}"
                                   for label, r in (("CL", cl), ("random", rnd), ("raw", raw)))))
    return rows


def _get(r: dict, key: str) -> float:
    return float(r[key])


def _opt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _alpha(r: dict) -> str:
    a = r.get("alpha_req")
    return "-" if a is None else f"{a['alpha']:.3g} (R^2 {a['r2']:.3g}, ranks {a['fit_ranks'][0]}-{a['fit_ranks'][1]})"


def plot(data: dict, outdir) -> list:
    """Alignment A(k) for k <= 64 and recovery vs alpha of the evidence's representations."""
    if not data or "result" not in data:
        return []
    import numpy as np

    from experiments.common import plotting

    plt = plotting.pyplot()
    res = data["result"]
    K = res["num_classes"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in res["representations"].items():
        A = np.asarray(r["alignment"])
        axes[0].plot(np.arange(1, len(A) + 1), A, ".-", ms=3, label=name)
        c = r["recovery_curve"]
        if c:
            line, = axes[1].plot([p["alpha_realized"] for p in c], [p["train_recovery"] for p in c], "o-", ms=3,
                                 label=name)
            axes[1].plot([p["alpha_realized"] for p in c], [p["threshold"] for p in c], ":", color=line.get_color())
    axes[0].axvline(K, color="k", ls="--", lw=1)
    axes[0].set_xlabel("k")
    axes[0].set_ylabel(r"$\|V_k V_k^\top Y\|_F^2 / n$")
    axes[0].set_title("CIFAR-10 (CPU-scale): alignment with the clean labels")
    axes[1].set_xlabel(r"realized noise rate $\alpha$ (sym)")
    axes[1].set_ylabel("clean-label recovery on the training points")
    axes[1].set_title("ridge head; dotted: Thm 4.5 threshold")
    axes[0].legend(fontsize=7)
    return [plotting.save(fig, Path(outdir) / "spectrum_real.png")]
