"""C110-C119: do the theory's quantities improve as the encoder gets better? CPU-scale, over the course of SimCLR pre-training.

Reads the committed evidence file ``experiments/ledger/evidence/trend_cpu.json``, written by
``clspec trend`` (:data:`COMMAND`, ``experiments/analysis/trend.py``) from the checkpoints the ``cpu``
pre-training run kept after epochs 0 (its initialization), 1, 2, 4, 8 and 16 (ResNet-32, SimCLR on
8,000 CIFAR-10 training images). At every checkpoint the job measures, with the code behind the rows
named below and their settings:

* encoder quality: the k-NN accuracy of the sizing evidence (``experiments/cifar/sizing.py``: k = 20,
  t = 0.1, memory bank the 4,000-image ``cpu`` training subset with clean labels, all 10,000 test
  images; binomial standard error ~0.005), not the run's own monitor (1,000-image bank, 1,000 test
  images, no value at epoch 0), which the evidence records beside it;
* ``clspec spectrum --limit 4000 --test-limit 1000 --noise sym:0.8`` (the settings of C80-C89's
  ``spectrum_cpu.json``), encoder output: top-K alignment A(K) (C80), the prominent count of the
  largest log-gap rule (C82), s_{K+1}/s_K (C82's note), the ridge head's clean-label recovery at
  beta = 1e-3 (C84-C86) against Theorem 4.5's threshold, RankMe (C89);
* ``clspec jacobian --network resnet32 --n 200 --method gram`` (the exact full Gram at 200
  class-balanced test points, the head the seed-0 draw as in C95-C97; n = 1,000 by Lanczos costs
  ~9 min per network on this machine, so n = 200 was fixed before any measurement): ||Pi_I(y)||
  (top-10, C96) and ||J J^T y|| / ||J J^T||_F (C97).

Statistic and decision rule, fixed and committed before any real checkpoint was measured:

* For a quantity q with a predicted direction d (+1: larger with a better encoder, -1: smaller),
  measured at the n checkpoints with k-NN accuracies a_1..a_n: Spearman's rank correlation
  rho(q, a) (Pearson's correlation of the average ranks; a constant q has rho = 0), and its exact
  one-sided permutation p-value in the predicted direction, p = #{orderings pi of q over the n
  checkpoints with d rho(q o pi, a) >= d rho(q, a)} / n! (all n! orderings for n <= 8; 100,000
  seeded random orderings beyond, p = (1 + count) / (1 + 100,000)). Level: LEVEL = 0.05 one-sided,
  per row, not corrected for the six judged rows (they are not independent: every quantity is
  measured on the same checkpoints).
* The row: measured rho, bound d * r_crit where r_crit is the smallest value of d rho in the
  permutation distribution whose upper tail is <= LEVEL (so ``d rho >= r_crit`` exactly when
  p <= LEVEL; for n = 6 without ties r_crit = 0.829). PASS when d rho >= r_crit (the predicted
  direction, significant); FAIL when d rho <= 0 (the wrong direction, significant or not, or no
  monotone association at all); INFO "right direction, not significant" when 0 < d rho < r_crit,
  and INFO when n < 4 (n! < 1 / LEVEL: no ordering could reach the level) or when no ordering of
  the values reaches the level (ties). Without the evidence file every row is INFO "skipped".
* Reported beside the test, not judged (added 2026-12-03 18:30 UTC, after the rows above had been
  measured, so it changes no verdict): a bootstrap 95% interval of rho, the 2.5 and 97.5 percentiles
  of rho over BOOT_RESAMPLES resamplings of the n (quantity, k-NN) pairs with replacement (seed 0;
  a resample in which either is constant has rho 0). At n = 6 it is wide and, with ties in the
  resamples, coarse: it shows how little six checkpoints pin rho down.
* The permutation null treats the n checkpoints as exchangeable. They are one training run, so a
  PASS says that the quantity rises (falls) with k-NN along this run's trajectory, not across
  independently trained encoders.

Directions, from the paper:

* C110 A(K), d = +1: Thm 4.3 (ii) / Eq. 25, the alignment of the top-K-bar space is 1 - O(delta) for
  f_min, approached as the encoder nears it; C80 holds SimCLR above random init.
* C111 prominent count, d = +1: Thm 4.3 (i), f_min has K-bar >= K prominent singular values; the
  count is expected to grow toward K-bar as the encoder improves (C82 holds it to >= K).
* C112 s_{K+1}/s_K, d = -1: Thm 4.3 (i) / Cor. A.5, the values beyond the prominent ones are
  O(sqrt(delta)); the gap is at K-bar, read at K as C82 reads it (K-bar = K: a class is a sub-class).
* C113 ridge recovery, d = +1: Thm 4.5 / Cor. 4.6, below the threshold every clean label is
  recovered as delta -> 0 (C84); C85/C86 hold SimCLR above random init and raw pixels.
* C114 RankMe, no direction: the paper states none (a label-free rank, C89); INFO with rho and the
  two-sided p.
* C115 ||Pi_I(y)||, d = +1 and C116 ||J J^T y|| / ||J J^T||_F, d = +1: App. C Table 4, whose three
  rows are ordered by the length of pre-training (random init < SimCLR 100 < SimCLR 1000 epochs in
  both columns), C96 and C97.

C117-C119, INFO only (never PASS): where the final checkpoint (the highest epoch) misses the bound of
C82 (prominent >= K), C84 (recovery 1 below the threshold) or C96 (||Pi_I(y)|| >= the network's
initialization, here the epoch-0 checkpoint of the same run) while the linear least-squares fit of
the quantity on k-NN over the n checkpoints slopes toward it, the k-NN at which that line reaches
the bound, labelled an extrapolation; otherwise the row says why there is none.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from experiments.ledger.claims import GE, INFO, LE, Claim, by_id, no_progress, row

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "trend_cpu.json"
COMMAND = ("clspec trend /work/runs/pretrain-cpu-keep --out results/trend/cpu "
           "--evidence experiments/ledger/evidence/trend_cpu.json")
LEVEL = 0.05  # one-sided level of every judged row (module docstring)
MIN_CHECKPOINTS = 4  # 4! = 24 orderings: the smallest n whose best p (1/n!) is below LEVEL
EXACT_MAX_N = 8  # all n! orderings up to 8! = 40,320; seeded random orderings beyond
RANDOM_ORDERINGS = 100_000
DIGITS = 10  # rho values are compared after rounding to 1e-10 (round-off of equal rank correlations)
BOOT_RESAMPLES = 10_000  # the reported (not judged) bootstrap interval of rho

# (claim, key in a checkpoint record, label, predicted direction; 0: none)
QUANTITIES = (
    ("C110", "alignment_K", "A(K)", +1),
    ("C111", "prominent", "prominent count", +1),
    ("C112", "gap_ratio", "s_{K+1}/s_K", -1),
    ("C113", "train_recovery", "ridge clean recovery", +1),
    ("C114", "rankme", "RankMe", 0),
    ("C115", "pi_I", "||Pi_I(y)||", +1),
    ("C116", "ratio", "||JJ^Ty||/||JJ^T||_F", +1),
)

CLAIMS = (
    Claim("C110", "Thm 4.3 (ii), Eq. 25 (C80), CPU-scale trend",
          "Over the checkpoints of SimCLR pre-training, the encoder's top-K alignment ||V_K V_K^T Y||_F^2 / n rises "
          "with k-NN accuracy (Spearman rho > 0, exact one-sided permutation p <= 0.05)"),
    Claim("C111", "Thm 4.3 (i) (C82), CPU-scale trend",
          "The prominent singular-value count (largest log-gap rule) rises with k-NN accuracy (rho > 0, p <= 0.05)"),
    Claim("C112", "Thm 4.3 (i), Cor. A.5 (C82), CPU-scale trend",
          "s_{K+1}/s_K of the encoder's features falls as k-NN accuracy rises (rho < 0, p <= 0.05)"),
    Claim("C113", "Thm 4.5, Cor. 4.6 (C84-C86), CPU-scale trend",
          "The ridge head's clean-label recovery on the training points (sym 0.8, beta = 1e-3) rises with k-NN "
          "accuracy (rho > 0, p <= 0.05)"),
    Claim("C114", "label-free rank (C89), CPU-scale trend",
          "RankMe of the encoder's features against k-NN accuracy (the paper predicts no direction)"),
    Claim("C115", "App. C Table 4 (C96), CPU-scale trend",
          "ResNet-32, n = 200 test points, top-10: ||Pi_I(y)|| rises with k-NN accuracy (rho > 0, p <= 0.05)"),
    Claim("C116", "App. C Table 4 (C97), CPU-scale trend",
          "ResNet-32, n = 200: ||J J^T y|| / ||J J^T||_F rises with k-NN accuracy (rho > 0, p <= 0.05)"),
    Claim("C117", "Thm 4.3 (i) (C82 bound), extrapolation",
          "Where the final checkpoint has fewer than K prominent values but the count trends up: the k-NN at which "
          "the linear fit reaches K (an extrapolation)"),
    Claim("C118", "Thm 4.5 (C84 bound), extrapolation",
          "Where the final checkpoint's recovery is below 1 (below the threshold) but trends up: the k-NN at which "
          "the linear fit reaches 1 (an extrapolation)"),
    Claim("C119", "App. C Table 4 (C96 bound), extrapolation",
          "Where the final checkpoint's ||Pi_I(y)|| is below the initialization's but trends up: the k-NN at which "
          "the linear fit reaches the initialization's value (an extrapolation)"),
)
C = by_id(CLAIMS)


# ----------------------------------------------------------------------------- the statistic


def average_ranks(x) -> np.ndarray:
    """Ranks 1..n of ``x``, ties given the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def _pearson_rows(rx: np.ndarray, RY: np.ndarray) -> np.ndarray:
    """Pearson's correlation of ``rx`` with each row of ``RY``; 0 where either is constant."""
    a = rx - rx.mean()
    B = RY - RY.mean(axis=-1, keepdims=True)
    den = np.sqrt(np.sum(a * a) * np.sum(B * B, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (B @ a) / den
    return np.where(den > 0, r, 0.0)


def spearman(x, y) -> float:
    """Spearman's rho of ``x`` and ``y`` (Pearson on average ranks); 0 when either is constant."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"x and y must have the same length >= 2, got {len(x)} and {len(y)}")
    return float(_pearson_rows(average_ranks(x), average_ranks(y)[None, :])[0])


def permutation_rhos(q, a, *, seed: int = 0) -> np.ndarray:
    """rho(q o pi, a) over every ordering pi of ``q`` (n <= EXACT_MAX_N), else over RANDOM_ORDERINGS seeded ones."""
    rq, ra = average_ranks(q), average_ranks(a)
    n = len(rq)
    if n <= EXACT_MAX_N:
        perms = np.asarray(list(itertools.permutations(range(n))))
    else:
        rng = np.random.default_rng(seed)
        perms = np.argsort(rng.random((RANDOM_ORDERINGS, n)), axis=1)
    return _pearson_rows(ra, rq[perms])


def trend_test(q, a, direction: int) -> dict:
    """The module's statistic: rho, the one-sided p in ``direction`` (+1 or -1), the critical value r_crit
    of d rho (None when no ordering reaches LEVEL), the two-sided p, n."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    q, a = np.asarray(q, dtype=np.float64), np.asarray(a, dtype=np.float64)
    if q.shape != a.shape or q.ndim != 1 or len(q) < 2:
        raise ValueError(f"q and a must be 1-d of one length >= 2, got shapes {q.shape} and {a.shape}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(a))):
        raise ValueError("q and a must be finite")
    rho = spearman(q, a)
    dist = np.round(direction * permutation_rhos(q, a), DIGITS)
    obs = round(direction * rho, DIGITS)
    exact = len(q) <= EXACT_MAX_N
    count = int(np.sum(dist >= obs))
    p = count / len(dist) if exact else (1 + count) / (1 + len(dist))
    both = np.abs(dist)
    count2 = int(np.sum(both >= abs(obs)))
    p2 = count2 / len(dist) if exact else (1 + count2) / (1 + len(dist))
    crit = None
    for v in np.unique(dist):  # ascending: the first value whose upper tail is within the level
        if np.mean(dist >= v) <= LEVEL:
            crit = float(v) if v > 0 else None  # a tail that is all of one sign is no test of the direction
            break
    return {"n": len(q), "rho": rho, "p": p, "p_two_sided": p2, "r_crit": crit, "exact": exact,
            "orderings": len(dist)}


def bootstrap_interval(q, a, *, level: float = 0.95, resamples: int = BOOT_RESAMPLES, seed: int = 0):
    """The percentile bootstrap interval of Spearman's rho(q, a): the n pairs resampled with replacement
    ``resamples`` times (seed ``seed``), rho of each resample (0 where either side is constant)."""
    from scipy.stats import rankdata

    q, a = np.asarray(q, dtype=np.float64), np.asarray(a, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(q), size=(resamples, len(q)))
    rq, ra = rankdata(q[idx], axis=1), rankdata(a[idx], axis=1)  # average ranks of ties, row by row
    cq, ca = rq - rq.mean(axis=1, keepdims=True), ra - ra.mean(axis=1, keepdims=True)
    den = np.sqrt(np.sum(cq * cq, axis=1) * np.sum(ca * ca, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, np.sum(cq * ca, axis=1) / den, 0.0)
    lo, hi = np.percentile(rho, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def linear_fit(x, y) -> tuple[float, float, float]:
    """Least-squares ``y = intercept + slope x``: (intercept, slope, R^2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (intercept + slope * x)
    tot = float(np.sum((y - y.mean()) ** 2))
    return float(intercept), float(slope), (1.0 - float(np.sum(res**2)) / tot) if tot > 0 else float("nan")


# ----------------------------------------------------------------------------- run / judge


def run(preset: str, *, seed: int = 0, progress=no_progress, evidence: Path | str | None = None):
    """Rows from the evidence file (a recorded run: the preset and seed do not change it)."""
    from experiments.ledger.claims import recorded_evidence

    path, skipped = recorded_evidence(preset, evidence, EVIDENCE, CLAIMS, f"produce it with `{COMMAND}`")
    if skipped:
        return skipped, {}
    data = {"evidence": str(path), "trend": _judged(json.loads(path.read_text()))}
    return judge(data), data


def _judged(ev: dict) -> dict:
    """What the rows and the figure read: the settings and each checkpoint's numbers."""
    keep = ("epoch", "knn_acc", "knn_se", "monitor_knn_acc", "alpha_realized", "threshold", "num_classes",
            *(k for _, k, _, _ in QUANTITIES))
    return {"num_classes": ev["num_classes"], "commit": ev.get("commit"), "date": ev.get("date"),
            "settings": ev.get("settings", {}),
            "checkpoints": [{k: c.get(k) for k in keep} for c in ev["checkpoints"]]}


def judge(data: dict) -> list:
    """The rows from a run's ``data["trend"]`` (re-judged by the mutation tests)."""
    return rows_from_evidence(data["trend"])


def rows_from_evidence(ev: dict) -> list:
    cks = sorted(ev["checkpoints"], key=lambda c: c["epoch"])
    n = len(cks)
    knn = np.asarray([c["knn_acc"] for c in cks], dtype=np.float64)
    setting = (f"CPU-scale; {n} checkpoints (epochs {', '.join(str(c['epoch']) for c in cks)}), k-NN "
               f"{', '.join(f'{v:.3f}' for v in knn)}; {(ev.get('commit') or 'commit ?')[:10]} {ev.get('date') or ''}")
    rows = [_trend_row(cid, key, label, d, cks, knn, setting) for cid, key, label, d in QUANTITIES]
    K = int(ev["num_classes"])
    init = next((c for c in cks if c["epoch"] == 0), None)
    final = cks[-1]
    below = final["alpha_realized"] < final["threshold"]
    rows.append(_extrapolation_row("C117", "prominent", float(K), cks, knn, setting, f"K = {K} (C82)"))
    rows.append(_extrapolation_row("C118", "train_recovery", 1.0, cks, knn, setting, "recovery 1 (C84)",
                                   extra=(f"alpha {final['alpha_realized']:.3f} {'<' if below else '>='} threshold "
                                          f"{final['threshold']:.4f}" + ("" if below else
                                                                         ": the theorem says nothing above it"))))
    if init is None:
        rows.append(row(C["C119"], float(final["pi_I"]), None, "", verdict=INFO, setting=setting,
                        note="measured: the final ||Pi_I(y)||; no extrapolation: the evidence has no epoch-0 checkpoint "
                             "(the initialization C96 compares with)"))
    else:
        rows.append(_extrapolation_row("C119", "pi_I", float(init["pi_I"]), cks, knn, setting,
                                       f"the initialization's {init['pi_I']:.4f} (C96, epoch 0)"))
    return rows


def _values(cks, key) -> np.ndarray:
    return np.asarray([float(c[key]) for c in cks], dtype=np.float64)


def _trend_row(cid, key, label, d, cks, knn, setting):
    n = len(cks)
    q = _values(cks, key)
    per = ", ".join(f"{v:.4g}" for v in q)
    if n < MIN_CHECKPOINTS:
        return row(C[cid], spearman(q, knn) if n >= 2 else 0.0, None, "", verdict=INFO, setting=setting,
                   note=f"too few checkpoints: n = {n} < {MIN_CHECKPOINTS} (no ordering could reach p <= {LEVEL:g}); {label}: {per}")
    if d == 0:
        t = trend_test(q, knn, +1)
        lo, hi = bootstrap_interval(q, knn)
        return row(C[cid], t["rho"], None, "", verdict=INFO, setting=setting,
                   note=f"no predicted direction; Spearman rho {t['rho']:.3f}, two-sided permutation p {t['p_two_sided']:.4f}, "
                        f"n = {n}; bootstrap 95% interval of rho [{lo:.3f}, {hi:.3f}]; {label}: {per}")
    t = trend_test(q, knn, d)
    signed = round(d * t["rho"], DIGITS)
    crit = t["r_crit"]
    which = "exact over all" if t["exact"] else "over"
    lo, hi = bootstrap_interval(q, knn)
    text = (f"Spearman rho({label}, k-NN) {t['rho']:.3f}, predicted sign {'+' if d > 0 else '-'}; one-sided permutation "
            f"p {t['p']:.4f} ({which} {t['orderings']} orderings), two-sided {t['p_two_sided']:.4f}; n = {n}; "
            f"bootstrap 95% interval of rho [{lo:.3f}, {hi:.3f}] ({BOOT_RESAMPLES} resamples of the checkpoints, "
            f"reported, not judged); {label}: {per}")
    rel = GE if d > 0 else LE
    if signed <= 0:  # the wrong direction or none: FAIL whatever the p
        bound = d * (crit if crit is not None else 1.0)
        return row(C[cid], round(t["rho"], DIGITS), bound, rel, setting=setting,
                   note=text + f"; bound: the critical value of d rho at p <= {LEVEL:g}" +
                   ("" if crit is not None else " (none reached: 1.0, the largest possible)"))
    if crit is None:
        return row(C[cid], t["rho"], None, rel, verdict=INFO, setting=setting,
                   note=text + f"; no ordering of these values reaches p <= {LEVEL:g} (ties): unresolved")
    if signed < crit:
        return row(C[cid], t["rho"], d * crit, rel, verdict=INFO, setting=setting,
                   note=text + f"; right direction, not significant (|rho| < {crit:.3f}, the critical value at p <= {LEVEL:g})")
    return row(C[cid], round(t["rho"], DIGITS), d * crit, rel, setting=setting,
               note=text + f"; bound: the critical value of rho at one-sided p <= {LEVEL:g}")


def _extrapolation_row(cid, key, bound, cks, knn, setting, what, extra=""):
    """Measured: the extrapolated k-NN where there is one, else the final checkpoint's value (the note says which)."""
    q = _values(cks, key)
    final = float(q[-1])
    tail = f"; {extra}" if extra else ""
    head = f"final checkpoint (epoch {cks[-1]['epoch']}, k-NN {knn[-1]:.3f}): {final:.4g} against {what}"
    none = "measured: the final value; no extrapolation"
    if final >= bound:
        return row(C[cid], final, None, "", verdict=INFO, setting=setting,
                   note=f"{head}: the bound is met; {none}{tail}")
    if len(cks) < 2 or np.ptp(knn) == 0:
        return row(C[cid], final, None, "", verdict=INFO, setting=setting,
                   note=f"{head}; {none}: no fit (fewer than two distinct k-NN values){tail}")
    if np.ptp(q) == 0:  # a constant: its fitted slope is round-off, not a trend
        return row(C[cid], final, None, "", verdict=INFO, setting=setting,
                   note=f"{head}; {none}: the quantity is the same at all {len(cks)} checkpoints{tail}")
    intercept, slope, r2 = linear_fit(knn, q)
    if not slope > 0:
        return row(C[cid], final, None, "", verdict=INFO, setting=setting,
                   note=f"{head}; {none}: the linear fit on k-NN slopes away from it ({slope:.3g} per unit k-NN){tail}")
    at = (bound - intercept) / slope
    where = (f"reaches it at k-NN {at:.3f}" if at <= 1.0 else
             f"reaches it only at k-NN {at:.3f} > 1, i.e. not at any accuracy")
    return row(C[cid], at, None, "", verdict=INFO, setting=setting,
               note=f"{head}; measured: the k-NN where the line reaches the bound, an EXTRAPOLATION, not a measurement: "
                    f"the least-squares line {intercept:.4g} + {slope:.4g} k-NN "
                    f"(R^2 {r2:.3f}, {len(cks)} checkpoints, k-NN {knn.min():.3f}-{knn.max():.3f}) {where}{tail}")


# ----------------------------------------------------------------------------- the figure


_BOUNDS = {"prominent": "K (C82)", "train_recovery": "1 (C84)", "alignment_K": "epoch 0 (C80: random init)",
           "pi_I": "epoch 0 (C96)", "ratio": "epoch 0 (C97)"}


def plot(data: dict, outdir) -> list:
    """Each quantity against the k-NN accuracy, one panel each, epochs annotated, bounds dashed."""
    if not data or "trend" not in data:
        return []
    from experiments.common import plotting

    plt = plotting.pyplot()
    ev = data["trend"]
    cks = sorted(ev["checkpoints"], key=lambda c: c["epoch"])
    knn = [c["knn_acc"] for c in cks]
    K = int(ev["num_classes"])
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.8))
    for ax, (cid, key, label, d) in zip(axes.flat, QUANTITIES):
        q = [c[key] for c in cks]
        ax.plot(knn, q, "o-", ms=4)
        for c, x, y in zip(cks, knn, q):
            ax.annotate(str(c["epoch"]), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ref = {"prominent": K, "train_recovery": 1.0}.get(key)
        if ref is None and key in _BOUNDS and cks[0]["epoch"] == 0:
            ref = cks[0][key]
        if ref is not None:
            ax.axhline(ref, color="k", ls="--", lw=1, label=f"bound: {_BOUNDS[key]}")
            ax.legend(fontsize=7)
        if key == "train_recovery":
            ax.set_ylim(top=1.05)
        ax.set_xlabel("k-NN accuracy (k = 20, 10,000 test images)")
        ax.set_ylabel(label)
        arrow = {1: "predicted: rises", -1: "predicted: falls", 0: "no prediction"}[d]
        ax.set_title(f"{cid}: {label} ({arrow})", fontsize=9)
    ax = axes.flat[-1]
    ax.plot([c["epoch"] for c in cks], knn, "o-", ms=4)
    ax.set_xlabel("SimCLR epoch")
    ax.set_ylabel("k-NN accuracy")
    ax.set_title("encoder quality over pre-training", fontsize=9)
    fig.suptitle("CIFAR-10 (CPU-scale): the theory's quantities over the checkpoints of SimCLR pre-training")
    return [plotting.save(fig, Path(outdir) / "trend_real.png")]
