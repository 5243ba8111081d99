"""``clspec spectrum``: the theory's quantities on a real representation (Theorem 4.3, Eq. 25, Thm 4.5).

    clspec spectrum --checkpoint results/cifar/pretrain-cpu --limit 4000 --noise sym:0.8
    clspec spectrum --init random --limit 4000 --baseline raw
    clspec spectrum --features feats.npz                      # features a user brings
    clspec spectrum results/cifar/pretrain-cpu               # plot the per-epoch spectral monitor

Sources: a checkpoint of ``clspec cifar pretrain`` (encoder and projection-head output) or
``clspec cifar train`` (encoder output), ``--init random`` (the same network at initialization),
or a features file (``.npz`` with ``features`` and ``labels``, optionally ``test_features``,
``test_labels``, ``noisy_labels``; or a ``.npy`` of features with ``--labels FILE.npy``).
``--baseline random`` / ``--baseline raw`` add, on the same images, the random-init network and
the raw pixels, so every number is compared like with like.

For each representation F (n x d) of the training images it reports: singular values (uncentred,
as the theory's F, and centred, as PCA) with the prominent count of the largest log-gap rule
next to K; the alignment ``||V_k V_k^T Y||_F^2 / n`` for every k (Eq. 25); the information /
nuisance split of the clean labels and of the label noise ``Y_noisy - Y`` over the top-K
singular space; RankMe (both variants), effective rank, alpha-ReQ with its R^2; and the ridge
head of Eq. 3 on the noisy labels: clean-label recovery on the training points, memorized
noise and test accuracy over a beta path, and recovery against Theorem 4.5's threshold
``1 / (1 + (n_max/n_min) c_max)`` (realized c_max, classes as sub-classes) as the noise rate
alpha grows. Every F is divided by its largest singular value first, so one beta means the
same shrinkage ``b_i = s_i^2 / (s_i^2 + beta)`` on every representation.

Writes into ``--out``, all or nothing (a staging folder renamed into place): ``spectrum.json``
(every number, the command, commit, date, machine), ``summary.md``, and the figures
``spectrum.png``, ``alignment.png``, ``split.png``, ``recovery.png`` (``monitor.png`` for a run
folder). Features are written batch by batch into one preallocated array (never held twice).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from experiments.analysis.features import (LAYERS, encoder_net, extract, load_features_file, random_network, raw_pixels,
                                           simclr_net)
from experiments.analysis.spectrum_numbers import ALPHAS, BETA, BETAS, Settings, analyse_all
from experiments.analysis.spectrum_report import (RESULT, one_line, plot_monitor, read_monitor, summary_markdown, timing_text,
                                                  write_outputs)
from experiments.cifar.noise import noise_option
from experiments.common import runs
from experiments.common.precision import use_float64

BASELINES = ("random", "raw")


# ----------------------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "spectrum",
        help="the theory's spectrum, label alignment, info/nuisance split and ridge-head recovery on real features",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run", nargs="?", help="a pre-training run folder: plot its per-epoch spectral monitor")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="checkpoint file or run folder of `clspec cifar pretrain` / `train`")
    src.add_argument("--init", choices=("random",), help="the network at random initialization (seed --seed)")
    src.add_argument("--features", help="a features file: .npz (features, labels[, test_features, test_labels, "
                     "noisy_labels]) or .npy (with --labels)")
    p.add_argument("--labels", help="labels .npy for a .npy features file")
    p.add_argument("--arch", help="network of --init random (default resnet32); with --checkpoint it must match "
                   "the checkpoint's (default: the checkpoint's)")
    p.add_argument("--projection-dim", type=int, default=64, help="projection width of --init random (default 64)")
    p.add_argument("--data", help="dataset, anything `clspec cifar` reads (default: ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--limit", type=int, help="training images used, class-balanced subset as `--train-limit` of "
                   "`clspec cifar` (default: all)")
    p.add_argument("--test-limit", type=int, help="test images used for the head's test accuracy (default: all)")
    p.add_argument("--noise", default="sym:0.8", type=noise_option, help="label noise as in `clspec cifar train`: sym:RATE, symall:RATE, "
                   "asym:RATE, none (default sym:0.8)")
    p.add_argument("--noise-seed", type=int, help="seed of the label noise (default: --seed)")
    p.add_argument("--baseline", nargs="*", choices=BASELINES, default=[],
                   help="also analyse the random-init network and/or the raw pixels of the same images (default none)")
    p.add_argument("--k", type=int, help="top-k space of the info/nuisance split (default: K, the number of classes)")
    p.add_argument("--beta", type=float, default=BETA, help=f"ridge beta of the recovery-vs-alpha curve, F scaled to "
                   f"s_1 = 1 (default {BETA:g})")
    p.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS),
                   help="noise rates of the recovery-vs-alpha curve (default 0, 0.1, ..., 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of --init random and of the noise (default 0)")
    p.add_argument("--out", help="output folder (default: results/spectrum/<source>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--ledger", action="store_true",
                   help="print the CPU-scale ledger rows (experiments.ledger.checks.spectrum_real) of this run's numbers")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=main)



def main(args) -> int:
    if args.run is not None:
        if args.checkpoint or args.init or args.features:
            raise ValueError("give a run folder (monitor plot) or --checkpoint/--init/--features, not both")
        return plot_monitor_cli(Path(args.run), args)
    if not (args.checkpoint or args.init or args.features):
        raise ValueError("nothing to analyse: give --checkpoint PATH, --init random, --features FILE or a run folder")
    settings = _settings(args)
    out = _out_dir(args)
    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    reps, labels, name = _representations(args, timing)
    t1 = time.perf_counter()
    use_float64()  # the analysis in float64; the features were computed in float32
    result = analyse_all(reps, labels, settings, progress=args.progress)
    timing["analysis_s"] = round(time.perf_counter() - t1, 2)
    result.update(source=name, command=_command(), date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  commit=runs.git_commit(), machine=_machine())
    t2 = time.perf_counter()
    write_outputs(out, result, overwrite=args.overwrite)
    timing["write_s"] = round(time.perf_counter() - t2, 2)
    timing["total_s"] = round(time.perf_counter() - t0, 2)
    result["timing"] = timing
    runs.write_json(out / RESULT, result)  # the timing of this run, including the writes, added last
    runs.atomic_write_text(out / "summary.md", summary_markdown(result))
    print(one_line(result), file=sys.stderr)
    print(f"spectrum done in {timing['total_s']:.1f} s ({timing_text(timing)}); results in {out}")
    if args.ledger:
        from experiments.ledger.checks import spectrum_real
        from experiments.ledger.verify import format_table

        print(format_table(spectrum_real.rows_from_evidence(result)))
    return 0


def _settings(args) -> Settings:
    from experiments.cifar.noise import normalize_spec, parse_noise_spec

    kind, _ = parse_noise_spec(args.noise)  # ValueError naming the spec
    if kind == "human":
        raise ValueError(f"--noise {args.noise!r}: human labels are not supported by clspec spectrum; "
                         "bring them as noisy_labels in a features file")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.test_limit is not None and args.test_limit < 1:
        raise ValueError(f"--test-limit must be >= 1, got {args.test_limit}")
    if not args.beta >= 0:
        raise ValueError(f"--beta must be >= 0, got {args.beta}")
    for a in args.alphas:
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"--alphas must be in [0, 1], got {a}")
    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.labels and not args.features:
        raise ValueError("--labels goes with a .npy --features file")
    if args.features and args.baseline:
        raise ValueError(f"--baseline {' '.join(args.baseline)} needs images: not available with --features")
    return Settings(noise=normalize_spec(args.noise), noise_seed=args.seed if args.noise_seed is None else args.noise_seed,
                    beta=float(args.beta), betas=BETAS, alphas=tuple(float(a) for a in args.alphas), k=args.k,
                    seed=args.seed)


def _out_dir(args) -> Path:
    if args.out:
        out = Path(args.out)
    else:
        tag = "random" if args.init else Path(args.checkpoint or args.features).resolve().name.split(".")[0]
        if tag == "checkpoint" and args.checkpoint:
            tag = Path(args.checkpoint).resolve().parent.name
        out = runs.REPO_ROOT / "results" / "spectrum" / tag
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out {out} exists and is not empty: pass --overwrite or another --out")
    return out


def _command() -> str:
    return "clspec " + " ".join(sys.argv[1:])


def _machine() -> dict:
    return {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- sources


def _representations(args, timing) -> tuple[dict, dict, str]:
    """``({name: {"train": (n, d), "test": (m, d) or None}}, labels, source name)``."""
    if args.features:
        t = time.perf_counter()
        reps, labels = load_features_file(Path(args.features), Path(args.labels) if args.labels else None)
        timing["load_s"] = round(time.perf_counter() - t, 2)
        return reps, labels, str(args.features)
    model, variables, arch, layers, name = _network(args)
    train_set, test_set = _datasets(args, timing)
    labels = {"train": np.asarray(train_set.labels), "test": np.asarray(test_set.labels),
              "num_classes": len(train_set.classes)}
    t = time.perf_counter()
    reps = {}
    feats = extract(model, variables, train_set.images, layers, progress=args.progress, desc=f"{name} train")
    tests = extract(model, variables, test_set.images, layers, progress=args.progress, desc=f"{name} test")
    for layer in layers:
        reps[f"{name}/{layer}"] = {"train": feats[layer], "test": tests[layer]}
    if "random" in args.baseline and name != "random":
        rmodel, rvars = random_network(arch, args.projection_dim, args.seed)
        feats = extract(rmodel, rvars, train_set.images, LAYERS, progress=args.progress, desc="random train")
        tests = extract(rmodel, rvars, test_set.images, LAYERS, progress=args.progress, desc="random test")
        for layer in LAYERS:
            reps[f"random/{layer}"] = {"train": feats[layer], "test": tests[layer]}
    timing["features_s"] = round(time.perf_counter() - t, 2)
    if "raw" in args.baseline:
        reps["raw/pixels"] = {"train": raw_pixels(train_set.images), "test": raw_pixels(test_set.images)}
    return reps, labels, name


def _datasets(args, timing):
    from experiments.cifar import configs
    from experiments.cifar.data import load_dataset

    data = args.data or configs.default_data()
    if data is None:
        raise FileNotFoundError(f"--data is needed: the shared CIFAR-10 copy {configs.SHARED_CIFAR10} does not exist here")
    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data} does not exist")
    t = time.perf_counter()
    train = load_dataset(data, "train", limit=args.limit, seed=0, progress=args.progress)
    test = load_dataset(data, "test", limit=args.test_limit, seed=0, progress=args.progress)
    timing["load_s"] = round(time.perf_counter() - t, 2)
    return train, test


def _network(args):
    """(flax module returning a dict of layer outputs, variables, arch, layer names, source name)."""
    from experiments.cifar import checkpoint as ckpt
    from experiments.cifar.models import ARCHS

    if args.arch is not None and args.arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {args.arch!r}")
    if args.init == "random":
        arch = args.arch or "resnet32"
        model, variables = random_network(arch, args.projection_dim, args.seed)
        return model, variables, arch, LAYERS, "random"
    path = Path(args.checkpoint)
    if path.is_dir():
        path = ckpt.checkpoint_path(path)
    state, meta = ckpt.load_raw(path)
    arch = meta.get("arch")
    if args.arch is not None:
        ckpt.check_arch(meta, args.arch, path)
    if arch not in ARCHS:
        raise ValueError(f"checkpoint {path} has arch {arch!r}, not one of {ARCHS}")
    kind = meta.get("kind")
    if kind == "pretrain":
        model = simclr_net(arch, int(meta.get("projection_dim", 64)))
        layers = LAYERS
        target = model.init_variables()
        sub = {"params": state["params"], "batch_stats": state["batch_stats"]}
    elif kind == "train":
        model = encoder_net(arch)
        layers = ("encoder",)
        target = model.init_variables()
        try:
            sub = {"params": {"encoder": state["params"]["encoder"]},
                   "batch_stats": {"encoder": state["batch_stats"]["encoder"]}}
        except KeyError as err:
            raise ValueError(f"checkpoint {path} has no encoder weights ({err})") from None
    else:
        raise ValueError(f"checkpoint {path} is a {kind!r} checkpoint, expected one of 'pretrain', 'train'")
    try:
        variables = ckpt.restore_into(target, sub, path)
    except ValueError as err:
        raise ValueError(f"{err} (arch {arch})") from None
    return model, variables, arch, layers, f"checkpoint-{meta.get('kind')}-{arch}"



def plot_monitor_cli(run_dir: Path, args) -> int:
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    rows = read_monitor(run_dir)
    out = Path(args.out) if args.out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = plot_monitor(rows, out)
    last = rows[-1]
    print(f"monitor of {len(rows)} epochs: last epoch {last['epoch']} kNN {last.get('knn_acc')} A(K) "
          f"{last['spec_alignment_K']} RankMe {last['spec_rankme']} prominent {last['spec_prominent']}; {path}")
    return 0
