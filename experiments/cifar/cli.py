"""``clspec cifar pretrain`` and ``clspec cifar train``: SimCLR pre-training and training on noisy labels.

    clspec cifar pretrain --preset cpu
    clspec cifar train --preset cpu --noise sym:0.8            # fine-tune the pre-trained encoder
    clspec cifar train --preset cpu --noise sym:0.8 --mode probe
    clspec cifar train --preset cpu --noise asym:0.4 --init random

A preset fixes every setting (see :mod:`experiments.cifar.configs`); any flag given
overrides it. Runs write into ``--out`` (default under ``results/cifar/``); ``train``
finds the pre-training checkpoint of its preset there unless ``--init`` says otherwise.
``--resume`` continues a killed run from its last checkpoint with identical results.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from experiments.common import argtypes, runs
from experiments.cifar import configs, figures, methods, reproduce
from experiments.cifar.noise import noise_option

# What each preset costs on the 2-core machine and on one H200. cpu: measured on the quiet machine
# (pre-training: configs.py; probe 24 s; ~25 s per fine-tuning epoch on 4,000 images);
# paper: extrapolated from those rates to 50,000 images; gpu15: an estimate from FLOP counts.
PRESET_COST = {
    "pretrain": "smoke: under a minute; cpu: about 28 min on 2 CPU cores; gpu15: about 15 min on one H200 "
                "(estimated); paper: 1,000 epochs on 50,000 images, about 10 days on 2 CPU cores",
    "train": "smoke: under a minute; cpu: about 25 s (probe) on 2 CPU cores; gpu15: about 15 min on one H200 "
             "(estimated, with pretrain); paper: 120 fine-tuning epochs on 50,000 images, about 2 days on "
             "2 CPU cores",
}


def _by_preset(job: str, field: str) -> str:
    """The value of ``field`` in each preset, for the help text: "smoke 2, cpu 12, gpu15 60, paper 1000"."""
    get = configs.pretrain_preset if job == "pretrain" else configs.train_preset
    return ", ".join(f"{name} {getattr(get(name), field)}" for name in configs.PRESETS)


def add_parser(subparsers) -> None:
    cifar = subparsers.add_parser(
        "cifar", help="SimCLR pre-training and training on noisy labels on CIFAR (Section 5 of the paper)",
        description="SimCLR pre-training (pretrain) and training on noisy labels (train), as in Section 5 of "
                    "the paper. Run folders go under results/cifar/ of the current folder ($CLSPEC_RESULTS).",
    )
    sub = cifar.add_subparsers(dest="cifar_command", metavar="JOB", parser_class=type(cifar))
    cifar.set_defaults(func=lambda args: (cifar.print_help(), 2)[1])

    pre = sub.add_parser(
        "pretrain", help="SimCLR pre-training with a k-NN monitor; checkpoint every epoch",
        description="SimCLR pre-training of the encoder (NT-Xent on two augmented views, Adam), with a "
                    "weighted k-NN accuracy on the test images every epoch and a checkpoint after every epoch. "
                    "A preset fixes every setting; any option given overrides it. Writes config.json, env.json, "
                    "metrics.jsonl, checkpoint.msgpack, metrics.json and README.md into --out. After the first "
                    f"steps it prints the estimated time of the whole run. Preset cost here: {PRESET_COST['pretrain']}.",
    )
    _common(pre, "pretrain")
    pre.add_argument("--temperature", type=argtypes.positive_float,
                     help=f"NT-Xent temperature, > 0 (default per preset: {_by_preset('pretrain', 'temperature')})")
    pre.add_argument("--projection-dim", type=argtypes.positive_int,
                     help=f"projection head output width, >= 1 (default per preset: {_by_preset('pretrain', 'projection_dim')})")
    pre.add_argument("--knn-k", type=argtypes.positive_int,
                     help=f"neighbours of the k-NN monitor, 1..--knn-train (default per preset: {_by_preset('pretrain', 'knn_k')})")
    pre.add_argument("--knn-train", type=argtypes.positive_int,
                     help=f"training images in the k-NN memory bank, >= 1 (default per preset: {_by_preset('pretrain', 'knn_train')})")
    pre.add_argument("--keep-epochs", type=argtypes.int_list, default=(), metavar="E1,E2,...",
                     help="also keep the checkpoint after each of these epochs (0: the initialization) as "
                     "OUT/epoch-EEE/checkpoint.msgpack, for analyses over training (default: none)")
    pre.set_defaults(func=run_pretrain)

    tr = sub.add_parser(
        "train", help="train on noisy labels: linear probe or fine-tuning",
        description="Train on noisy labels from the pre-trained encoder (or a random one): a linear probe on "
                    "frozen features or end-to-end fine-tuning, SGD with cross-entropy. Every epoch records "
                    "test accuracy, training accuracy against the clean and the noisy labels, and the loss on "
                    "the mislabelled points. A checkpoint pre-trained on other data than --data is refused "
                    "unless --allow-other-data. Writes config.json, env.json, noisy_labels.npz, metrics.jsonl, "
                    "checkpoint.msgpack, metrics.json and README.md into --out. Preset cost here: "
                    f"{PRESET_COST['train']}.",
    )
    _common(tr, "train")
    tr.add_argument("--mode", choices=configs.MODES,
                    help=f"probe: frozen encoder + linear layer; finetune: end to end (default per preset: {_by_preset('train', 'mode')})")
    tr.add_argument(
        "--init",
        help="pre-training checkpoint (file or run folder), 'random', or 'pretrained' (default: pretrained, the "
        "preset's pretrain run under results/cifar/)",
    )
    tr.add_argument("--allow-other-data", action="store_true",
                    help="accept an --init checkpoint pre-trained on other data than --data (default: refuse)")
    tr.add_argument("--noise", type=noise_option, help="label noise: sym:RATE, symall:RATE, asym:RATE, human:VARIANT, none, RATE in "
                    f"[0, 1] (default per preset: {_by_preset('train', 'noise')})")
    tr.add_argument("--asym-map", metavar="FILE",
                    help="asym noise on a dataset other than CIFAR-10/100: a JSON object {\"source class\": "
                         "\"target class\", ...} by class name (default: the CIFAR map, by class name)")
    tr.add_argument("--noise-seed", type=argtypes.seed, help="seed of the label noise (default: --seed)")
    tr.add_argument("--human", help="CIFAR-N label file for --noise human:... (default: the shared copy)")
    tr.add_argument("--momentum", type=argtypes.fraction_below_one,
                    help=f"SGD momentum, in [0, 1) (default per preset: {_by_preset('train', 'momentum')})")
    tr.add_argument("--eval-train-limit", type=argtypes.positive_int,
                    help=f"training points evaluated per epoch, >= 1 (default per preset: {_by_preset('train', 'eval_train_limit')}; None: all)")
    tr.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                    help="fine-tune without random crop + flip (default: augment)")
    methods.add_arguments(tr, configs.TrainConfig())
    tr.set_defaults(func=run_train)
    reproduce.add_parser(sub)
    figures.add_parser(sub)


def _common(p: argparse.ArgumentParser, job: str) -> None:
    by = lambda field: _by_preset(job, field)  # noqa: E731
    p.add_argument("--preset", choices=configs.PRESETS, default=None,
                   help=f"named settings (default: paper; with --resume: the run's own). {PRESET_COST[job]}")
    p.add_argument("--data", help="dataset: CIFAR python folder or .tar.gz, or image folder/.tar.gz "
                   "(default: ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--out", help=f"run folder (default: results/cifar/{job}-PRESET... under the current folder)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint, with its own settings; changing one "
                        "that alters the result is refused, a new --epochs is recorded (default: off)")
    from experiments.cifar.models import ARCHS

    p.add_argument("--arch", choices=ARCHS, help=f"network (default per preset: {by('arch')})")
    p.add_argument("--epochs", type=argtypes.positive_int, help=f"epochs, >= 1 (default per preset: {by('epochs')})")
    p.add_argument("--batch-size", type=argtypes.int_at_least(2),
                   help=f"global batch, >= 2, divisible by the number of devices (default per preset: {by('batch_size')})")
    p.add_argument("--lr", type=argtypes.positive_float, help=f"learning rate, > 0 (default per preset: {by('lr')})")
    p.add_argument("--weight-decay", type=argtypes.nonnegative_float,
                   help=f"coupled L2 weight decay, >= 0 (default per preset: {by('weight_decay')})")
    p.add_argument("--train-limit", type=argtypes.positive_int,
                   help=f"use this many training images, >= 1 (default per preset: {by('train_limit')}; None: all)")
    p.add_argument("--test-limit", type=argtypes.positive_int,
                   help=f"use this many test images, >= 1 (default per preset: {by('test_limit')}; None: all)")
    p.add_argument("--seed", type=argtypes.seed,
                   help=f"seed of the initialization, data order and augmentation, in [0, {argtypes.SEED_MAX}] "
                        f"(default per preset: {by('seed')})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars (default: bars)")
    p.add_argument("--coordinator", help="multi-host: address HOST:PORT of process 0 (jax.distributed; default: none)")
    p.add_argument("--num-processes", type=argtypes.positive_int, help="multi-host: number of processes (default: 1)")
    p.add_argument("--process-id", type=argtypes.nonnegative_int,
                   help="multi-host: this process's index, in [0, --num-processes) (default: 0)")
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: let jax.distributed detect the cluster (SLURM, Open MPI, TPU pod; default: off)")


def _overrides(args, cfg_cls) -> dict:
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    return {k: v for k, v in vars(args).items() if k in names and k != "preset" and v is not None}


def _config(args, cfg_cls, preset_fn, default_dir):
    """The run's settings and folder: the preset with the options given on top; with --resume,
    the checkpoint's own settings with the options given on top (a changed one is then refused
    or recorded by the loop)."""
    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None:
            out = default_dir(dataclasses.replace(preset_fn(args.preset or "paper"), **_overrides(args, cfg_cls)))
        from experiments.cifar.checkpoint import checkpoint_path, load_raw

        path = checkpoint_path(out)
        if not path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        saved = load_raw(path)[1].get("config") or {}
        names = {f.name for f in dataclasses.fields(cfg_cls)}
        base = preset_fn(saved.get("preset", "paper"))
        base = dataclasses.replace(base, **{k: v for k, v in saved.items() if k in names})
        if args.preset is not None and args.preset != base.preset:
            raise ValueError(f"--resume: {path} is a {base.preset}-preset run, got --preset {args.preset}")
        cfg = dataclasses.replace(base, **_overrides(args, cfg_cls))
    else:
        cfg = dataclasses.replace(preset_fn(args.preset or "paper"), **_overrides(args, cfg_cls))
        out = out or default_dir(cfg)
    _check_multihost(args)
    return cfg, out


def _check_multihost(args) -> None:
    if args.process_id is not None and args.num_processes is not None and args.process_id >= args.num_processes:
        raise ValueError(f"--process-id must be in [0, --num-processes={args.num_processes}), got {args.process_id}")


def _data_path(cfg) -> str:
    data = cfg.data or configs.default_data()
    if data is None:
        raise FileNotFoundError(
            f"--data is needed: the shared CIFAR-10 copy {configs.SHARED_CIFAR10} does not exist here"
        )
    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data} does not exist")
    return data


def _load(cfg):
    """Both splits, the training split carrying the data's identity (recorded by every checkpoint)."""
    from experiments.cifar.data import data_identity, load_dataset

    path = _data_path(cfg)
    train_set = load_dataset(path, "train", limit=cfg.train_limit, seed=0)
    test_set = load_dataset(path, "test", limit=cfg.test_limit, seed=0)
    identity = data_identity(path, train_set, test_set)
    return dataclasses.replace(train_set, identity=identity), test_set


