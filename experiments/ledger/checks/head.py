"""Checks of the linear head under Gaussian label noise: Eq. 13 and Theorem 4.4.

Claims C30-C36, C48, C49 (Theorem 4.5 and the contrast are in ``checks/flips.py``). Each
sweep is a small dense graph (``theory.graph.make_graph``), its optimal representation
(``theory.representation.optimal_representation``) and the ridge head (``theory.head``),
evaluated over beta with ``jax.vmap``.

O() rows fit the order of the excess over the explicit terms on sweeps spanning at least two
decades of the small parameter (``experiments.ledger.claims.order_row``: a log-log slope with a bootstrap
interval, one intercept per fixed (p, beta); FAIL when the claimed order lies above the interval).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from experiments.ledger.claims import (LE, Claim, by_id, construction_note, judge_sections, no_progress, order_row, row,
                                       run_sections)
from theory import bounds, tightness
from theory.tolerances import MC_C, REGIME, ROUNDOFF
from theory.graph import Partition, balanced_partition, extremal_graph, make_graph, measure_delta, measure_xi
from theory.head import bias_variance, expected_risk, monte_carlo_risk, random_features, ridge_hat, ridge_head, \
    singular_basis, spectral_predictions
from theory.noise import gaussian_noise
from theory.representation import normalized_adjacency, optimal_representation

# Monte-Carlo band of Eq. 13 (MC_C, with s the sample std of the per-trial risk), round-off of identities
# evaluated two ways (ROUNDOFF) and Theorem 4.4's regime "sqrt(delta) + xi << beta << 1" read as
# REGIME (sqrt(delta) + xi) <= beta <= 1/REGIME: theory/tolerances.py. "error ~ sigma^2 Kbar/n/(beta+1)^2"
# is read as within a factor 2 (|risk/lead - 1| <= APPROX). Fixed before the run.
APPROX = 1.0


CLAIMS = (
    Claim("C30", "Eq. 13", "The expected risk of the ridge head under Gaussian label noise equals "
          "1 + (1/n) sum (b_i^2 - 2 b_i)(v_i^T y_j)^2 + (sigma^2/n) sum b_i^2 (checked against Monte-Carlo)."),
    Claim("C31", "Eq. 13", "Eq. 13's b_i form equals the exact expectation computed from the ridge hat matrix, "
          "for any representation."),
    Claim("C32", "Eq. 3, Sec. 4.1", "The ridge head's predictions F W-hat equal F* B F*^T Y-hat with "
          "b_i = lambda_i/(lambda_i + beta)."),
    Claim("C33", "Thm 4.4, Eq. 15", "bias^2 <= (beta/(1+beta))^2 + 3(1 - Kbar/n)(2 beta + 1)/(beta+1)^2 delta "
          "+ O(delta^2) (xi = 0, balanced sub-classes)."),
    Claim("C34", "Thm 4.4, Eq. 15", "The remainder of Eq. 15 (bias^2 minus its explicit terms) is O(delta^2): fitted "
          "order >= 2 as delta -> 0 at each (p, beta)."),
    Claim("C35", "Thm 4.4, end of A.3", "variance <= sigma^2 (Kbar/n)(1/(beta+1))^2 "
          "+ sigma^2 sqrt(6 Kbar (p-Kbar))/n sqrt(delta)/beta + O(delta) (xi = 0)."),
    Claim("C36", "Thm 4.4", "For xi >= 0: bias^2 - (beta/(1+beta))^2 = O(delta + xi): fitted order >= 1 as "
          "delta = xi -> 0 at each (p, beta)."),
    Claim("C48", "Thm 4.4", "For xi >= 0: variance - sigma^2 (Kbar/n)(1/(beta+1))^2 = O((sqrt(delta) + xi)/beta): "
          "fitted order in sqrt(delta) + xi >= 1 as delta = xi -> 0 at each (p, beta)."),
    Claim("C49", "Thm 4.4 (regime remark)", "When sqrt(delta) + xi << beta << 1 the expected error is about "
          "sigma^2 Kbar/n (1/(beta+1))^2 (read: within a factor 2 where 10 (sqrt(delta) + xi) <= beta <= 0.1)."),
)
C = by_id(CLAIMS)


@dataclasses.dataclass(frozen=True)
class Config:
    n_sub: int = 8  # K-bar
    size: int = 30  # points per sub-class (balanced)
    n_classes: int = 4  # K
    # Eq. 13 Monte-Carlo
    mc_trials: int = 2000
    mc_betas: tuple = (0.01, 0.1, 1.0)
    mc_sigmas: tuple = (0.5, 2.0)
    mc_delta: float = 0.05
    mc_p: int = 32
    # Theorem 4.4, xi = 0: delta over two decades
    deltas: tuple = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    ps: tuple = (16, 32, 64)
    betas: tuple = tuple(float(b) for b in np.logspace(-3, 1, 9))
    sigmas: tuple = (0.5, 1.0, 2.0)
    # Theorem 4.4, delta = xi -> 0 together: sqrt(delta) + xi over two decades
    xis: tuple = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2)
    tight_deltas: tuple = (0.01, 0.05, 0.2)  # structured W for the tightness notes of C33/C35
    curve_betas: tuple = tuple(float(b) for b in np.logspace(-4, 2, 25))
    curve_delta: float = 0.05
    curve_p: int = 32


PRESETS = {
    "smoke": Config(  # one representation shape (n=72, p=36) throughout, so compiled functions are reused
        n_sub=6, size=12, n_classes=3, mc_trials=400, mc_betas=(0.1,), mc_sigmas=(1.0,), mc_p=36,
        deltas=(0.0, 0.001, 0.01, 0.1), xis=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2), tight_deltas=(0.05,), ps=(36,), betas=(0.01, 0.1, 1.0), sigmas=(1.0,),
        curve_betas=tuple(float(b) for b in np.logspace(-3, 1, 7)), curve_p=36),
    "cpu": Config(),
}
PRESETS["large"] = dataclasses.replace(PRESETS["cpu"], size=50, mc_trials=5000)


def key(seed: int, *tags: int):
    """The PRNG key for one draw: ``seed`` folded with up to five integer tags."""
    return _fold(jax.random.PRNGKey(seed), jnp.asarray(list(tags) + [0] * (5 - len(tags)), dtype=jnp.uint32))


@jax.jit
def _fold(k, tags):
    for i in range(5):
        k = jax.random.fold_in(k, tags[i])
    return k


def spectral_graph(part: Partition, delta: float, xi: float, p: int, k):
    W = make_graph(k, part, delta, xi)
    return W, optimal_representation(normalized_adjacency(W), p, n_sub=part.n_sub)


@jax.jit
def _bv_over_betas(V, lam, Y, betas):
    return jax.vmap(lambda b: bias_variance(V, lam, Y, b, 1.0))(betas)


def _over_betas(V, lam, Y, betas):
    """Eq. 13's (bias^2, variance at sigma = 1) for every beta: one vmap, compiled once per shape."""
    bv = _bv_over_betas(V, lam, Y, jnp.asarray(betas))
    return np.asarray(bv.bias2), np.asarray(bv.variance)


