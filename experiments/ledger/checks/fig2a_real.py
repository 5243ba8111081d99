"""C98-C99: Fig. 2a on the real network, every singular value of J(W_0), CPU-scale.

Reads the committed evidence ``experiments/ledger/evidence/fig2a_cpu.json``, written by
``clspec jacobian-fig2a`` (:data:`COMMAND`): ResNet-32 with a 10-way linear head, J the Jacobian of
the K = 10 logits in all parameters (encoder and head; App. C's J(W_0), rows i*K + k), at
n = 1,000 class-balanced CIFAR-10 test points: **all nK = 10,000 singular values** (the full
10,000 x 10,000 Gram J J^T in float32 tiles, then a float64 eigh), for random initialization and
for the ``cpu``-preset SimCLR checkpoint (16 epochs on 8,000 images; the head keeps the random
initialization's draw), each in two BatchNorm conventions:

* ``running``: evaluation mode with the network's stored running statistics (at random
  initialization mean 0, variance 1, so every BatchNorm is the identity up to 1/sqrt(1 + eps));
* ``batch``: the mean and (biased) variance of each BatchNorm input over the n points (and the
  spatial positions) in one training-mode forward pass of all n points at W_0, **held fixed** in J
  (not differentiated through). Why this one: App. C writes J's rows as dz(x_i, W)/dW, the output
  of a point as a function of that point and the weights; statistics differentiated through would
  make every row depend on all n points, with cross terms the definition has none of. No code of
  the paper is public; a freshly built PyTorch network is in training mode, which normalizes with
  batch statistics, and fixed statistics of the n points are that normalization with App. C's
  per-point structure. (Differentiating through them would also cost a vjp over all n points per
  row of J, about n = 1,000 times the per-point computation.)

Claims, with the measures fixed here before any of these spectra was computed (2026-12-03 14:06 UTC, commit 5b1d859):

* C98 (App. C: pre-training "greatly shrinks the small singular values", Fig. 2a): the fraction of
  ||J||_F^2 = sum_i sigma_i^2 beyond the top 10 singular directions (App. C's information space I,
  10 directions), tail = sum_{i > 10} sigma_i^2 / sum_i sigma_i^2, of the pre-trained network is at
  most that of random initialization, both in the same BatchNorm convention: one row per convention
  (C98.1 running, C98.2 batch), the relation ``<=`` with no slack. Scale-free on purpose: the
  conventions change ||J|| by orders of magnitude, and "small" is relative to the top directions.
  Reported beside it, not judged: the count of sigma_i / sigma_1 < 1e-2, the median sigma_i / sigma_1
  and the raw tail energy sum_{i > 10} sigma_i^2.
* C99 (Fig. 2a's axis, 0 to about 500): which convention puts the singular values on the paper's
  axis: sigma_1 of each network in each convention and the fraction of sigma_i <= 500. INFO: the axis
  is read off a figure, not a stated number; the note names the convention whose larger sigma_1 of
  the two networks is nearest 500 (log ratio).

Rows are judged at n = 1,000 (the paper's n) only; the n = 100 / 200 runs of the evidence (the
scaling, and a float32-vs-float64 tile comparison) are printed in the notes. Without the evidence,
or without a network in it, the rows are INFO "skipped" with the reason. These are CPU-scale (16
SimCLR epochs on 8,000 images, not 1000 epochs on 50,000): a FAIL is a finding about a briefly
pre-trained encoder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from experiments.ledger.claims import INFO, LE, Claim, by_id, no_progress, row

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "fig2a_cpu.json"
COMMAND = ("clspec jacobian-fig2a --n 1000 --checkpoint /work/runs/pretrain-cpu-keep/epoch-016/checkpoint.msgpack "
           "--evidence experiments/ledger/evidence/fig2a_cpu.json")
TOP = 10  # App. C's information space: the top-10 singular directions
MODES = ("running", "batch")
INITS = ("random", "pretrained")
AXIS = 500.0  # the right end of the paper's Fig. 2a x axis (read off the figure)
SMALL = 1e-2  # reported: the count of sigma_i / sigma_1 below this
MAIN = "n=1000"

CLAIMS = (
    Claim("C98", "Sec. 4.2, App. C (Fig. 2a), CPU-scale",
          "CIFAR-10, ResNet-32, n = 1,000 test points, all 10,000 singular values of J(W_0): pre-training shrinks the "
          "small singular values: the fraction of ||J||_F^2 beyond the top 10 directions of the pre-trained network "
          "(cpu preset) <= random init's, same BatchNorm convention (one row per convention: running, batch)"),
    Claim("C99", "App. C Fig. 2a (x axis 0 to ~500), CPU-scale",
          "Which BatchNorm convention (running statistics, or the batch statistics of the n points held fixed) puts "
          "ResNet-32's singular values at n = 1,000 on the paper's axis: sigma_1 and the fraction <= 500 per network"),
)
C = by_id(CLAIMS)


def load(path: Path | str = EVIDENCE) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def run(preset: str = "cpu", *, seed: int = 0, progress=no_progress, evidence: Path | str | None = None):
    """Rows from the evidence file (the same at every preset and seed: it is a recorded run)."""
    from experiments.ledger.claims import PRESETS

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    path = Path(evidence) if evidence is not None else EVIDENCE
    ev = load(path)
    data = {"evidence": str(path) if ev is not None else None, "runs": None if ev is None else ev.get("runs", {})}
    return judge(data), data


def tail_fraction(sigma, top: int = TOP) -> float:
    """sum_{i > top} sigma_i^2 / sum_i sigma_i^2 (sigma in descending order)."""
    s2 = np.sort(np.asarray(sigma, dtype=np.float64))[::-1] ** 2
    return float(np.sum(s2[top:]) / np.sum(s2))


def describe(sigma) -> dict:
    """The numbers a C98 note reports beside the judged tail fraction."""
    s = np.sort(np.asarray(sigma, dtype=np.float64))[::-1]
    return dict(sigma_1=float(s[0]), tail=tail_fraction(s), small=int(np.sum(s / s[0] < SMALL)), count=int(s.size),
                median=float(np.median(s) / s[0]), tail_energy=float(np.sum(s[TOP:] ** 2)),
                on_axis=float(np.mean(s <= AXIS)))


def _tag(run: dict) -> str:
    """The setting: the data, the precision, and where the networks' numbers came from (each network records the
    command, commit and date it was computed with; the run's own fields are those of its last write)."""
    c, nets = run["config"], run["networks"].values()
    commits = sorted({str(v.get("commit", run.get("commit")))[:7] for v in nets})
    dates = sorted(str(v.get("date", run.get("date"))) for v in nets)
    return (f"CPU-scale: {c['network']}, n = {c['n']} CIFAR-10 {c['split']} points, {c['tiles']} Gram tiles + float64 "
            f"eigh; {len(dates)} networks by `clspec jacobian-fig2a --n {c['n']} --networks INIT:BN` (each one's command "
            f"in the evidence), commit {', '.join(commits)}, {dates[0][:16]} to {dates[-1][:16]}")