def _check_out(out: Path, resume: bool) -> None:
    """Fail before any work: a run is never silently overwritten, --resume needs a checkpoint, and
    the folder must be writable."""
    path = out / "checkpoint.msgpack"
    if resume and not path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    if not resume and path.exists():
        raise ValueError(f"{path} exists: pass --resume to continue that run, or another --out")
    runs.check_writable_dir(out, "--out")


def _distributed(args) -> None:
    from experiments.cifar.parallel import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)


def run_pretrain(args) -> int:
    cfg, out = _config(args, configs.PretrainConfig, configs.pretrain_preset, lambda c: configs.pretrain_dir(c.preset))
    if cfg.knn_k > cfg.knn_train:
        raise ValueError(f"--knn-k must be <= --knn-train ({cfg.knn_train}, the k-NN memory bank), got {cfg.knn_k}")
    bad = [e for e in args.keep_epochs if e > cfg.epochs]
    if bad:
        raise ValueError(f"--keep-epochs must lie in 0..{cfg.epochs} (--epochs), got {bad[0]}")
    _data_path(cfg)
    _check_out(out, args.resume)
    _distributed(args)
    from experiments.cifar import loop
    from experiments.cifar import train as loops

    train_set, test_set = _load(cfg)
    bank = min(cfg.knn_train, len(train_set))
    if cfg.knn_k > bank:
        raise ValueError(f"--knn-k must be <= the k-NN memory bank ({bank} training images), got {cfg.knn_k}")
    print(f"pretrain {cfg.arch} on {len(train_set.labels)} images ({train_set.source}), {cfg.epochs} epochs -> {out}",
          file=sys.stderr)
    try:
        summary = loops.pretrain(cfg, out, train_set, test_set, resume=args.resume, progress=args.progress,
                                 keep_epochs=tuple(args.keep_epochs))
    except loop.NonFiniteLoss as err:
        print(f"clspec cifar pretrain: error: {err}", file=sys.stderr)
        return 1
    last = summary["last"]
    print(f"pretrain done: last epoch {last['epoch']} loss {last['loss']:.4f} kNN acc {last['knn_acc']:.4f}; "
          f"best kNN acc {summary['best_knn']['knn_acc']:.4f} (epoch {summary['best_knn']['epoch']}); "
          f"checkpoint {summary['checkpoint']}")
    return 0


