"""``clspec cifar reproduce --table 1|2|3 --preset P``: the paper's Tables 1-3 as grids of runs.

    clspec cifar reproduce --table 1 --preset cpu --dry-run     # the grid and its estimated time
    clspec cifar reproduce --table 1 --preset cpu                # run (or resume) it, then the table

A table is a grid of cells (method x noise x {random init, CL init} x network), each run for
``--seeds`` seeds (seeds 0, 1, ...; ``--seed-start S`` starts at S, for fresh seeds beside an earlier
grid's) as a separate ``clspec cifar train`` run folder under
``results/cifar/reproduce-table<T>-<preset>/``. Every run is resumable, so an interrupted grid
continues where it stopped: finished runs are skipped, a run with a checkpoint resumes from it
with identical results, and the preset's SimCLR pre-training (the CL init) is run or resumed first
when it is missing (``--methods``, ``--inits``, ``--noises`` and ``--cells METHOD/NOISE,...`` keep a part of
the grid). Every CL-init run records the sha256 of its checkpoint file, and ``--evidence`` lists them.
Then ``table.md`` and ``table.json`` give, per cell, the mean +- std over
seeds and n of the **last-epoch** test accuracy and of the **best-epoch** one (the epoch selected
on the test set, as the paper's tables are), next to the paper's number and the difference.

Tables (``shared/PAPER.md`` 4.2-4.4):

1. Robust methods with and without CL init (Table 1): Crust, Mixup, ELR, CE (E2E) on CIFAR-10 or
   CIFAR-100 under sym 0.2/0.5/0.8 and asym 0.4 (``sym`` is the paper's Crust convention, a flip to
   another class).
2. Network size (Table 2): CL+Mixup with ResNet-32 and a wider network at sym 0.8 and asym 0.4.
3. An image-folder dataset with real label noise (Table 3, mini-WebVision; ``--data`` is the
   folder): Crust, Mixup, ELR, and CL+E2E, CL+Mixup, CL+ELR, top-1 and top-5 on the folder's test
   split.

Presets size the grid: ``smoke`` (CI: the tiny network on a few images, 2 epochs), ``cpu``
(ResNet-32 fine-tuned on the ``cpu`` pre-training's 4,000 CIFAR-10 images for 8 epochs at
sym 0.8 and asym 0.4, 2 seeds: the CPU-scale evidence), ``gpu15`` and ``paper``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from experiments.cifar import configs
from experiments.cifar.grids import TABLES, Cell, Grid, grid, paper_value, select
from experiments.common.runs import atomic_write_text, write_json

# ----------------------------------------------------------------------------- running the grid


def grid_dir(g: Grid, results: Path | str = "results") -> Path:
    return Path(results) / "cifar" / f"reproduce-table{g.table}-{g.preset}"


def pretrain_path(g: Grid, arch: str, results: Path | str = "results") -> Path:
    """The preset's pre-training run of ``arch`` (``clspec cifar pretrain --preset P`` writes the
    default network's there too)."""
    base = configs.pretrain_dir(g.preset, results)
    return base if arch == g.pretrain.arch else base.with_name(f"{base.name}-{arch}")


def run_status(run_dir: Path, epochs: int) -> str:
    """``done`` (metrics.json with all epochs), ``resume`` (a checkpoint) or ``new``."""
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        summary = json.loads(metrics.read_text())
        if summary.get("epochs_done") == epochs:
            return "done"
    return "resume" if (run_dir / "checkpoint.msgpack").exists() else "new"


def ensure_pretrained(g: Grid, arch: str, results, pre_train, pre_test, progress: bool) -> Path:
    """The preset's pre-training run of ``arch``, run or resumed here unless it is finished. A
    folder that is a link (a shared checkpoint) is only read: unfinished, it is an error."""
    from experiments.cifar import train as loops

    pcfg = g.pretrain_config(arch)
    path = pretrain_path(g, arch, results)
    status = run_status(path, pcfg.epochs)
    if status != "done":
        if path.is_symlink():
            raise ValueError(f"pre-training {path} (a link to {path.resolve()}) is not finished ({pcfg.epochs} "
                             f"epochs); finish it there, this grid only reads it")
        print(f"reproduce: pre-training {arch} ({status}) -> {path}", file=sys.stderr)
        loops.pretrain(pcfg, path, pre_train, pre_test, resume=status == "resume", progress=progress)
    return path