def _pilots(runs: dict, name: str) -> str:
    """sigma_1 and the tail fraction of network ``name`` at the other n of the evidence (the scaling runs)."""
    out = []
    for key, r in sorted(runs.items(), key=lambda kv: kv[1]["config"]["n"]):
        if key != MAIN and "float64" not in key and name in r["networks"]:
            d = describe(r["networks"][name]["sigma"])
            out.append(f"{key}: sigma_1 {d['sigma_1']:.4g}, tail {d['tail']:.4f}")
    return "; ".join(out)


def tile_check(runs: dict) -> str:
    """float32 against float64 tiles where the evidence has both runs of one n: the largest |sigma_i| difference
    relative to sigma_1, and the tail fractions' difference."""
    out = []
    for key, r64 in runs.items():
        if not key.endswith(" float64") or key[: -len(" float64")] not in runs:
            continue
        r32 = runs[key[: -len(" float64")]]
        for name, a in r64["networks"].items():
            if name in r32["networks"]:
                s64, s32 = (np.sort(np.asarray(x["networks"][name]["sigma"], float))[::-1] for x in (r64, r32))
                out.append(f"{name} at {key[: -len(' float64')]}: max |sigma32 - sigma64| / sigma_1 "
                           f"{np.max(np.abs(s32 - s64)) / s64[0]:.1e}, tail {tail_fraction(s32) - tail_fraction(s64):+.1e}")
    return ("float32 vs float64 tiles: " + "; ".join(out)) if out else ""