def order_rows(claim: Claim, groups: dict, order: float, *, setting: str, what: str, label: str):
    """One row for an O(x^order) claim over sub-sweeps at fixed (p, beta): ``groups`` maps a label
    to (x, excess) along the sweep; one common log-log slope with an intercept per sub-sweep
    (``experiments.ledger.claims.order_row``). Points with excess <= 0 satisfy the bound with constant 0."""
    x = [v for xs, _ in groups.values() for v in xs]
    y = [v for _, ys in groups.values() for v in ys]
    ids = [g for g, (xs, _) in groups.items() for _ in xs]
    n_pos, n_all = sum(1 for v in y if v > 0), len(y)
    return order_row(claim, x, y, order, groups=ids, label=label, setting=setting,
                     note=f"{what}; {n_pos} of {n_all} (graph, p, beta) points with excess > 0 ({len(groups)} sub-sweeps, "
                          f"one slope, an intercept each); excess <= 0 satisfies the bound with constant 0")


# ----------------------------------------------------------------------------
# Eq. 13: C30-C32
# ----------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(5,))
def _mc_over_settings(F, Y, betas, sigmas, keys, trials):
    """Eq. 13's Monte-Carlo risks (``theory.head.monte_carlo_risk``) for every (beta, sigma): (settings, trials)."""
    return jax.vmap(lambda b, s, k: monte_carlo_risk(F, Y, b, s, key=k, trials=trials))(betas, sigmas, keys)