def train_images(g: Grid) -> int | None:
    """How many images the grid trains on with noisy labels (None: all); :func:`load_data` draws them
    (fewer where the dataset itself has fewer)."""
    if g.subset is not None:
        return g.subset if g.pretrain.train_limit is None else min(g.subset, g.pretrain.train_limit)
    limits = [n for n in (g.train.train_limit, g.pretrain.train_limit) if n is not None]
    return min(limits) if limits else None


def load_data(g: Grid, data: str | None):
    """The training and test sets of the grid: the pre-training's images, then (``subset``) a
    class-balanced subset of them for training on noisy labels."""
    from experiments.cifar.data import load_dataset, stratified_subset

    path = data or configs.default_data()
    if path is None:
        raise FileNotFoundError(f"--data is needed: the shared CIFAR-10 copy {configs.SHARED_CIFAR10} does not exist here")
    if not Path(path).exists():
        raise FileNotFoundError(f"--data {path} does not exist")
    pre_train = load_dataset(path, "train", limit=g.pretrain.train_limit, seed=0)
    test = load_dataset(path, "test", limit=g.train.test_limit, seed=0)
    pre_test = test if g.pretrain.test_limit == g.train.test_limit else load_dataset(
        path, "test", limit=g.pretrain.test_limit, seed=0)
    train, n = pre_train, train_images(g)
    if n is not None and n < len(pre_train.labels):
        if g.subset is not None:
            keep = stratified_subset(pre_train.labels, n, seed=0)
            indices = None if pre_train.indices is None else pre_train.indices[keep]
            train = dataclasses.replace(pre_train, images=pre_train.images[keep], labels=pre_train.labels[keep],
                                        indices=indices)
        else:
            # the training preset's own images (what `clspec cifar train --preset P` reads): with the
            # same seed, the class-balanced draw of fewer images is inside the pre-training's draw
            train = load_dataset(path, "train", limit=n, seed=0)
            if pre_train.indices is not None and not np.isin(train.indices, pre_train.indices).all():
                raise ValueError(f"the {n} training images are not all among the "
                                 f"{len(pre_train.labels)} pre-training images of this dataset")
    return pre_train, pre_test, train, test


def run_grid(g: Grid, *, seeds: int | None = None, data: str | None = None, results: Path | str = "results",
             progress: bool = False, stop_after: tuple[int, int] | None = None) -> dict | None:
    """Run or resume every run of the grid, then write the table. ``stop_after=(k, e)`` stops run k
    (0-based, in grid order) after e epochs and returns None, as an interrupted grid (for tests)."""
    from experiments.cifar import train as loops
    from experiments.cifar.noise import noisy_labels_for

    out = grid_dir(g, results)
    runs = g.runs(seeds)
    pre_train, pre_test, train_set, test_set = load_data(g, data)
    num_classes = len(train_set.classes)
    t0 = time.perf_counter()
    for k, (cell, seed) in enumerate(runs):
        cfg = g.train_config(cell, seed)
        run_dir = out / "runs" / f"{cell.name()}-seed{seed}"
        status = run_status(run_dir, cfg.epochs)
        elapsed = time.perf_counter() - t0
        print(f"reproduce [{k + 1}/{len(runs)}] {cell.label} {cell.noise} seed {seed}: {status} "
              f"({elapsed / 60:.1f} min so far)", file=sys.stderr, flush=True)
        if status == "done":
            continue
        noisy = noisy_labels_for(train_set, cfg.noise, seed=seed)
        init = None
        if cell.init == "pretrained":  # pre-train (or resume) the CL init when the first run needs it
            init = ensure_pretrained(g, cfg.arch, results, pre_train, pre_test, progress) / "checkpoint.msgpack"
        stop = stop_after[1] if stop_after is not None and stop_after[0] == k else None
        loops.train(cfg, run_dir, train_set, test_set, noisy, init=init, resume=status == "resume",
                    progress=progress, stop_after_epochs=stop)
        if stop is not None:
            return None
    return write_table(g, runs, out, num_classes)


# ----------------------------------------------------------------------------- the table


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()) if v.size else None,
            "std": float(v.std(ddof=1)) if v.size > 1 else None, "n": int(v.size)}