def _skipped(claim: Claim, why: str):
    return row(claim, math.nan, None, LE, verdict=INFO, setting="CPU-scale", note=f"skipped: {why}")


def judge(data: dict) -> list:
    """C98.1 (running), C98.2 (batch) and C99 from ``data["runs"]`` (the evidence's runs)."""
    runs = data.get("runs")
    if runs is None:
        why = f"evidence file {EVIDENCE.name} is missing; produce it with `{COMMAND}`"
        return [_skipped(C["C98"], why), _skipped(C["C98"], why), _skipped(C["C99"], why)]
    main = runs.get(MAIN)
    if main is None:
        why = f"the evidence has no {MAIN} run (it has {sorted(runs)})"
        return [_skipped(C["C98"], why), _skipped(C["C98"], why), _skipped(C["C99"], why)]
    nets = main["networks"]
    rows = []
    check = tile_check(runs)
    for mode in MODES:
        r, p = nets.get(f"random/{mode}"), nets.get(f"pretrained/{mode}")
        if r is None or p is None:
            missing = [f"{i}/{mode}" for i, v in (("random", r), ("pretrained", p)) if v is None]
            rows.append(_skipped(C["C98"], f"BatchNorm {mode}: the {MAIN} run lacks {', '.join(missing)}"))
            continue
        dr, dp = describe(r["sigma"]), describe(p["sigma"])
        note = (f"BatchNorm {mode}: tail beyond the top {TOP} pre-trained {dp['tail']:.4f} vs random {dr['tail']:.4f}; "
                f"sigma_i/sigma_1 < {SMALL:g}: {dp['small']} vs {dr['small']} of {dr['count']}; median sigma_i/sigma_1 "
                f"{dp['median']:.4f} vs {dr['median']:.4f}; raw tail energy {dp['tail_energy']:.4g} vs {dr['tail_energy']:.4g}; "
                f"sigma_1 {dp['sigma_1']:.4g} vs {dr['sigma_1']:.4g}")
        other = nets.get(f"random/{'batch' if mode == 'running' else 'running'}")
        if mode == "running" and other is not None:
            note += f"; pre-trained (running) vs random (batch) tail: {dp['tail']:.4f} vs {describe(other['sigma'])['tail']:.4f}"
        for name, what in (("random", "random"), ("pretrained", "pre-trained")):
            pil = _pilots(runs, f"{name}/{mode}")
            if pil:
                note += f"; {what} at other n: {pil}"
        if check:
            note += f"; {check}"
        rows.append(row(C["C98"], dp["tail"], dr["tail"], LE, setting=f"BN {mode}; " + _tag(main), note=note))
    rows.append(axis_row(main, runs))
    return rows


def axis_row(main: dict, runs: dict):
    """C99 (INFO): sigma_1 and the fraction of sigma_i <= 500 of each network in each convention; the convention
    whose larger sigma_1 is nearest the paper's axis end (log ratio) is named."""
    nets = main["networks"]
    parts, best = [], None
    for mode in MODES:
        here = {name: describe(nets[f"{name}/{mode}"]["sigma"]) for name in INITS if f"{name}/{mode}" in nets}
        if not here:
            continue
        parts.append(f"{mode}: " + ", ".join(f"{k} sigma_1 {d['sigma_1']:.4g} ({100 * d['on_axis']:.1f}% <= {AXIS:g})"
                                             for k, d in here.items()))
        top = max(d["sigma_1"] for d in here.values())
        if best is None or abs(math.log(top / AXIS)) < abs(math.log(best[1] / AXIS)):
            best = (mode, top)
    if best is None:
        return _skipped(C["C99"], f"the {MAIN} run has no networks")
    return row(C["C99"], best[1], AXIS, LE, verdict=INFO, setting=_tag(main),
               note=f"nearest the paper's axis (0 to ~{AXIS:g}): BatchNorm {best[0]} (largest sigma_1 {best[1]:.4g}, "
                    f"{best[1] / AXIS:.2f}x the axis end); " + "; ".join(parts))


def plot(data: dict, outdir) -> list[Path]:
    from experiments.ledger.plots.fig2a_real import plot as draw

    return draw(data, outdir)