def _measure_eq13(cfg: Config, seed: int):
    part = balanced_partition(cfg.n_sub, cfg.size, cfg.n_classes)
    Y, n, K = part.labels(), part.n, cfg.n_classes
    W, S = spectral_graph(part, cfg.mc_delta, 0.0, cfg.mc_p, key(seed, 1))
    G = random_features(n, cfg.mc_p, key=key(seed, 2), frobenius=float(jnp.linalg.norm(S.F)))
    reps = {"CL": (S.F, S.eigvecs, S.eigvals), "random": (G, *singular_basis(G))}
    grid = [(beta, sigma) for beta in cfg.mc_betas for sigma in cfg.mc_sigmas]
    pts, t = [], 0
    for r_i, (name, (F, V, lam)) in enumerate(reps.items()):
        # every (beta, sigma) setting's trials at once: a vmap over the settings of theory's vmap over trials
        ks = jnp.stack([key(seed, 3, r_i * len(grid) + j + 1) for j in range(len(grid))])
        risks = np.asarray(_mc_over_settings(F, Y, *(jnp.asarray(v, dtype=Y.dtype) for v in zip(*grid)), ks, cfg.mc_trials))
        for (beta, sigma), r in zip(grid, risks):
            H = ridge_hat(F, beta)
            t += 1
            formula = bias_variance(V, lam, Y, beta, sigma)
            exact = float(expected_risk(H, Y, sigma).risk)
            mean, sd = float(np.mean(r)), float(np.std(r, ddof=1))
            risk = float(formula.risk)
            pts.append(dict(rep=name, beta=beta, sigma=sigma, formula=risk, bias2=float(formula.bias2),
                            variance=float(formula.variance), mc_mean=mean, mc_std=sd, err=abs(mean - risk),
                            band=MC_C * sd / math.sqrt(cfg.mc_trials), exact=exact))
            Yn = gaussian_noise(Y, sigma, key=key(seed, 4, t)).Y_noisy
            diff = F @ ridge_head(F, Yn, beta) - spectral_predictions(V, lam, Yn, beta)
            pts[-1]["pred_diff"] = float(jnp.max(jnp.abs(diff)))
    return {"eq13": pts, "eq13_n": n}


def _judge_eq13(d: dict, cfg: Config):
    pts, n = d["eq13"], d["eq13_n"]
    worst_exact = max(abs(q["exact"] - q["formula"]) for q in pts)
    worst_pred = max(q["pred_diff"] for q in pts)
    w = max(pts, key=lambda q: q["err"] / q["band"])
    return [
        row(C["C30"], w["err"], w["band"], LE,
            setting=f"{w['rep']} F, beta={w['beta']}, sigma={w['sigma']}, trials={cfg.mc_trials}, n={n}",
            note=f"worst of {len(pts)} settings; bound = {MC_C:g} s/sqrt(trials), s = per-trial std "
                 f"({MC_C:g}-sigma band); formula {w['formula']:.6g} vs MC {w['mc_mean']:.6g}"),
        row(C["C31"], worst_exact, ROUNDOFF, LE, setting=f"{len(pts)} settings (CL and random F)",
            note="max |Eq. 13 - (||(I-H)Y||^2 + sigma^2 ||H||_F^2)/n|; bound = float64 round-off"),
        row(C["C32"], worst_pred, ROUNDOFF, LE, setting=f"{len(pts)} settings (CL and random F)",
            note="max |F W-hat - F* B F*^T Y-hat| over entries; bound = float64 round-off"),
    ]


# ----------------------------------------------------------------------------
# Theorem 4.4: C33-C36, C48, C49, bias/variance curves
# ----------------------------------------------------------------------------