def _pm(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["std"] is not None else f"{s['mean']:.1f}"


def collect(g: Grid, runs: list[tuple[Cell, int]], out: Path, num_classes: int) -> list[dict]:
    """Per cell: the per-seed last-epoch and best-epoch test accuracies (%) of its finished runs."""
    rows = []
    for cell in dict.fromkeys(c for c, _ in runs):
        per_seed = []
        for c, seed in runs:
            if c != cell:
                continue
            path = out / "runs" / f"{cell.name()}-seed{seed}" / "metrics.json"
            if not path.exists():
                continue
            s = json.loads(path.read_text())
            if s.get("epochs_done") != s.get("epochs"):
                continue
            rec = {"seed": seed, "last": 100 * s["last"]["test_acc"], "best": 100 * s["best"]["test_acc"],
                   "best_epoch": s["best"]["epoch"], "epochs": s["epochs"]}
            if s.get("init_sha256"):  # the CL init's checkpoint file (runs since 2026-12-03)
                rec["init_sha256"] = s["init_sha256"]
            if g.table == 3:
                rec["last_top5"] = 100 * s["last"]["test_acc_top5"]
            per_seed.append(rec)
        paper = paper_value(g.table, cell, num_classes)
        last, best = _stats([r["last"] for r in per_seed]), _stats([r["best"] for r in per_seed])
        row = {"label": cell.row_label(g.table), "method": cell.method, "init": cell.init, "noise": cell.noise,
               "arch": cell.arch or g.train.arch, "last": last, "best": best, "paper": paper,
               "last_minus_paper": None if paper is None or last["mean"] is None else last["mean"] - paper,
               "runs": per_seed}
        if g.table == 3:
            row["last_top5"] = _stats([r["last_top5"] for r in per_seed])
            row["paper_top5"] = paper_value(3, cell, num_classes, top=5)
        rows.append(row)
    return rows


def markdown(g: Grid, rows: list[dict], num_classes: int) -> str:
    head = (f"# Table {g.table}, preset {g.preset} ({num_classes} classes)\n\n"
            f"Test accuracy (%), mean ± std over n seeds. *last*: the last epoch ({g.train.epochs}); *best*: the "
            f"best epoch **selected on the test set** (as the paper's tables are). The paper's numbers come from "
            f"its full-scale runs; at other presets the difference measures the scale, not a reproduction.\n\n")
    top5 = g.table == 3
    cols = ["Method", "Noise", "n", "last epoch", "best epoch (test-selected)", "paper", "last − paper"]
    if top5:
        cols[4:4] = ["last top-5", ]
        cols.insert(-1, "paper top-5")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        paper = "-" if r["paper"] is None else f"{r['paper']:.1f}"
        diff = "-" if r["last_minus_paper"] is None else f"{r['last_minus_paper']:+.1f}"
        cells = [r["label"], r["noise"], str(r["last"]["n"]), _pm(r["last"]), _pm(r["best"]), paper, diff]
        if top5:
            cells[4:4] = [_pm(r["last_top5"])]
            cells.insert(-1, "-" if r["paper_top5"] is None else f"{r['paper_top5']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def _num_classes(out: Path, g: Grid, seeds: int | None) -> int:
    """The number of classes of a grid's finished runs (from their noisy labels' transition matrix)."""
    for cell, seed in g.runs(seeds):
        path = out / "runs" / f"{cell.name()}-seed{seed}" / "noisy_labels.npz"
        if path.exists():
            with np.load(path) as z:
                return int(z["transition"].shape[0])
    raise FileNotFoundError(f"--collect: no finished runs under {out / 'runs'}")


def write_table(g: Grid, runs, out: Path, num_classes: int) -> dict:
    rows = collect(g, runs, out, num_classes)
    table = {"table": g.table, "preset": g.preset, "num_classes": num_classes, "epochs": g.train.epochs,
             "selection": {"last": "last epoch", "best": "best epoch selected on the test set"}, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "table.json", table)
    atomic_write_text(out / "table.md", markdown(g, rows, num_classes))
    return table


def evidence(g: Grid, table: dict, out: Path, *, command: str, data: str | None) -> dict:
    """The committed record of a finished grid (``--evidence``): the command, commit, date and
    machine, the settings, and per run its last- and best-epoch test accuracy and per-epoch curves."""
    import datetime
    import os
    import platform

    from experiments.common.runs import git_commit

    runs = []
    for r in table["rows"]:
        cell = Cell(r["method"], r["init"], r["noise"], None if r["arch"] == g.train.arch else r["arch"])
        for rec in r["runs"]:
            run_dir = out / "runs" / f"{cell.name()}-seed{rec['seed']}"
            epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            runs.append({
                "label": r["label"], "method": r["method"], "init": r["init"], "noise": r["noise"], "arch": r["arch"],
                "seed": rec["seed"], "last_test_acc": rec["last"], "best_test_acc": rec["best"],
                "best_epoch": rec["best_epoch"], **({"init_sha256": rec["init_sha256"]} if "init_sha256" in rec else {}),
                "curves": {k: [e.get(k) for e in epochs] for k in
                           ("test_acc", "test_loss", "train_acc_clean", "noisy_points_loss", "points_trained")},
            })
    return {
        "command": command,
        "commit": os.environ.get("CLSPEC_COMMIT") or git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores",
        "load_average_at_collect": [round(x, 2) for x in os.getloadavg()],
        "data": str(data or configs.default_data()),
        "table": g.table, "preset": g.preset, "num_classes": table["num_classes"],
        "train_images": train_images(g), "pretrain_images": g.pretrain.train_limit,
        "pretrain_epochs": g.pretrain.epochs, "settings": dataclasses.asdict(g.train),
        "pretrain_checkpoint_sha256": sorted({r["init_sha256"] for r in runs if "init_sha256" in r}),
        "units": "test accuracy in %; last = last epoch, best = best epoch selected on the test set",
        "runs": runs,
    }


# ----------------------------------------------------------------------------- dry run


def measure_rates(arch: str, batch_size: int, image_shape=(32, 32, 3), steps: int = 3) -> dict:
    """Images per second of one fine-tuning step and of evaluation, measured here (compile excluded)."""
    import jax

    from experiments.cifar import train_steps
    from experiments.cifar.steps import create_state

    model, tx, step = train_steps._finetune_step(arch, 10, 5e-3, 1e-3, 0.9, True)
    state = create_state(model, tx, jax.random.PRNGKey(0), image_shape).replace(method_state={})
    x = np.random.default_rng(0).integers(0, 256, (batch_size, *image_shape), dtype=np.uint8)
    y = np.arange(batch_size) % 10
    state, m = step(state, x, y, jax.random.PRNGKey(0))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for i in range(steps):
        state, m = step(state, x, y, jax.random.PRNGKey(i + 1))
        jax.block_until_ready(m)
    train_rate = steps * batch_size / (time.perf_counter() - t)
    predict = train_steps._predict(arch, 10)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    xe = np.concatenate([x] * 4)
    jax.block_until_ready(predict(variables, xe))
    t = time.perf_counter()
    jax.block_until_ready(predict(variables, xe))
    return {"train_images_per_s": train_rate, "eval_images_per_s": len(xe) / (time.perf_counter() - t)}


def estimate_s(cfg: configs.TrainConfig, n_train: int, n_test: int, rates: dict) -> float:
    """Seconds of one run: its training images / the step rate, plus its evaluations (and Crust's
    per-epoch pass over the training set) / the evaluation rate; Crust epochs visit crust_ratio n."""
    n_eval = n_train if cfg.eval_train_limit is None else min(cfg.eval_train_limit, n_train)
    total = 0.0
    for epoch in range(cfg.epochs):
        crust = cfg.method == "crust" and epoch >= cfg.crust_warmup
        trained = cfg.crust_ratio * n_train if crust else n_train
        evaluated = n_eval + n_test + (n_train if crust else 0)
        total += trained / rates["train_images_per_s"] + evaluated / rates["eval_images_per_s"]
    return total


def dry_run(g: Grid, *, seeds: int | None, results: Path | str, n_train: int, n_test: int,
            rates: dict | None = None) -> str:
    rates = rates or measure_rates(g.train.arch, g.train.batch_size)
    out = grid_dir(g, results)
    lines = [f"table {g.table}, preset {g.preset}: {len(g.runs(seeds))} runs -> {out}",
             f"measured here: {rates['train_images_per_s']:.1f} training images/s, "
             f"{rates['eval_images_per_s']:.1f} evaluation images/s ({g.train.arch}, batch {g.train.batch_size})"]
    total = 0.0
    for arch in sorted({g.train_config(c, 0).arch for c, _ in g.runs(seeds) if c.init == "pretrained"}):
        pcfg = g.pretrain_config(arch)
        status = run_status(pretrain_path(g, arch, results), pcfg.epochs)
        # A SimCLR step runs 2 views per image: about half the fine-tuning rate (an estimate).
        est = 0.0 if status == "done" else pcfg.epochs * (pcfg.train_limit or n_train) * 2 / rates["train_images_per_s"]
        total += est
        lines.append(f"  pretrain {arch}: {status}, ~{est / 60:.1f} min")
    for cell, seed in g.runs(seeds):
        cfg = g.train_config(cell, seed)
        status = run_status(out / "runs" / f"{cell.name()}-seed{seed}", cfg.epochs)
        est = 0.0 if status == "done" else estimate_s(cfg, n_train, n_test, rates)
        total += est
        lines.append(f"  {cell.label:18s} {cell.noise:9s} {cfg.arch:9s} seed {seed}: {status}, ~{est / 60:.1f} min")
    lines.append(f"estimated total: {total / 60:.1f} min")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's Table 1, 2 or 3 as a resumable grid of runs, then the table")
    p.add_argument("--table", type=int, required=True, help=f"which table: one of {TABLES}")
    p.add_argument("--preset", default="smoke", help=f"grid size, one of {configs.PRESETS} (default: smoke)")
    p.add_argument("--seeds", type=int, help="seeds per cell (default: the preset's: smoke 1, cpu 2, else 3)")
    p.add_argument("--seed-start", type=int, default=0,
                   help="the first seed: the runs use seeds S, ..., S + seeds - 1 (default: 0)")
    p.add_argument("--methods", help="comma-separated subset of the methods ce,elr,mixup,crust (default: the table's)")
    p.add_argument("--inits", help="comma-separated subset of random,pretrained (default: both)")
    p.add_argument("--noises", help="comma-separated subset of the grid's noise settings, e.g. sym:0.8 "
                   "(default: all of the preset's: cpu sym:0.8,asym:0.4)")
    p.add_argument("--cells", help="comma-separated METHOD/NOISE pairs to keep, both inits of each, e.g. "
                   "elr/sym:0.8,crust/asym:0.4 (default: every cell the other filters keep)")
    p.add_argument("--data", help="dataset (default: ../shared/data/cifar10-jpg.tar.gz; Table 3: an image folder)")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--dry-run", action="store_true", help="print the grid and its estimated time, run nothing")
    p.add_argument("--collect", action="store_true",
                   help="run nothing: write the table (and --evidence) from the runs finished so far")
    p.add_argument("--evidence", help="also write the finished grid's runs to this JSON file (e.g. "
                   "experiments/ledger/evidence/table1_cpu.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run_reproduce)


def run_reproduce(args) -> int:
    g = select(grid(args.table, args.preset), args.methods, args.inits, args.noises, args.cells)
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.seed_start < 0:
        raise ValueError(f"--seed-start must be >= 0, got {args.seed_start}")
    if not g.cells:
        raise ValueError("no cell of the grid is left after --methods / --inits / --noises / --cells")
    g = dataclasses.replace(g, seed_start=args.seed_start)
    if g.table == 3 and not args.data:
        raise ValueError("--table 3 needs --data: an image folder with train/ and test/ (mini-WebVision)")
    if args.data and not Path(args.data).exists():
        raise FileNotFoundError(f"--data {args.data} does not exist")
    if args.dry_run:
        n_train = train_images(g) or 50_000
        print(dry_run(g, seeds=args.seeds, results=args.results, n_train=n_train, n_test=g.train.test_limit or 10_000))
        return 0
    out = grid_dir(g, args.results)
    if args.collect:
        table = write_table(g, g.runs(args.seeds), out, num_classes=_num_classes(out, g, args.seeds))
    else:
        table = run_grid(g, seeds=args.seeds, data=args.data, results=args.results, progress=args.progress)
    if args.evidence:
        command = f"clspec cifar reproduce --table {g.table} --preset {g.preset}" + "".join(
            f" --{flag} {value}" for flag, value in (("seeds", args.seeds), ("seed-start", args.seed_start),
                                                     ("methods", args.methods), ("inits", args.inits),
                                                     ("noises", args.noises), ("cells", args.cells),
                                                     ("data", args.data)) if value)
        write_json(args.evidence, evidence(g, table, out, command=command, data=args.data))
        print(f"evidence -> {args.evidence}")
    print((out / "table.md").read_text())
    print(f"reproduce done: {len(table['rows'])} cells -> {out / 'table.md'}")
    return 0
