"""``clspec cifar figures RUN...``: the paper's Fig. 1, Fig. 2c-d and Fig. 3 from saved training runs.

Pure functions of the saved metrics (``config.json`` and ``metrics.jsonl`` of ``clspec cifar
train`` run folders, e.g. those of a ``reproduce`` grid): re-plotting never re-trains.

* **Fig. 1** (``fig1_probe.png``): linear probes on the frozen SimCLR encoder, one colour per noise
  setting; dashed: training accuracy / loss against the *clean* labels, solid: test accuracy / loss.
  The paper's point: the dashed curve tracks the solid one.
* **Fig. 2c-d** (``fig2cd_early.png``): fine-tuning with cross-entropy at the highest symmetric noise
  found, random init vs CL init: (c) test accuracy, (d) the loss on the mislabelled points (w.r.t. their
  noisy labels) over the epochs. Several seeds of a setting are drawn as mean and min-max band.
* **Fig. 3** (``fig3_frozen_vs_finetuned.png``): test accuracy over the epochs of the frozen encoder
  (probe) and of fine-tuning from the same CL init, one panel per noise setting.

A figure whose runs are missing is not drawn (the command says which and why).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments.common import plotting


def load_run(run_dir: Path | str) -> dict:
    """``{"dir", "config", "epochs"}`` of a training run folder (per-epoch rows of metrics.jsonl)."""
    run_dir = Path(run_dir)
    config_path, jsonl = run_dir / "config.json", run_dir / "metrics.jsonl"
    if not config_path.exists() or not jsonl.exists():
        raise FileNotFoundError(f"{run_dir} is not a training run folder (needs config.json and metrics.jsonl)")
    config = json.loads(config_path.read_text())
    config = config.get("config", config)
    epochs = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    return {"dir": str(run_dir), "config": config, "epochs": epochs}


def _is_train(run: dict) -> bool:
    return "mode" in run["config"] and bool(run["epochs"])


def _init(run: dict) -> str:
    return "random" if run["config"].get("init") == "random" else "CL"


def _series(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Epochs and the mean, min and max of ``key`` over runs (up to the shortest run)."""
    length = min(len(r["epochs"]) for r in runs)
    values = np.array([[np.nan if e.get(key) is None else e[key] for e in r["epochs"][:length]] for r in runs], float)
    return np.arange(1, length + 1), np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)


def _line(ax, runs, key, scale=1.0, **kw):
    x, mean, lo, hi = _series(runs, key)
    (line,) = ax.plot(x, scale * mean, **kw)
    if len(runs) > 1:
        ax.fill_between(x, scale * lo, scale * hi, color=line.get_color(), alpha=0.15, linewidth=0)
    return line


def _noise_order(noise: str) -> tuple:
    kind, _, rate = noise.partition(":")
    return (kind != "sym", float(rate or 0))


def fig1(runs: list[dict], path: Path | str) -> Path | None:
    """Fig. 1 from linear-probe runs (any init); None when there are none."""
    probes = [r for r in runs if _is_train(r) and r["config"]["mode"] == "probe"]
    if not probes:
        return None
    by_noise = defaultdict(list)
    for r in probes:
        by_noise[r["config"]["noise"]].append(r)
    plt = plotting.pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for noise in sorted(by_noise, key=_noise_order):
        group = by_noise[noise]
        line = _line(ax_acc, group, "test_acc", 100, label=f"{noise} test")
        _line(ax_acc, group, "train_acc_clean", 100, linestyle="--", color=line.get_color(),
              label=f"{noise} train vs clean labels")
        _line(ax_loss, group, "test_loss", color=line.get_color(), label=f"{noise} test")
        if all("train_loss_clean" in e for r in group for e in r["epochs"]):
            _line(ax_loss, group, "train_loss_clean", linestyle="--", color=line.get_color(),
                  label=f"{noise} train vs clean labels")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Linear probe on frozen SimCLR features")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy (nats)", title="Loss")
    ax_acc.legend(fontsize=7)
    ax_loss.legend(fontsize=7)
    return plotting.save(fig, path)


def fig2cd(runs: list[dict], path: Path | str) -> Path | None:
    """Fig. 2c-d from cross-entropy fine-tuning runs at the highest symmetric noise with both inits."""
    e2e = [r for r in runs if _is_train(r) and r["config"]["mode"] == "finetune"
           and r["config"].get("method", "ce") == "ce" and r["config"]["noise"].startswith("sym:")]
    rates = sorted({r["config"]["noise"] for r in e2e if {_init(q) for q in e2e if q["config"]["noise"] ==
                    r["config"]["noise"]} == {"random", "CL"}}, key=_noise_order)
    if not rates:
        return None
    noise = rates[-1]
    plt = plotting.pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for init in ("random", "CL"):
        group = [r for r in e2e if r["config"]["noise"] == noise and _init(r) == init]
        label = f"{'pre-trained (SimCLR)' if init == 'CL' else 'random init'}, n={len(group)}"
        _line(ax_acc, group, "test_acc", 100, label=label)
        _line(ax_loss, group, "noisy_points_loss", label=label)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"(c) test accuracy, {noise}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy w.r.t. noisy labels (nats)",
                title="(d) loss on the mislabelled points")
    ax_acc.legend()
    ax_loss.legend()
    return plotting.save(fig, path)


def fig3(runs: list[dict], path: Path | str) -> Path | None:
    """Fig. 3 from a probe and a fine-tuning (cross-entropy) run from CL init per noise setting."""
    cl = [r for r in runs if _is_train(r) and _init(r) == "CL" and r["config"].get("method", "ce") == "ce"]
    noises = sorted({r["config"]["noise"] for r in cl if {q["config"]["mode"] for q in cl
                     if q["config"]["noise"] == r["config"]["noise"]} == {"probe", "finetune"}}, key=_noise_order)
    if not noises:
        return None
    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, len(noises), figsize=(4 * len(noises), 3.6), squeeze=False)
    for ax, noise in zip(axes[0], noises):
        for mode, label in (("probe", "frozen (linear probe)"), ("finetune", "fine-tuned")):
            group = [r for r in cl if r["config"]["noise"] == noise and r["config"]["mode"] == mode]
            _line(ax, group, "test_acc", 100, label=f"{label}, n={len(group)}")
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=noise)
        ax.legend(fontsize=7)
    return plotting.save(fig, path)


FIGURES = {"fig1_probe.png": fig1, "fig2cd_early.png": fig2cd, "fig3_frozen_vs_finetuned.png": fig3}


def draw(run_dirs: list[Path | str], outdir: Path | str) -> dict[str, Path | None]:
    """Every figure the runs allow, into ``outdir``: name -> path (None: not enough runs)."""
    runs = [load_run(d) for d in run_dirs]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return {name: fn(runs, outdir / name) for name, fn in FIGURES.items()}


def add_parser(sub) -> None:
    p = sub.add_parser("figures", help="Fig. 1, 2c-d and 3 of the paper from saved training runs")
    p.add_argument("runs", nargs="+", help="training run folders (config.json + metrics.jsonl)")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.set_defaults(func=run_figures)


def run_figures(args) -> int:
    for name, path in draw(args.runs, args.out).items():
        print(f"{name}: {path}" if path else f"{name}: not drawn (no runs of the kind it needs)", file=sys.stderr
              if path is None else sys.stdout)
    return 0
