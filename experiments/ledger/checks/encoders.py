"""C50-C69: contrastive encoders trained by SGD on sampled augmentation pairs, against f_min.

The theory (Eqs. 7-8, Theorem 4.3) is about the global minimizer f_min of the spectral
contrastive loss over arbitrary functions. Here an input-space sub-class model
(theory/datamodel.py: K=3 classes, K-bar=6 sub-classes in R^8, Gaussian augmentation)
induces an augmentation graph of n=240 augmented points; three encoders (an embedding
table, f(x) = W x, a one-hidden-layer MLP) are trained with Adam on minibatches of
pairs sampled from that graph, with the spectral loss and with NT-Xent, and measured
against the closed form on the same graph.

Every comparison uses the sqrt(w)-weighted representation ``U = sqrt(w/S) F`` for
subspaces and singular values (exact at the optimum: U_min = V_p Sigma R), and reports
the label alignment both of U (the paper's Eq. 25 quantity) and of F itself (what a
linear head on the encoder's outputs sees). The graph's degrees vary by orders of
magnitude (Gaussian augmentation in R^8), which is where the two differ.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.ledger.claims import GE, INFO, LE, Claim, by_id, no_progress, row
from theory.tolerances import ALIGN_SLACK, MC_C

CLAIMS = (
    Claim("C50", "Eqs. 7-8; HaoChen et al. Lemma 3.2",
          "An embedding table trained by SGD on sampled pairs (spectral loss) reaches the closed-form minimum "
          "of the population loss: relative gap <= 1e-3 at every training seed"),
    Claim("C51", "Eqs. 7-8; Thm 4.3",
          "The same table's top-K-bar singular space (sqrt(w)-weighted) matches f_min's: largest "
          "principal-angle sine <= 0.05"),
    Claim("C52", "Eqs. 7-8 restricted to f(x) = Wx",
          "A linear encoder trained by SGD on sampled pairs reaches the exact minimum over linear "
          "encoders (closed form): relative gap <= 1e-3 at every training seed"),
    Claim("C53", "Thm 4.3 analogue, outside Assumption 4.1 (C64: realized delta >> 1)",
          "The trained linear encoder has K-bar prominent singular values: sigma_{K-bar+1}/sigma_{K-bar} <= 1/2 "
          "(sqrt(w)-weighted)"),
    Claim("C54", "Eq. 25 analogue, outside Assumption 4.1 (C64: realized delta >> 1)",
          "Training moves the linear encoder's label alignment (top-K-bar output space) from its initialization at "
          "least half way to the best linear encoder's, and to within 0.05 of f_min's"),
    Claim("C55", "Thm 4.3 analogue, outside Assumption 4.1 (C64: realized delta >> 1)",
          "The trained MLP has K-bar prominent singular values: sigma_{K-bar+1}/sigma_{K-bar} <= 1/2 "
          "(sqrt(w)-weighted)"),
    Claim("C56", "Eq. 25 analogue, outside Assumption 4.1 (C64: realized delta >> 1)",
          "Training moves the MLP's label alignment (top-K-bar output space) from its initialization at least half "
          "way to f_min's, and to within 0.05 of it"),
    Claim("C57", "measurement (no paper statement)",
          "Distance of the trained linear encoder from f_min: largest principal-angle sine of the top-K-bar spaces"),
    Claim("C58", "measurement (no paper statement)",
          "Distance of the trained MLP from f_min: largest principal-angle sine of the top-K-bar spaces"),
    Claim("C59", "measurement; InfoNCE is outside the theory",
          "Embedding table trained with NT-Xent: label alignment of its top-K-bar output space"),
    Claim("C60", "measurement; InfoNCE is outside the theory",
          "Linear encoder trained with NT-Xent: label alignment of its top-K-bar output space"),
    Claim("C61", "measurement; InfoNCE is outside the theory",
          "MLP trained with NT-Xent: label alignment of its top-K-bar output space"),
    Claim("C62", "Eq. 1 (minibatch estimator, independent negatives)",
          "The minibatch spectral loss with independent marginal negatives is unbiased: "
          "|mean of M estimates - population loss| <= c/sqrt(M), c = 4 x (std of one estimate)"),
    Claim("C63", "Eq. 1 (minibatch estimator, in-batch negatives)",
          "The minibatch spectral loss with in-batch cross-pair negatives is unbiased: "
          "|mean of M estimates - population loss| <= c/sqrt(M), c = 4 x (std of one estimate)"),
    Claim("C64", "Assumptions 4.1-4.2 on the input-space model",
          "Realized delta and xi of the Gaussian-augmentation graph (meters of theory/graph.py), next to its "
          "spectrum"),
)

C = by_id(CLAIMS)

# Criteria stated in the claims above (chosen before the runs; never tuned to the results).
# Settings rule, fixed before the runs: one Adam learning rate (1e-2) for every encoder and loss, the
# same steps and batch; C50/C52 are reported over ``train_seeds`` training seeds (initialization and
# minibatch draws; the graph fixed by the module seed) as the worst gap with the pass rate and spread.
# (An earlier version raised the linear encoder's rate to 3e-2 after it failed C52 at 1e-2; C52's note
# reports that rate as a sensitivity, not as the setting.)
LOSS_GAP = 1e-3  # C50, C52: relative gap of the population loss
SINE_MAX = 0.05  # C51
PROMINENCE_MAX = 0.5  # C53, C55: sigma_{K-bar+1} / sigma_{K-bar}
# C54, C56: alignment >= closed form - ALIGN_SLACK; C62, C63: tolerance MC_C * (std of one estimate) / sqrt(M),
# a 4-sigma z-test (both in theory/tolerances.py)


@dataclasses.dataclass(frozen=True)
class Config:
    """One preset of the encoder checks."""

    n_classes: int = 3
    n_sub: int = 6
    per_sub: int = 20  # natural points per sub-class
    views: int = 2  # augmentations per natural point: n = n_sub * per_sub * views
    d: int = 8
    p: int = 8
    class_sep: float = 6.0
    sub_sep: float = 3.0
    spread: float = 0.25
    sigma: float = 1.0  # Gaussian augmentation
    mask_keep: float = 0.8  # masking augmentation (C64 note)
    n_masks: int = 128  # 0 skips the masking graph (C64 note)
    width: int = 64
    steps_spectral: int = 4000
    steps_nt_xent: int = 2000
    batch: int = 240
    lr: float = 1e-2
    lr_sensitivity: float = 3e-2  # C52's note: the linear encoder at this rate, first training seed only
    train_seeds: int = 3  # C50, C52
    temperature: float = 0.5
    eval_every: int = 200
    mc_batches: int = 2000  # M for C62/C63
    mc_batch: int = 64


PRESETS = {
    "smoke": Config(per_sub=10, steps_spectral=300, steps_nt_xent=300, batch=120, eval_every=300, mc_batches=200,
                    n_masks=0, train_seeds=2),
    "cpu": Config(),
    "large": Config(steps_spectral=8000, steps_nt_xent=4000),
}


def _setup(cfg: Config, key):
    from theory.datamodel import GaussianNoise, augmentation_graph, make_datamodel

    k_m, k_g = jax.random.split(key)
    model = make_datamodel(k_m, n_classes=cfg.n_classes, n_sub=cfg.n_sub, per_sub=cfg.per_sub, d=cfg.d,
                           class_sep=cfg.class_sep, sub_sep=cfg.sub_sep, spread=cfg.spread)
    sample = augmentation_graph(k_g, model, GaussianNoise(cfg.sigma), views=cfg.views)
    # One global scale (not centring: f(x) = Wx has no bias) so that E|x|^2 = d.
    x = sample.x / jnp.sqrt(jnp.mean(jnp.sum(sample.x**2, axis=1)) / cfg.d)
    return model, sample, x


def _graph_info(cfg: Config, model, sample, target, key) -> dict:
    from theory.datamodel import Masking, augmentation_graph
    from theory.graph import measure_delta, measure_xi
    from theory.representation import normalized_adjacency, top_eigh

    deg = np.asarray(jnp.sum(sample.W, axis=1))
    lam = np.asarray(target.eigvals)
    out = {
        "delta": measure_delta(sample.W, sample.part),
        "xi": measure_xi(sample.W, sample.part),
        "degree_ratio": float(deg.max() / deg.min()),
        "eigvals": lam,
        "gap": float(lam[cfg.n_sub - 1] - lam[cfg.n_sub]),
    }
    if cfg.n_masks > 0:
        masked = augmentation_graph(key, model, Masking(cfg.mask_keep, cfg.sigma), views=cfg.views,
                                    n_masks=cfg.n_masks)
        out["mask_delta"] = measure_delta(masked.W, masked.part)
        out["mask_xi"] = measure_xi(masked.W, masked.part)
        out["mask_eigvals"] = np.asarray(top_eigh(normalized_adjacency(masked.W), cfg.n_sub + 1)[0])
    return out


def _estimator_bias(cfg: Config, target, key) -> dict:
    """M independent minibatch estimates of the loss of a fixed representation, with
    independent and with in-batch negatives, against its population value."""
    from theory._random import rng
    from theory.losses import spectral_contrastive_loss, spectral_loss_minibatch
    from theory.training import graph_sampler

    n = target.W.shape[0]
    k_f, k_s = jax.random.split(key)
    sampler = graph_sampler(jnp.arange(n), target.W)
    noise = sampler.noise(k_s, cfg.mc_batches, cfg.mc_batch)

    # A fixed representation away from the optimum: f_min plus noise of comparable size.
    F_min = np.asarray(target.F_min)
    F = jnp.asarray(F_min + rng(k_f).standard_normal(F_min.shape) * np.std(F_min))

    @jax.jit
    def estimates(F, noise):

        def one(u):
            i, j, a, b = sampler.sample(u, cfg.mc_batch)
            return spectral_loss_minibatch(F[i], F[j], F[a], F[b]), spectral_loss_minibatch(F[i], F[j])

        ind, inb = jax.vmap(one)(noise)
        return ind, inb, spectral_contrastive_loss(F, target.W)

    ind, inb, pop = estimates(F, noise)
    pop = float(pop)
    out = {}
    for name, est in (("independent", np.asarray(ind)), ("in_batch", np.asarray(inb))):
        sd = float(np.std(est, ddof=1))
        out[name] = {"mean": float(np.mean(est)), "population": pop, "std": sd, "M": cfg.mc_batches,
                     "bias": abs(float(np.mean(est)) - pop), "tol": MC_C * sd / np.sqrt(cfg.mc_batches)}
    return out


def _moved(init: float, target: float, f_min: float) -> float:
    """C54/C56's bound: within ALIGN_SLACK of f_min's alignment and at least half way from init to target."""
    return max(f_min - ALIGN_SLACK, init + 0.5 * (target - init))


def _history_json(h: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in h.items()}


def run(preset: str = "cpu", *, seed: int = 0, progress=no_progress):
    """Train the three encoders with both losses and evaluate C50-C64.

    ``progress`` (the progress protocol, :func:`experiments.ledger.claims.no_progress` by default) wraps
    the training runs.
    """
    from theory.encoders import MLP, EmbeddingTable, Linear
    from theory.training import TrainConfig, closed_form_metrics, linear_class_optimum, make_target, \
        representation_metrics, train

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    cfg = PRESETS[preset]
    t_start = time.perf_counter()
    keys = jax.random.split(jax.random.key(seed), 12)
    model, sample, x = _setup(cfg, keys[0])
    n = sample.x.shape[0]
    Y = sample.part.labels()
    tgt_table = make_target(jnp.arange(n), sample.W, Y, n_sub=cfg.n_sub, p=cfg.p)
    tgt_x = make_target(x, sample.W, Y, n_sub=cfg.n_sub, p=cfg.p)
    closed = closed_form_metrics(tgt_x)
    lin_min, F_lin = linear_class_optimum(x, tgt_x)
    lin_opt = representation_metrics(F_lin, tgt_x)

    encoders = {
        "table": (EmbeddingTable(n, cfg.p), tgt_table),
        "linear": (Linear(cfg.d, cfg.p), tgt_x),
        "mlp": (MLP(cfg.d, cfg.p, cfg.width, 1), tgt_x),
    }
    runs: dict[str, dict] = {}
    final: dict[str, dict] = {}
    plan = [(e, name, enc, tgt, loss, 0, cfg.lr) for e, (name, (enc, tgt)) in enumerate(encoders.items())
            for loss in ("spectral", "nt_xent")]
    plan += [(e, name, *encoders[name], "spectral", s, cfg.lr) for e, name in ((0, "table"), (1, "linear"))
             for s in range(1, cfg.train_seeds)]
    plan += [(1, "linear", *encoders["linear"], "spectral", 0, cfg.lr_sensitivity)]
    for e, name, enc, tgt, loss, s, lr in progress(plan, desc="encoders: training"):
        steps = cfg.steps_spectral if loss == "spectral" else cfg.steps_nt_xent
        tc = TrainConfig(loss=loss, steps=steps, batch=cfg.batch, lr=lr, temperature=cfg.temperature,
                         negatives="in_batch", eval_every=cfg.eval_every)
        t0 = time.perf_counter()
        k_train, k_init = (keys[1 + e], keys[4 + e]) if s == 0 else (jax.random.fold_in(keys[1 + e], s),
                                                                     jax.random.fold_in(keys[4 + e], s))
        res = train(k_train, enc.apply, enc.init(k_init), tgt, tc)
        h = res.history
        tag = f"{name}/{loss}" + (f"/seed{s}" if s else "") + (f"/lr{lr:g}" if lr != cfg.lr else "")
        final[tag] = {k: (np.asarray(v[-1]).tolist()) for k, v in h.items()}
        final[tag]["seconds"] = time.perf_counter() - t0
        final[tag]["message"] = res.message
        if s == 0 and lr == cfg.lr:
            runs[tag] = _history_json(h)

    graph = _graph_info(cfg, model, sample, tgt_x, keys[8])
    est = _estimator_bias(cfg, tgt_x, keys[9])
    est_ind, est_inb = est["independent"], est["in_batch"]

    data = {
        "preset": preset,
        "seed": seed,
        "config": dataclasses.asdict(cfg),
        "n": n,
        "table_min_loss": tgt_table.min_loss,
        "closed_form": {"eigvals": np.asarray(tgt_x.eigvals).tolist(), "min_loss": tgt_x.min_loss,
                        **{k: np.asarray(v).tolist() for k, v in closed.items()}},
        "linear_class_optimum": {"min_loss": lin_min, **{k: np.asarray(v).tolist() for k, v in lin_opt.items()}},
        "runs": runs,
        "final": final,
        "graph": {k: np.asarray(v).tolist() for k, v in graph.items()},
        "estimators": {"independent": est_ind, "in_batch": est_inb},
        "seconds": time.perf_counter() - t_start,
    }
    return judge(data), data



def judge(data: dict) -> list:
    """The rows of C50-C64 from a run's saved ``data`` (re-judging never retrains)."""
    cfg = dataclasses.replace(PRESETS["cpu"], **data["config"])
    seed, n, final, runs, graph = data["seed"], data["n"], data["final"], data["runs"], data["graph"]
    closed, lin_opt = data["closed_form"], data["linear_class_optimum"]
    lin_min, min_loss, table_min = lin_opt["min_loss"], closed["min_loss"], data["table_min_loss"]
    est_ind, est_inb = data["estimators"]["independent"], data["estimators"]["in_batch"]
    setting = (f"K={cfg.n_classes}, K-bar={cfg.n_sub}, n={n}, d={cfg.d}, p={cfg.p}, sigma={cfg.sigma}, "
               f"batch={cfg.batch}, seed={seed}")
    rows = []
    outside = f"realized delta {graph['delta']:.3g} (Assumption 4.1 needs < 1; the same criteria inside it: C65-C68)"
    f = final
    rel = lambda v, m: (v - m) / abs(m)  # noqa: E731
    ts = f["table/spectral"]

    def over_seeds(name, minimum):
        gaps = np.asarray([rel(f[f"{name}/spectral" + (f"/seed{s}" if s else "")]["pop_loss"], minimum)
                           for s in range(cfg.train_seeds)])
        return gaps, (f"{int(np.sum(gaps <= LOSS_GAP))}/{gaps.size} training seeds pass; gap mean {gaps.mean():.3g}, "
                      f"std {gaps.std(ddof=1) if gaps.size > 1 else 0.0:.2g}, per seed {np.round(gaps, 5).tolist()}")

    gaps, seeds_note = over_seeds("table", table_min)
    rows.append(row(C["C50"], gaps.max(), LOSS_GAP, LE,
                    setting=f"{setting}, {cfg.steps_spectral} Adam steps, lr {cfg.lr:g}, in-batch negatives, worst of {gaps.size} seeds",
                    note=f"{seeds_note}; closed-form minimum {table_min:.6f}"))
    rows.append(row(C["C51"], ts["sine"], SINE_MAX, LE, setting=setting,
                    note=(f"learned sqrt(w)-weighted singular values {np.round(ts['singular_values'], 3).tolist()} vs "
                          f"sqrt(lambda) {np.round(closed['singular_values'], 3).tolist()}; alignment_f "
                          f"{ts['alignment_f']:.3f} (closed form {closed['alignment_f']:.3f}): vertices are sampled and weighed "
                          f"in the loss by w_x, so low-degree rows converge more slowly")))
    ls = f["linear/spectral"]
    gaps, seeds_note = over_seeds("linear", lin_min)
    sens = rel(f[f"linear/spectral/lr{cfg.lr_sensitivity:g}"]["pop_loss"], lin_min)
    rows.append(row(C["C52"], gaps.max(), LOSS_GAP, LE, setting=f"{setting}, lr {cfg.lr:g}, worst of {gaps.size} seeds",
                    note=(f"{seeds_note}; linear-class minimum {lin_min:.6f} (unrestricted {min_loss:.6f}); "
                          f"sensitivity: at lr {cfg.lr_sensitivity:g} (first seed) the gap is {sens:.3g}")))
    rows.append(row(C["C53"], ls["prominence"], PROMINENCE_MAX, LE, setting=f"{setting}; {outside}",
                    note=(f"singular values {np.round(ls['singular_values'], 3).tolist()}; closed form ratio "
                          f"{closed['prominence']:.3f}, linear-class optimum {lin_opt['prominence']:.3f}")))
    a0 = runs["linear/spectral"]["alignment_f"][0]
    rows.append(row(C["C54"], ls["alignment_f"], _moved(a0, lin_opt["alignment_f"], closed["alignment_f"]), GE,
                    require=bool(lin_opt["alignment_f"] > a0), setting=f"{setting}; {outside}",
                    note=(f"bound = max(f_min's {closed['alignment_f']:.4f} - {ALIGN_SLACK}, init {a0:.4f} + half the way to "
                          f"the best linear encoder's {lin_opt['alignment_f']:.4f}): initialization does not meet it (FAIL when the "
                          f"target is not above the initialization: nothing for training to show); "
                          f"Eq. 25 on U: learned {ls['alignment_u']:.3f} vs closed form {closed['alignment_u']:.3f}")))
    ms = f["mlp/spectral"]
    rows.append(row(C["C55"], ms["prominence"], PROMINENCE_MAX, LE, setting=f"{setting}, width {cfg.width}; {outside}",
                    note=(f"singular values {np.round(ms['singular_values'], 3).tolist()}; closed form ratio "
                          f"{closed['prominence']:.3f}")))
    a0 = runs["mlp/spectral"]["alignment_f"][0]
    rows.append(row(C["C56"], ms["alignment_f"], _moved(a0, closed["alignment_f"], closed["alignment_f"]), GE,
                    require=bool(closed["alignment_f"] > a0), setting=f"{setting}, width {cfg.width}; {outside}",
                    note=(f"bound = max(f_min's {closed['alignment_f']:.4f} - {ALIGN_SLACK}, init {a0:.4f} + half the way to "
                          f"f_min's): initialization does not meet it (FAIL when f_min is not above the initialization); Eq. 25 on U: learned "
                          f"{ms['alignment_u']:.3f} vs closed form {closed['alignment_u']:.3f}")))
    rows.append(row(C["C57"], ls["sine"], None, LE, verdict=INFO, setting=setting,
                    note=(f"the best linear encoder (closed form) is itself at sine {lin_opt['sine']:.3f} with loss "
                          f"{lin_min:.4f} vs {min_loss:.4f}: f(x) = Wx cannot make f constant on a sub-class")))
    rows.append(row(C["C58"], ms["sine"], None, LE, verdict=INFO, setting=f"{setting}, width {cfg.width}",
                    note=f"relative loss gap to the closed-form minimum {rel(ms['pop_loss'], min_loss):.2e}"))
    for cid, name in (("C59", "table"), ("C60", "linear"), ("C61", "mlp")):
        r = f[f"{name}/nt_xent"]
        sv = np.asarray(r["singular_values"])
        rank = int(np.sum(sv > 1e-2 * sv[0]))
        rows.append(row(C[cid], r["alignment_f"], None, GE, verdict=INFO,
                        setting=f"{setting}, temperature {cfg.temperature}, unit-norm outputs",
                        note=(f"spectral-loss closed form {closed['alignment_f']:.3f}; with a bias (span of 1 and "
                              f"the top K-bar-1 directions of the centred outputs) {r['alignment_bias']:.3f} vs "
                              f"{closed['alignment_bias']:.3f}; numerical rank {rank} of "
                              f"{cfg.p}; sigma_(K-bar+1)/sigma_K-bar {r['prominence']:.3f}; sine to f_min "
                              f"{r['sine']:.3f}; the outputs are centred (a simplex of K-bar-1 dims), and "
                              f"centring caps the alignment at 1 - 1/K = {1 - 1 / cfg.n_classes:.3f} for balanced "
                              f"classes")))
    for cid, est in (("C62", est_ind), ("C63", est_inb)):
        rows.append(row(C[cid], est["bias"], est["tol"], LE,
                        setting=f"M={est['M']} batches of {cfg.mc_batch} pairs, c = {MC_C} x std {est['std']:.3g}",
                        note=f"mean {est['mean']:.5f} vs population {est['population']:.5f}"))
    rows.append(row(C["C64"], graph["delta"], None, LE, verdict=INFO, setting=setting,
                    note=(f"xi = {graph['xi']:.3g}; degrees vary by {graph['degree_ratio']:.2g}x; yet lambda_K-bar - "
                          f"lambda_(K-bar+1) = {graph['gap']:.3f} (A-bar's normalization removes the degree spread the "
                          f"column-ratio delta measures)" + (
                              f"; masking graph: delta {graph['mask_delta']:.3g}, xi {graph['mask_xi']:.3g}, top "
                              f"eigenvalues {np.round(graph['mask_eigvals'], 3).tolist()}" if "mask_xi" in graph
                              else ""))))

    return rows


def plot(data: dict, outdir) -> list[Path]:
    """Two figures, pure functions of ``data`` (experiments/ledger/plots/encoders.py)."""
    from experiments.ledger.plots import encoders as plots_encoders

    return plots_encoders.plot(data, outdir)
