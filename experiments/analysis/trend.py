"""``clspec trend``: the theory's quantities at every checkpoint a pre-training run kept (C110-C119).

    clspec trend /work/runs/pretrain-cpu-keep --out results/trend/cpu --evidence experiments/ledger/evidence/trend_cpu.json

RUN_DIR is a ``clspec cifar pretrain --keep-epochs ...`` folder; its checkpoints
``RUN_DIR/epoch-EEE/checkpoint.msgpack`` (epoch 0: the initialization) are measured in epoch order, each
in a fresh process (spawned), by the code behind the ledger's rows with their settings:

1. encoder quality: the k-NN accuracy of ``experiments.cifar.sizing`` (k = 20, t = 0.1; memory bank the
   class-balanced ``--knn-bank`` training images, 4,000 by default (the ``cpu`` training subset), with
   clean labels; every test image), written to ``OUT/epoch-EEE/knn.json``; the run's own monitor value
   (``RUN_DIR/metrics.jsonl``, a 1,000-image bank and the run's test subset, none at epoch 0) beside it;
2. ``clspec spectrum --checkpoint CKPT --limit 4000 --test-limit 1000 --noise sym:0.8`` (C80-C89's
   settings) into ``OUT/epoch-EEE/spectrum/``: A(K), prominent count, s_{K+1}/s_K, ridge recovery
   against Theorem 4.5's threshold, RankMe of the encoder output;
3. ``clspec jacobian --network ARCH --n 200 --method gram --checkpoint CKPT --skip-random`` into
   ``OUT/epoch-EEE/jacobian/``: the exact full Gram at 200 class-balanced test points, ||Pi_I(y)|| (top 10),
   ||J J^T y|| / ||J J^T||_F (C95-C97's quantities; n = 200 because Lanczos at n = 1,000 takes ~9 min per
   network on 2 cores).

A fresh process per checkpoint, because ``clspec spectrum`` extracts its features in float32 before it
switches the process to float64 and ``clspec jacobian`` switches at its start: each step then runs in the
precision state of its own command. The commands run through their own parsers, as ``clspec`` runs them.

Resumable: every step's output is written atomically, a step whose output is there is not redone, a
checkpoint whose ``OUT/epoch-EEE/record.json`` is there (same checkpoint sha256) is not measured again;
rerun the same command as checkpoints appear. ``OUT/trend.json`` and ``--evidence`` (with the command,
commit, date, machine and seconds) are rewritten after every checkpoint; another configuration in the
same ``--out``, or a checkpoint other than the one measured there, is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from experiments.common import argtypes, runs

EPOCH_GLOB = "epoch-[0-9][0-9][0-9]"
SHA_FILE = "checkpoint.sha256"  # OUT/epoch-EEE/: the checkpoint its outputs belong to
NOISE = "sym:0.8"  # C80-C89's spectrum_cpu.json
FILES = {**{k: v for k, v in runs.COMMON_FILES.items() if k != "metrics.json"},
         "trend.json": "every measured checkpoint's numbers (the evidence file's content)",
         "epoch-EEE/": "per checkpoint: checkpoint.sha256, knn.json, spectrum/ (clspec spectrum), jacobian/ (clspec jacobian), "
                       "record.json (its numbers)"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("trend", help="k-NN, spectrum and Jacobian quantities at every checkpoint a "
                              "pre-training run kept (C110-C119)",
                              description="The theory's quantities at every checkpoint a pre-training run kept "
                              "(C110-C119): k-NN accuracy, clspec spectrum, clspec jacobian; resumable.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a `clspec cifar pretrain --keep-epochs` folder")
    p.add_argument("--out", help="results folder (default: results/trend/<RUN_DIR's name>)")
    p.add_argument("--evidence", help="also write the evidence JSON (command, commit, date, machine, seconds) to "
                   "this file, e.g. experiments/ledger/evidence/trend_cpu.json; default none")
    p.add_argument("--epochs", type=argtypes.int_list, metavar="E1,E2,...",
                   help="measure only these kept epochs (default: every epoch-EEE folder with a checkpoint)")
    p.add_argument("--data", help="dataset (default: the one RUN_DIR's config.json names)")
    p.add_argument("--knn-bank", type=argtypes.positive_int, default=4000,
                   help="training images in the k-NN memory bank, class-balanced, clean labels (default 4000)")
    p.add_argument("--knn-test", type=argtypes.positive_int,
                   help="test images of the k-NN accuracy, class-balanced (default: all)")
    p.add_argument("--limit", type=argtypes.positive_int, default=4000,
                   help="training images of clspec spectrum, its --limit (default 4000)")
    p.add_argument("--test-limit", type=argtypes.positive_int, default=1000,
                   help="test images of clspec spectrum, its --test-limit (default 1000)")
    p.add_argument("--jacobian-n", type=argtypes.positive_int, default=200,
                   help="class-balanced test points of clspec jacobian's full Gram, its --n (default 200)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=main)


# ----------------------------------------------------------------------------- inputs


def kept_checkpoints(run_dir: Path, epochs=None) -> list[tuple[int, Path]]:
    """``[(epoch, checkpoint path)]`` of the kept checkpoints in ``run_dir``, in epoch order."""
    from experiments.cifar.checkpoint import CHECKPOINT

    found = {int(d.name[6:]): d / CHECKPOINT for d in sorted(run_dir.glob(EPOCH_GLOB)) if (d / CHECKPOINT).is_file()}
    if epochs is not None:
        missing = [e for e in epochs if e not in found]
        if missing:
            raise ValueError(f"--epochs {missing[0]}: {run_dir} has no epoch-{missing[0]:03d}/{CHECKPOINT} "
                             f"(kept: {', '.join(map(str, found)) or 'none'})")
        found = {e: found[e] for e in epochs}
    if not found:
        raise ValueError(f"{run_dir} holds no kept checkpoint (epoch-EEE/{CHECKPOINT}): run `clspec cifar pretrain "
                         "--keep-epochs 0,1,...` into it")
    return sorted(found.items())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run_config(run_dir: Path) -> dict:
    f = run_dir / "config.json"
    if not f.is_file():
        raise FileNotFoundError(f"{run_dir} is not a pre-training run folder (no config.json)")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{f} is not valid JSON ({err})") from None


def monitor_knn(run_dir: Path) -> dict[int, float]:
    """The run's own per-epoch k-NN monitor (``metrics.jsonl``); a line being written is skipped."""
    out = {}
    f = run_dir / "metrics.jsonl"
    for line in (f.read_text().splitlines() if f.is_file() else []):
        try:
            r = json.loads(line)
            out[int(r["epoch"])] = float(r["knn_acc"])
        except (ValueError, KeyError, TypeError):
            continue
    return out


