"""Configurations of the CIFAR jobs: SimCLR pre-training and training on noisy labels.

Frozen dataclasses with named presets (flax ``configs/``, big_vision ``runlocal``);
variants derive with :func:`dataclasses.replace`, never by copying.

Defaults are the paper's settings (Section 5 / App. D, see ``shared/PAPER.md`` 4.1):

* pre-training: SimCLR, ResNet-32, 1000 epochs, Adam lr 3e-4, weight decay 1e-6,
  batch 128, NT-Xent temperature 0.5 [INFERRED from spijkervet/SimCLR], projection to 64;
* training on noisy labels: SGD lr 5e-3, weight decay 1e-3, batch 64, cross-entropy,
  about 120 epochs (Fig. 3). Momentum is not stated; 0.9 [INFERRED, as in Crust's code].
* robust methods (``method``, :mod:`experiments.cifar.methods`): ELR beta 0.7, lambda 3; Mixup
  alpha 1; Crust coreset ratio 0.5 after ~20 epochs of fine-tuning and relabelling half the points.

Presets:

``smoke``  CI: the tiny network on a few hundred images, 2 epochs; pretrain + train < 1 min.
``cpu``    a real but small run on the shared CIFAR-10 copy (ResNet-32: SimCLR on 8,000 images for
           16 epochs, ~28 min on 2 cores, then the linear probe of Fig. 1 on 4,000 of them, 24 s).
``gpu15``  ResNet-32 on all of CIFAR-10, sized for 15 minutes of one H200 (pretrain + train).
``paper``  the paper's settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from experiments.common.runs import REPO_ROOT, results_dir

PRESETS = ("smoke", "cpu", "gpu15", "paper")
MODES = ("probe", "finetune")

# The shared CIFAR-10 copy (see shared/data/README.md), relative to the repository.
SHARED_CIFAR10 = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def default_data() -> str | None:
    """The shared CIFAR-10 copy if it exists here, else None (then ``--data`` is required)."""
    return str(SHARED_CIFAR10) if SHARED_CIFAR10.exists() else None


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """SimCLR pre-training (Chen et al. 2020) as the paper runs it."""

    preset: str = "paper"
    arch: str = "resnet32"
    data: str | None = None  # dataset path; None: the shared CIFAR-10 copy
    train_limit: int | None = None  # use the first n training images (None: all)
    test_limit: int | None = None  # k-NN monitor: test images used (None: all)
    epochs: int = 1000
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 1e-6  # coupled L2, as torch.optim.Adam(weight_decay=...)
    temperature: float = 0.5
    projection_dim: int = 64
    knn_k: int = 200
    knn_train: int = 10_000  # k-NN monitor: training images used as the memory bank
    knn_temperature: float = 0.1  # weights exp(cos / t) of the k neighbours' votes (Wu et al. 2018)
    seed: int = 0

    def __post_init__(self):
        _check_common(self)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training on noisy labels from a pre-trained or random initialization (App. D)."""

    preset: str = "paper"
    arch: str = "resnet32"
    mode: str = "finetune"  # "probe": linear head on the frozen encoder; "finetune": end to end
    init: str = "pretrained"  # "pretrained" (the preset's pretrain checkpoint), "random", or a path
    noise: str = "sym:0.8"
    data: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    eval_train_limit: int | None = None  # training points evaluated each epoch (None: all used)
    epochs: int = 120
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 1e-3  # coupled L2, as torch.optim.SGD(weight_decay=...)
    momentum: float = 0.9
    augment: bool = True  # fine-tuning: random crop (pad 4) + horizontal flip; probe: none
    seed: int = 0
    noise_seed: int | None = None  # None: the run's seed
    # The training method (experiments.cifar.methods) and its hyperparameters (paper, Sec. 5).
    method: str = "ce"
    elr_beta: float = 0.7  # ELR temporal ensembling (ELR's CIFAR-100 config: 0.9)
    elr_lambda: float = 3.0  # ELR regularization weight (ELR's CIFAR-100 config: 7)
    mixup_alpha: float = 1.0
    crust_ratio: float = 0.5  # coreset size per class / class size
    crust_warmup: int = 20  # epochs of plain fine-tuning before the first coreset
    crust_relabel: float = 0.5  # fraction relabelled with the predictions after the warm-up

    def __post_init__(self):
        _check_common(self)
        from experiments.cifar import methods
        from experiments.cifar.noise import normalize_spec

        # the noise spec in its canonical spelling (SYM:.8 -> sym:0.8): one setting, one run folder
        object.__setattr__(self, "noise", normalize_spec(self.noise))
        methods.check(self)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")


