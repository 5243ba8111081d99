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

from experiments.cifar import configs, figures, methods, reproduce



def add_parser(subparsers) -> None:
    cifar = subparsers.add_parser(
        "cifar", help="SimCLR pre-training and training on noisy labels on CIFAR (Section 5 of the paper)"
    )
    sub = cifar.add_subparsers(dest="cifar_command", metavar="JOB", parser_class=type(cifar))
    cifar.set_defaults(func=lambda args: (cifar.print_help(), 2)[1])

    pre = sub.add_parser("pretrain", help="SimCLR pre-training with a k-NN monitor; checkpoint every epoch")
    _common(pre)
    pre.add_argument("--temperature", type=float, help="NT-Xent temperature (paper: 0.5)")
    pre.add_argument("--projection-dim", type=int, help="projection head output width (paper: 64)")
    pre.add_argument("--knn-k", type=int, help="neighbours of the k-NN monitor")
    pre.add_argument("--knn-train", type=int, help="training images in the k-NN memory bank")
    pre.set_defaults(func=run_pretrain)

    tr = sub.add_parser("train", help="train on noisy labels: linear probe or fine-tuning")
    _common(tr)
    tr.add_argument("--mode", choices=configs.MODES, help="probe: frozen encoder + linear layer; finetune: end to end")
    tr.add_argument(
        "--init",
        help="pre-training checkpoint (file or run folder), 'random', or 'pretrained' (default: the "
        "preset's pretrain run under results/cifar/)",
    )
    tr.add_argument("--noise", help="label noise: sym:RATE, symall:RATE, asym:RATE, human:VARIANT, none (e.g. sym:0.8)")
    tr.add_argument("--noise-seed", type=int, help="seed of the label noise (default: --seed)")
    tr.add_argument("--human", help="CIFAR-N label file for --noise human:... (default: the shared copy)")
    tr.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    tr.add_argument("--eval-train-limit", type=int, help="training points evaluated per epoch")
    tr.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                    help="fine-tune without random crop + flip")
    methods.add_arguments(tr)
    tr.set_defaults(func=run_train)
    reproduce.add_parser(sub)
    figures.add_parser(sub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=configs.PRESETS, default="paper", help="named settings (default: paper)")
    p.add_argument("--data", help="dataset: CIFAR python folder or .tar.gz, or image folder/.tar.gz "
                   "(default: ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--out", help="run folder (default: under results/cifar/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--arch", help="network: resnet32, resnet18, tiny")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch (divisible by the number of devices)")
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--train-limit", type=int, help="use this many training images")
    p.add_argument("--test-limit", type=int, help="use this many test images")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--coordinator", help="multi-host: address HOST:PORT of process 0 (jax.distributed)")
    p.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    p.add_argument("--process-id", type=int, help="multi-host: this process's index")
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: let jax.distributed detect the cluster (SLURM, Open MPI, TPU pod)")


def _overrides(args, cfg_cls) -> dict:
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    return {k: v for k, v in vars(args).items() if k in names and k != "preset" and v is not None}


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
    from experiments.cifar.data import load_dataset

    path = _data_path(cfg)
    train_set = load_dataset(path, "train", limit=cfg.train_limit, seed=0)
    test_set = load_dataset(path, "test", limit=cfg.test_limit, seed=0)
    return train_set, test_set


def _check_out(out: Path, resume: bool) -> None:
    """Fail before any work: a run is never silently overwritten, and --resume needs a checkpoint."""
    path = out / "checkpoint.msgpack"
    if resume and not path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    if not resume and path.exists():
        raise ValueError(f"{path} exists: pass --resume to continue that run, or another --out")


def _distributed(args) -> None:
    from experiments.cifar.parallel import initialize_distributed

    initialize_distributed(args.coordinator, args.num_processes, args.process_id, auto=args.distributed)


def run_pretrain(args) -> int:
    cfg = dataclasses.replace(configs.pretrain_preset(args.preset), **_overrides(args, configs.PretrainConfig))
    out = Path(args.out) if args.out else configs.pretrain_dir(cfg.preset)
    _data_path(cfg)
    _check_out(out, args.resume)
    _distributed(args)
    from experiments.cifar import train as loops

    train_set, test_set = _load(cfg)
    print(f"pretrain {cfg.arch} on {len(train_set.labels)} images ({train_set.source}), {cfg.epochs} epochs -> {out}",
          file=sys.stderr)
    try:
        summary = loops.pretrain(cfg, out, train_set, test_set, resume=args.resume, progress=args.progress)
    except loops.NonFiniteLoss as err:
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
        path = path / "checkpoint.msgpack"
    if not path.exists():
        raise FileNotFoundError(f"--init {cfg.init} does not exist")
    return path


def run_train(args) -> int:
    from experiments.cifar.noise import make_noisy_labels, parse_noise_spec

    cfg = dataclasses.replace(configs.train_preset(args.preset), **_overrides(args, configs.TrainConfig))
    parse_noise_spec(cfg.noise)  # bad spec -> ValueError before any work
    init = _init_path(cfg)
    out = Path(args.out) if args.out else configs.train_dir(cfg)
    _data_path(cfg)
    _check_out(out, args.resume)
    if init is not None:  # refuse a checkpoint of another network before loading data
        from experiments.cifar.checkpoint import check_arch, load_raw

        check_arch(load_raw(init)[1], cfg.arch, init)
    _distributed(args)
    from experiments.cifar import train as loops

    train_set, test_set = _load(cfg)
    human = _human_labels(cfg, args, train_set)
    noisy = make_noisy_labels(
        train_set.labels, cfg.noise, num_classes=len(train_set.classes),
        seed=cfg.seed if cfg.noise_seed is None else cfg.noise_seed, human=human,
    )
    print(f"train ({cfg.mode}, init {init or 'random'}) {cfg.arch} on {len(train_set.labels)} images, noise "
          f"{cfg.noise} (realized rate {float(noisy.rate):.4f}), {cfg.epochs} epochs -> {out}", file=sys.stderr)
    try:
        summary = loops.train(cfg, out, train_set, test_set, noisy, init=init, resume=args.resume,
                              progress=args.progress)
    except loops.NonFiniteLoss as err:
        print(f"clspec cifar train: error: {err}", file=sys.stderr)
        return 1
    best, last = summary["best"], summary["last"]
    print(
        f"train done: best test acc {best['test_acc']:.4f} (epoch {best['epoch']}); last epoch {last['epoch']}: "
        f"test acc {last['test_acc']:.4f}, train acc clean {last['train_acc_clean']:.4f} "
        f"noisy {last['train_acc_noisy']:.4f}, noisy-points loss {loops._fmt(last['noisy_points_loss'])}; "
        f"metrics {out / 'metrics.json'}"
    )
    return 0


def _human_labels(cfg, args, train_set):
    """The CIFAR-N labels for ``human:...`` noise, rows of the training subset; None otherwise."""
    from experiments.cifar.noise import human_labels, parse_noise_spec

    if parse_noise_spec(cfg.noise)[0] != "human":
        return None
    if args.human and not Path(args.human).exists():
        raise FileNotFoundError(f"--human {args.human} does not exist")
    return human_labels(cfg.noise, train_set, args.human)