def _settings(args, run_cfg: dict) -> dict:
    data = args.data or run_cfg.get("data") or (run_cfg.get("dataset") or {}).get("path")
    if not data:
        raise ValueError("--data is needed: RUN_DIR's config.json names no dataset")
    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data} does not exist")
    arch = run_cfg.get("arch")
    if not arch:
        raise ValueError("RUN_DIR's config.json names no arch")
    if args.knn_bank < 20:
        raise ValueError(f"--knn-bank must be >= 20 (the k of the k-NN), got {args.knn_bank}")
    if args.jacobian_n < 2:
        raise ValueError(f"--jacobian-n must be >= 2, got {args.jacobian_n}")
    return {"data": str(Path(data).resolve()), "arch": arch, "knn": {"k": 20, "t": 0.1, "bank": args.knn_bank,
            "test": args.knn_test}, "spectrum": {"limit": args.limit, "test_limit": args.test_limit, "noise": NOISE},
            "jacobian": {"n": args.jacobian_n, "method": "gram", "k": 10, "split": "test"}}


def commands(settings: dict, checkpoint: Path, out: Path, progress: bool) -> dict[str, list[str]]:
    """The argument lists of `clspec spectrum` and `clspec jacobian` for one checkpoint."""
    s, j = settings["spectrum"], settings["jacobian"]
    tail = [] if progress else ["--no-progress"]
    return {
        "spectrum": ["spectrum", "--checkpoint", str(checkpoint), "--data", settings["data"], "--limit", str(s["limit"]),
                     "--test-limit", str(s["test_limit"]), "--noise", s["noise"], "--out", str(out / "spectrum"),
                     "--overwrite", *tail],
        "jacobian": ["jacobian", "--network", settings["arch"], "--n", str(j["n"]), "--method", j["method"],
                     "--k", str(j["k"]), "--split", j["split"], "--checkpoint", str(checkpoint), "--skip-random",
                     "--data", settings["data"], "--out", str(out / "jacobian"), "--figures",
                     str(out / "jacobian" / "figures"), *tail],
    }


# ----------------------------------------------------------------------------- one checkpoint (in its own process)


def _as_command(module, argv: list[str]) -> None:
    """Run `clspec ARGV` in this process through the sub-command's own parser, recording ``clspec ARGV`` as the
    command line (what spectrum.json and env.json write)."""
    import argparse

    parser = argparse.ArgumentParser(prog="clspec")
    module.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    sys.argv = ["clspec", *argv]
    code = int(args.func(args) or 0)
    if code:
        raise RuntimeError(f"clspec {' '.join(argv[:1])} exited with status {code}")