def _check_common(cfg) -> None:
    from experiments.cifar.models import ARCHS

    if cfg.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {cfg.arch!r}")
    if cfg.preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {cfg.preset!r}")
    if cfg.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {cfg.batch_size}")
    if not cfg.lr > 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr}")
    if cfg.weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {cfg.weight_decay}")
    for name in ("train_limit", "test_limit"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


_PAPER_PRETRAIN = PretrainConfig()
_PAPER_TRAIN = TrainConfig()

# Network and data sizes shared by a preset's pre-training and its training on noisy labels.
_SIZES = {
    "cpu": dict(preset="cpu", arch="resnet32", train_limit=4_000, test_limit=1_000),
    "smoke": dict(preset="smoke", arch="tiny", train_limit=256, test_limit=128, epochs=2, batch_size=32),
}

_PRETRAIN = {
    "paper": _PAPER_PRETRAIN,
    # One H200, 15 minutes with `train --preset gpu15`: ResNet-32 on all 50k images, batch 512 to
    # keep the GPU busy (lr scaled up). An estimate from FLOP counts, not measured on a GPU.
    "gpu15": dataclasses.replace(
        _PAPER_PRETRAIN, preset="gpu15", epochs=60, batch_size=512, lr=1e-3, knn_train=10_000
    ),
    # Sized for the best encoder 30 minutes of 2 CPU cores allow, by the rule fixed in
    # experiments/cifar/sizing.py before the runs: of 4,000 images x 12 epochs (the preset before),
    # 4,000 x 32, 8,000 x 16 and 16,000 x 8 (128,000 image-passes each), k-NN on a fixed 4,000-image
    # bank and all 10,000 test images gave 0.371, 0.399, 0.401 and 0.395 (+- 0.005 each; 2026-12-01,
    # experiments/ledger/evidence/pretrain_sizing_cpu.json), so 8,000 x 16. The rate there: ~82 SimCLR
    # images/s after a first epoch of 174 s with compilation, so ~28 min. Training on noisy labels
    # keeps the 4,000 images of _SIZES (a class-balanced draw inside these 8,000).
    "cpu": dataclasses.replace(_PAPER_PRETRAIN, **{**_SIZES["cpu"], "train_limit": 8_000}, epochs=16,
                               knn_k=20, knn_train=1_000),
    "smoke": dataclasses.replace(_PAPER_PRETRAIN, **_SIZES["smoke"], knn_k=20, knn_train=256),
}

_TRAIN = {
    "paper": _PAPER_TRAIN,
    "gpu15": dataclasses.replace(_PAPER_TRAIN, preset="gpu15", epochs=40, eval_train_limit=10_000),
    # The linear probe of Fig. 1 (100 epochs on frozen features): the features are computed once,
    # so this takes 24 s on the quiet 2-core machine (measured 2026-12-01 18:11 UTC, sym:0.8);
    # `--mode finetune` costs ~25 s per epoch on the 4,000 images there (0.33 s per step of 64
    # images, 62 steps, plus the evaluation; `clspec cifar reproduce --dry-run`: 175 images/s).
    "cpu": dataclasses.replace(_PAPER_TRAIN, **_SIZES["cpu"], mode="probe", epochs=100),
    "smoke": dataclasses.replace(_PAPER_TRAIN, **_SIZES["smoke"]),
}


def pretrain_preset(name: str) -> PretrainConfig:
    if name not in _PRETRAIN:
        raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")
    return _PRETRAIN[name]


def train_preset(name: str) -> TrainConfig:
    if name not in _TRAIN:
        raise ValueError(f"preset must be one of {PRESETS}, got {name!r}")
    return _TRAIN[name]


def pretrain_dir(preset: str, results: Path | str | None = None) -> Path:
    """Where ``clspec cifar pretrain --preset P`` writes by default (and ``train`` looks): under
    :func:`experiments.common.runs.results_dir` (``./results`` or ``$CLSPEC_RESULTS``), like every command."""
    return Path(results or results_dir()) / "cifar" / f"pretrain-{preset}"


def train_dir(cfg: TrainConfig, results: Path | str | None = None) -> Path:
    noise = cfg.noise.replace(":", "")
    init = cfg.init if cfg.init in ("pretrained", "random") else "custom"
    method = "" if cfg.method == "ce" else f"{cfg.method}-"
    return Path(results or results_dir()) / "cifar" / f"train-{cfg.preset}-{cfg.mode}-{method}{init}-{noise}-seed{cfg.seed}"