def _measure_thm44(cfg: Config, seed: int):
    part = balanced_partition(cfg.n_sub, cfg.size, cfg.n_classes)
    Y, n, nb = part.labels(), part.n, cfg.n_sub
    betas, sig2 = np.asarray(cfg.betas), np.asarray(cfg.sigmas) ** 2
    grid = []  # xi = 0: one entry per (delta, p), arrays over beta
    for i, delta in enumerate(cfg.deltas):
        W, S = spectral_graph(part, delta, 0.0, max(cfg.ps), key(seed, 10, i))
        d_real = measure_delta(W, part)
        for p in cfg.ps:
            b2, v1 = _over_betas(np.asarray(S.eigvecs)[:, :p], np.asarray(S.eigvals)[:p], Y, betas)
            grid.append(dict(delta=delta, delta_real=d_real, p=p, bias2=b2, variance=v1))
    # how tight Eq. 15's and A.3's delta terms are beyond random graphs: structured W at the same delta, and
    # blocks found by gradient ascent on (measured - leading)/(delta term) over beta (theory.tightness)
    graphs = [(kind, d, extremal_graph(part, d, kind)) for d in cfg.tight_deltas for kind in ("two-level", "hub")]
    td, pmax = np.asarray(cfg.tight_deltas), max(cfg.ps)
    bb, q = np.tile(betas, (len(td), 1)), np.full(len(td), pmax // nb)  # q: eigenpairs per block in the top pmax
    bl = np.asarray([[np.asarray(a) for a in bounds.bias_bound_eq15(betas, d, n, nb)] for d in td])  # (delta, 2, beta)
    vl = np.asarray([[np.asarray(a) for a in bounds.variance_bound_a3(betas, d, 1.0, n, nb, pmax)] for d in td])
    graphs += tightness.adversarial_graphs(part, td, [("ascent (bias)", tightness.head_bias_ratio, (bb, bl[:, 0], bl[:, 1], q)),
                                                      ("ascent (variance)", tightness.head_variance_ratio, (bb, vl[:, 0], vl[:, 1], q))],
                                           key=key(seed, 13))
    tight = []
    for kind, delta, W in graphs:
        S = optimal_representation(normalized_adjacency(W), pmax, n_sub=nb)
        b2, v1 = _over_betas(S.eigvecs, S.eigvals, Y, betas)
        tight.append(dict(kind=kind, delta=delta, delta_real=measure_delta(W, part), p=pmax, bias2=b2, variance=v1))
    # C36/C48/C49: delta = xi -> 0 together
    xi_pts = []
    for j, xi in enumerate(cfg.xis):
        W, S = spectral_graph(part, xi, xi, max(cfg.ps), key(seed, 11, j))
        d_real, x_real = measure_delta(W, part), measure_xi(W, part)
        for p in cfg.ps:
            b2, v1 = _over_betas(np.asarray(S.eigvecs)[:, :p], np.asarray(S.eigvals)[:p], Y, betas)
            xi_pts.append(dict(xi=xi, xi_real=x_real, delta_real=d_real, p=p, bias2=b2, variance=v1))
    # curves vs beta for the figure
    W, S = spectral_graph(part, cfg.curve_delta, 0.0, cfg.curve_p, key(seed, 12))
    d_real = measure_delta(W, part)
    cb = np.asarray(cfg.curve_betas)
    b2, v1 = _over_betas(S.eigvecs, S.eigvals, Y, cb)
    lead, lin = (np.asarray(a) for a in bounds.bias_bound_eq15(cb, d_real, n, nb))
    vl, vs = (np.asarray(a) for a in bounds.variance_bound_a3(cb, d_real, 1.0, n, nb, cfg.curve_p))
    curve = [dict(beta=float(b), bias2=float(x), variance=float(v), bias_bound=float(a + c), bias_lead=float(a),
                  var_bound=float(e + f), var_lead=float(e)) for b, x, v, a, c, e, f in zip(cb, b2, v1, lead, lin, vl, vs)]
    data = {"thm44_grid": grid, "thm44_xi": xi_pts, "thm44_tight": tight,
            "thm44_curve": {"delta": cfg.curve_delta, "delta_real": d_real, "p": cfg.curve_p, "sigma": 1.0,
                            "n": n, "n_sub": nb, "points": curve}}
    return data


def tight_ratios(q: dict, betas, n: int, n_sub: int) -> tuple[float, float]:
    """How tight Eq. 15's and A.3's delta terms are on one graph: max over beta of (bias^2 - leading)/(delta term)
    and (variance - leading)/(sqrt(delta)/beta term), at the realized delta."""
    lead, lin = (np.asarray(a) for a in bounds.bias_bound_eq15(betas, q["delta_real"], n, n_sub))
    vl, vs = (np.asarray(a) for a in bounds.variance_bound_a3(betas, q["delta_real"], 1.0, n, n_sub, q["p"]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (float(np.max((np.asarray(q["bias2"]) - lead) / lin)), float(np.max((np.asarray(q["variance"]) - vl) / vs)))


def _judge_thm44(d: dict, cfg: Config):
    grid, xi_pts = d["thm44_grid"], d["thm44_xi"]
    n, nb = d["thm44_curve"]["n"], cfg.n_sub
    betas, sig2 = np.asarray(cfg.betas), np.asarray(cfg.sigmas) ** 2
    # the bounds are evaluated here, not stored with the measurements (a mutation of theory.bounds re-judges)
    grid = [dict(q, bias2=np.asarray(q["bias2"]), variance=np.asarray(q["variance"]),
                 **dict(zip(("bias_lead", "bias_lin"), (np.asarray(a) for a in bounds.bias_bound_eq15(betas, q["delta_real"], n, nb)))),
                 **dict(zip(("var_lead", "var_sqrt"), (np.asarray(a) for a in bounds.variance_bound_a3(betas, q["delta_real"], 1.0, n, nb, q["p"])))))
            for q in grid]
    xi_pts = [dict(q, bias2=np.asarray(q["bias2"]), variance=np.asarray(q["variance"]), bias_lead=(betas / (1 + betas)) ** 2,
                   var_lead=np.asarray(bounds.variance_leading(betas, 1.0, n, nb))) for q in xi_pts]
    pos = [g for g in grid if g["delta"] > 0]
    rand = [q for q in pos if q["p"] == max(cfg.ps)]
    by = {"random graphs": rand, **{k: [q for q in d.get("thm44_tight", []) if q["kind"] == k]
                                    for k in dict.fromkeys(q["kind"] for q in d.get("thm44_tight", []))}}
    tnote = lambda i: (f"; tightness, max (measured - leading)/(delta term) over beta at p={max(cfg.ps)}, "  # noqa: E731
                       + construction_note({k: [tight_ratios(q, betas, n, nb)[i] for q in v] for k, v in by.items()}, what="max"))
    # C33: worst ratio of bias^2 to Eq. 15's explicit terms over delta > 0
    g, j = max(((g, j) for g in pos for j in range(len(betas))),
               key=lambda t: t[0]["bias2"][t[1]] / (t[0]["bias_lead"][t[1]] + t[0]["bias_lin"][t[1]]))
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = max(float(np.max((q["bias2"] - q["bias_lead"]) / q["bias_lin"])) for q in pos)
    rows = [row(C["C33"], g["bias2"][j], g["bias_lead"][j] + g["bias_lin"][j], LE, tol=ROUNDOFF,
                setting=f"worst ratio at delta={g['delta']} (realized {g['delta_real']:.4g}), p={g['p']}, beta={betas[j]:.3g}",
                note=f"{len(pos) * len(betas)} points over delta x p x beta (sigma-free); delta = the realized (measured) delta; "
                     f"largest (bias^2 - leading)/(delta term) = {slack:.3g}: the delta term is loose" + tnote(0))]
    # C34: Eq. 15's remainder, order 2 in delta
    groups = {f"p={p}, beta={b:.3g}": ([q["delta_real"] for q in pos if q["p"] == p],
                                         [q["bias2"][j] - q["bias_lead"][j] - q["bias_lin"][j] for q in pos if q["p"] == p])
              for p in cfg.ps for j, b in enumerate(betas)}
    rows.append(order_rows(C["C34"], groups, 2.0, setting=f"realized delta in [{min(q['delta_real'] for q in pos):.3g}, "
                           f"{max(q['delta_real'] for q in pos):.3g}], p in {list(cfg.ps)}, {len(betas)} betas",
                           what="bias^2 - Eq. 15 (leading + delta term)", label="delta"))
    # C35: variance bound at every sigma (it scales as sigma^2)
    ratio = lambda q: q["variance"] / (q["var_lead"] + q["var_sqrt"])  # noqa: E731
    g, j = max(((q, j) for q in pos for j in range(len(betas))), key=lambda t: ratio(t[0])[t[1]])
    gp, jp = max(((q, j) for q in pos if q["p"] > nb for j in range(len(betas))), key=lambda t: ratio(t[0])[t[1]])
    s2 = float(sig2.max())
    rows.append(row(C["C35"], s2 * g["variance"][j], s2 * (g["var_lead"][j] + g["var_sqrt"][j]), LE,
                    tol=ROUNDOFF * s2 * g["var_lead"][j],
                    setting=f"worst ratio at delta={g['delta']}, p={g['p']}, beta={betas[j]:.3g}, sigma={math.sqrt(s2):g}",
                    note=f"{len(pos) * len(betas) * len(sig2)} points over delta x p x beta x sigma (the ratio is sigma-free); "
                         f"with p > Kbar the worst ratio is {ratio(gp)[jp]:.3g} (delta={gp['delta']}, p={gp['p']}, "
                         f"beta={betas[jp]:.3g}); the bound's 1/n factor is kept (Thm 4.4 drops it)" + tnote(1)))
    setting = f"delta = xi in {list(cfg.xis)} (realized), p in {list(cfg.ps)}, {len(betas)} betas in [{betas[0]:g}, {betas[-1]:g}]"
    by = lambda p: [q for q in xi_pts if q["p"] == p]  # noqa: E731
    rows.append(order_rows(C["C36"], {f"p={p}, beta={b:.3g}": ([q["delta_real"] + q["xi_real"] for q in by(p)],
                                                                [q["bias2"][j] - q["bias_lead"][j] for q in by(p)])
                                      for p in cfg.ps for j, b in enumerate(betas)}, 1.0, setting=setting,
                           what="bias^2 - (beta/(1+beta))^2 vs delta + xi", label="delta + xi"))
    rows.append(order_rows(C["C48"], {f"p={p}, beta={b:.3g}": ([math.sqrt(q["delta_real"]) + q["xi_real"] for q in by(p)],
                                                                [q["variance"][j] - q["var_lead"][j] for q in by(p)])
                                      for p in cfg.ps for j, b in enumerate(betas)}, 1.0, setting=setting + ", sigma = 1",
                           what="variance - sigma^2 Kbar/(n (beta+1)^2) vs sqrt(delta) + xi", label="sqrt(delta) + xi"))
    reg = [(q, j, s) for q in xi_pts for j, b in enumerate(betas) for s in sig2
           if REGIME * (math.sqrt(q["delta_real"]) + q["xi_real"]) <= b <= 1 / REGIME]
    rel = lambda q, j, s: abs((q["bias2"][j] + s * q["variance"][j]) / (s * q["var_lead"][j]) - 1)  # noqa: E731
    w = max(reg, key=lambda t: rel(*t))
    extra = [t for t in reg if betas[t[1]] <= math.sqrt(t[2] * nb / n) / REGIME]
    rows.append(row(C["C49"], rel(*w), APPROX, LE, setting=f"{len(reg)} (graph, p, beta, sigma) points with {REGIME:g} "
                    f"(sqrt(delta)+xi) <= beta <= {1 / REGIME:g}, sigma in {list(cfg.sigmas)}",
                    note=f"max |E error / (sigma^2 Kbar/n/(beta+1)^2) - 1|, worst at beta={betas[w[1]]:.3g}, sigma={math.sqrt(w[2]):g}, "
                         f"p={w[0]['p']}, delta=xi={w[0]['xi']:g}: there the bias (beta/(1+beta))^2 is not small against "
                         f"sigma^2 Kbar/n; where also beta <= sigma sqrt(Kbar/n)/{REGIME:g} ({len(extra)} points) the largest is "
                         f"{max((rel(*t) for t in extra), default=float('nan')):.3g}"))
    return rows


# ----------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------

SECTIONS = ((_measure_eq13, _judge_eq13, ("C30", "C31", "C32")),
            (_measure_thm44, _judge_thm44, ("C33", "C34", "C35", "C36", "C48", "C49")))


def run(preset: str = "cpu", *, seed: int = 0, progress=no_progress):
    """Evaluate C30-C36, C48, C49 at a preset; returns (rows, data)."""
    return run_sections("head", PRESETS, SECTIONS, C, preset, seed, progress)


def judge(data: dict) -> list:
    """The rows of C30-C36, C48, C49 from a run's saved ``data``."""
    return judge_sections(PRESETS, SECTIONS, data)


def plot(data, outdir):
    """Figures: bias^2 / variance vs beta. Needs only ``data``."""
    from experiments.ledger.plots import head as plots_head

    return plots_head.plot_head(data, outdir, tight_ratios=tight_ratios)