def measure_checkpoint(task: dict) -> dict:
    """k-NN, spectrum and Jacobian of one checkpoint (the module docstring's steps 1-3), each skipped when its
    output is there; returns the checkpoint's record."""
    out, ckpt = Path(task["out"]), Path(task["checkpoint"])
    settings, progress = task["settings"], task["progress"]
    argv = commands(settings, ckpt, out, progress)
    knn_file = out / "knn.json"
    if not knn_file.is_file():
        from experiments.cifar import sizing
        from experiments.cifar.data import load_dataset

        k = settings["knn"]
        bank = load_dataset(settings["data"], "train", limit=k["bank"], seed=0, progress=progress)
        test = load_dataset(settings["data"], "test", limit=k["test"], seed=0, progress=progress)
        knn = sizing.knn_of_checkpoint(ckpt, bank, test, arch=settings["arch"])
        runs.write_json(knn_file, {**knn, "bank": len(bank.labels), "test": len(test.labels), "k": sizing.KNN_K,
                                   "t": sizing.KNN_T})
    if not (out / "spectrum" / "spectrum.json").is_file():
        from experiments.analysis import spectrum

        _as_command(spectrum, argv["spectrum"])
    jac_file = out / "jacobian" / "metrics.json"
    if not jac_file.is_file():
        from experiments.analysis import jacobian

        _as_command(jacobian, argv["jacobian"])
    return record(task, json.loads(knn_file.read_text()), json.loads((out / "spectrum" / "spectrum.json").read_text()),
                  json.loads(jac_file.read_text()))


def record(task: dict, knn: dict, spec: dict, jac: dict) -> dict:
    """The numbers of one checkpoint that the ledger reads, with where they came from."""
    arch = task["settings"]["arch"]
    name = f"checkpoint-pretrain-{arch}/encoder"
    if name not in spec["representations"]:
        raise ValueError(f"{task['out']}/spectrum/spectrum.json has no {name} (has {', '.join(spec['representations'])})")
    r = spec["representations"][name]
    h = r["head"]
    res = jac["results"].get("pretrain checkpoint")
    if res is None:
        raise ValueError(f"{task['out']}/jacobian/metrics.json has no 'pretrain checkpoint' result")
    argv = commands(task["settings"], Path(task["checkpoint"]), Path(task["out"]), False)
    return {
        "epoch": task["epoch"], "checkpoint": task["checkpoint"], "sha256": task["sha256"],
        "measured": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "num_classes": spec["num_classes"],
        "knn_acc": knn["knn_acc"], "knn_se": knn["knn_se"], "knn_bank": knn["bank"], "knn_test": knn["test"],
        "monitor_knn_acc": task.get("monitor_knn_acc"),
        "alignment_K": r["alignment_K"], "prominent": r["prominent"], "prominent_centred": r["prominent_centred"],
        "gap_K": r["gap_K"], "gap_ratio": 1.0 / float(r["gap_K"]),  # s_{K+1}/s_K; "inf" (s_{K+1} = 0) gives 0
        "train_recovery": h["train_recovery"], "alpha_realized": h["alpha_realized"], "threshold": h["threshold"],
        "c_max": h["c_max"], "head_test_acc": h["test_acc"], "rankme": r["rankme"], "rankme_pca": r["rankme_pca"],
        "effective_rank": r["effective_rank"],
        "noise_information_fraction": r["split_noise"]["information_fraction"],
        "pi_I": res["pi_I"], "pi_N": res["pi_N"], "pi_sum_sq": res["pi_sum_sq"], "ratio": res["ratio"],
        "jacobian_n": res["n"], "jacobian_sigma_1": res["sigma"][0], "jacobian_numerical_rank": res.get("numerical_rank"),
        "seconds": {"knn_eval": knn.get("eval_s"), "spectrum": (spec.get("timing") or {}).get("total_s"),
                    "jacobian": res.get("seconds")},
        "commands": {k: "clspec " + " ".join(v) for k, v in argv.items()},
    }