def _init_path(cfg: configs.TrainConfig) -> Path | None:
    if cfg.init == "random":
        return None
    if cfg.init == "pretrained":
        path = configs.pretrain_dir(cfg.preset) / "checkpoint.msgpack"
        if not path.exists():
            raise FileNotFoundError(
                f"--init: no pre-training checkpoint at {path}; run `clspec cifar pretrain --preset "
                f"{cfg.preset}` first, or pass --init random or --init PATH"
            )
        return path
    path = Path(cfg.init)
    if path.is_dir():
        if not (path / "checkpoint.msgpack").exists():
            raise FileNotFoundError(f"--init {cfg.init} is a folder without checkpoint.msgpack")
        path = path / "checkpoint.msgpack"
    if not path.exists():
        raise FileNotFoundError(f"--init {cfg.init} does not exist")
    return path


def check_init_data(init: Path, pre_meta: dict, identity: dict, allow_other_data: bool) -> None:
    """Refuse an encoder pre-trained on other data (content hash or classes differ), unless allowed;
    warn about a checkpoint that predates the record."""
    from experiments.cifar.data import same_data

    recorded = pre_meta.get("data")
    if recorded is None:
        print(f"warning: --init {init} predates the data-identity record; cannot check that it was pre-trained "
              f"on {identity['path']}", file=sys.stderr)
        return
    differ = same_data(recorded, identity)
    if differ and not allow_other_data:
        raise ValueError(
            f"--init {init} was pre-trained on {recorded.get('path')} ({recorded.get('train_images')} images, "
            f"{recorded.get('num_classes')} classes, sha256 {str(recorded.get('sha256'))[:12]}), this run uses "
            f"{identity['path']} ({identity['num_classes']} classes, sha256 {identity['sha256'][:12]}): "
            f"{', '.join(differ)} differ; pass --allow-other-data to use it anyway"
        )
    if differ:
        print(f"note: --init {init} was pre-trained on other data ({recorded.get('path')}); allowed by "
              "--allow-other-data", file=sys.stderr)