def _in_child(fn, task):
    """``fn(task)`` in a fresh spawned process (JAX is not safe to fork)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, task).result()


# ----------------------------------------------------------------------------- the command


def main(args) -> int:
    t_start = time.perf_counter()
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"RUN_DIR {run_dir} does not exist")
    settings = _settings(args, _run_config(run_dir))
    kept = kept_checkpoints(run_dir, args.epochs)
    out = Path(args.out) if args.out else runs.results_dir() / "trend" / run_dir.resolve().name
    runs.check_writable_dir(out, "--out")
    if args.evidence:
        runs.check_writable_file(args.evidence, "--evidence")
    config = {"run_dir": str(run_dir.resolve()), **settings}
    if (out / "config.json").is_file():
        old = {k: v for k, v in json.loads((out / "config.json").read_text()).items() if k in config}
        if old != json.loads(json.dumps(config)):
            raise ValueError(f"--out {out} holds a run with another configuration: pass another --out")
    shas = {}
    for epoch, path in kept:  # a folder measured (or begun) on another checkpoint is refused, not mixed in
        shas[epoch] = sha256(path)
        tag = out / f"epoch-{epoch:03d}" / SHA_FILE
        if tag.is_file() and tag.read_text().strip() != shas[epoch]:
            raise ValueError(f"--out {out}: epoch {epoch} was measured on another checkpoint than {path} "
                             "(sha256 differs): pass another --out")
    runs.start_run(out, config, files=FILES)
    runs.mark_started()
    monitor = monitor_knn(run_dir)
    records = []
    for epoch, path in kept:
        folder = out / f"epoch-{epoch:03d}"
        rec_file = folder / "record.json"
        if rec_file.is_file():
            records.append(json.loads(rec_file.read_text()))
            print(f"epoch {epoch}: measured before ({rec_file})", file=sys.stderr)
            continue
        runs.atomic_write_text(folder / SHA_FILE, shas[epoch] + "\n")
        task = {"epoch": epoch, "checkpoint": str(path.resolve()), "sha256": shas[epoch], "out": str(folder.resolve()),
                "settings": settings, "progress": args.progress, "monitor_knn_acc": monitor.get(epoch)}
        t0 = time.perf_counter()
        rec = _in_child(measure_checkpoint, task)
        rec["seconds"]["wall"] = round(time.perf_counter() - t0, 1)
        runs.write_json(rec_file, rec)
        records.append(rec)
        print(f"epoch {epoch}: k-NN {rec['knn_acc']:.4f}, A(K) {rec['alignment_K']:.4f}, prominent {rec['prominent']}, "
              f"recovery {rec['train_recovery']:.4f}, ||Pi_I(y)|| {rec['pi_I']:.4f} ({rec['seconds']['wall']:.0f} s)",
              file=sys.stderr, flush=True)
        _write_results(out, args, config, records, t_start)
    result = _write_results(out, args, config, records, t_start)
    print(format_table(result))
    from experiments.ledger.checks import trend_real
    from experiments.ledger.verify import format_table as rows_table

    rows = trend_real.rows_from_evidence(result)
    print(rows_table(rows))
    for r in rows:
        print(f"{r.claim} {r.verdict}: {r.note}")
    print(f"results: {out / 'trend.json'}" + (f"; evidence: {args.evidence}" if args.evidence else ""))
    return 0


def _write_results(out: Path, args, config: dict, records: list, t_start: float) -> dict:
    records = sorted(records, key=lambda r: r["epoch"])
    result = {
        "what": "the theory's quantities at every kept checkpoint of a SimCLR pre-training run (C110-C119)",
        "command": command_line(args, out),
        "commit": runs.git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "loadavg": os.getloadavg()},
        "seconds": {"measuring": round(sum(r["seconds"].get("wall") or 0.0 for r in records), 1),
                    "this_invocation": round(time.perf_counter() - t_start, 1)},
        "settings": config, "num_classes": records[0]["num_classes"] if records else None,
        "checkpoints": records,
    }
    runs.write_json(out / "trend.json", result)
    if args.evidence:
        runs.write_json(args.evidence, result)
    return result


def command_line(args, out: Path) -> str:
    """The command with every setting spelled out (what reruns it)."""
    parts = ["clspec trend", str(args.run_dir), "--out", str(out)]
    parts += ["--evidence", str(args.evidence)] if args.evidence else []
    parts += ["--epochs", ",".join(map(str, args.epochs))] if args.epochs else []
    parts += ["--data", str(args.data)] if args.data else []
    parts += ["--knn-bank", str(args.knn_bank)] + (["--knn-test", str(args.knn_test)] if args.knn_test else [])
    parts += ["--limit", str(args.limit), "--test-limit", str(args.test_limit), "--jacobian-n", str(args.jacobian_n)]
    return " ".join(parts + ([] if args.progress else ["--no-progress"]))


def format_table(result: dict) -> str:
    cols = (("epoch", "d"), ("knn_acc", ".4f"), ("monitor_knn_acc", ".4f"), ("alignment_K", ".4f"), ("prominent", "d"),
            ("gap_ratio", ".4f"), ("train_recovery", ".4f"), ("rankme", ".2f"), ("pi_I", ".4f"), ("ratio", ".4f"))
    lines = [" ".join(f"{k:>15}" for k, _ in cols)]
    for r in result["checkpoints"]:
        lines.append(" ".join(f"{'-':>15}" if r.get(k) is None else f"{r[k]:>15{f}}" for k, f in cols))
    return "\n".join(lines)