def run_train(args) -> int:
    from experiments.cifar.noise import load_asym_map, noisy_labels_for, parse_noise_spec

    cfg, out = _config(args, configs.TrainConfig, configs.train_preset, configs.train_dir)
    kind, _ = parse_noise_spec(cfg.noise)  # bad spec -> ValueError before any work
    asym_map = None
    if args.asym_map is not None:
        if kind != "asym":
            raise ValueError(f"--asym-map is for asym:RATE noise, got --noise {cfg.noise}")
        asym_map = load_asym_map(args.asym_map)
    if args.human is not None:
        human = Path(args.human)
        if human.is_dir():
            raise IsADirectoryError(f"--human {args.human} is a folder; expected a CIFAR-N .pt label file")
        if not human.exists():
            raise FileNotFoundError(f"--human {args.human} does not exist")
    init = _init_path(cfg)
    _data_path(cfg)
    _check_out(out, args.resume)
    pre_meta = None
    if init is not None:  # refuse a checkpoint of another network before loading data
        from experiments.cifar.checkpoint import check_arch, load_raw

        pre_meta = load_raw(init)[1]
        check_arch(pre_meta, cfg.arch, init)
    _distributed(args)
    from experiments.cifar import loop
    from experiments.cifar import train as loops

    train_set, test_set = _load(cfg)
    if pre_meta is not None:
        check_init_data(init, pre_meta, train_set.identity, args.allow_other_data)
    human = _human_labels(cfg, args, train_set)
    noisy = noisy_labels_for(train_set, cfg.noise, seed=cfg.seed if cfg.noise_seed is None else cfg.noise_seed,
                             human=human, asym_map=asym_map)
    print(f"train ({cfg.mode}, init {init or 'random'}) {cfg.arch} on {len(train_set.labels)} images, noise "
          f"{cfg.noise} (realized rate {float(noisy.rate):.4f}), {cfg.epochs} epochs -> {out}", file=sys.stderr)
    try:
        summary = loops.train(cfg, out, train_set, test_set, noisy, init=init, resume=args.resume,
                              progress=args.progress)
    except loop.NonFiniteLoss as err:
        print(f"clspec cifar train: error: {err}", file=sys.stderr)
        return 1
    best, last = summary["best"], summary["last"]
    print(
        f"train done: best test acc {best['test_acc']:.4f} (epoch {best['epoch']}); last epoch {last['epoch']}: "
        f"test acc {last['test_acc']:.4f}, train acc clean {last['train_acc_clean']:.4f} "
        f"noisy {last['train_acc_noisy']:.4f}, noisy-points loss {loop._fmt(last['noisy_points_loss'])}; "
        f"metrics {out / 'metrics.json'}"
    )
    return 0


def _human_labels(cfg, args, train_set):
    """The CIFAR-N labels for ``human:...`` noise, rows of the training subset; None otherwise."""
    from experiments.cifar.noise import human_labels, parse_noise_spec

    if parse_noise_spec(cfg.noise)[0] != "human":
        return None
    return human_labels(cfg.noise, train_set, args.human)
