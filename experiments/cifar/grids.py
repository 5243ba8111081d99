"""The grids of ``clspec cifar reproduce``: the paper's Tables 1-3 (``shared/PAPER.md`` 4.2-4.4) as cells
(method x noise x {random init, CL init} x network) with the paper's number for each, and what each
preset (``smoke``, ``cpu``, ``gpu15``, ``paper``) fixes: the cells, the training and pre-training
settings, the seeds."""

from __future__ import annotations

import dataclasses

from experiments.cifar import configs

TABLES = (1, 2, 3)
INITS = ("random", "pretrained")
LABELS = {"ce": "E2E", "elr": "ELR", "mixup": "Mixup", "crust": "Crust"}

# ----------------------------------------------------------------------------- the paper's numbers

_C10 = ("sym:0.2", "sym:0.5", "sym:0.8", "asym:0.4")
# Table 1, test accuracy (%), mean over 3 runs: {label: {classes: {noise: value}}}.
_T1 = {
    "Crust": ((85.3, 86.8, 33.8, 76.7), (62.9, 55.5, 18.5, 52.5)),
    "Mixup": ((89.7, 84.5, 40.7, 86.3), (64.0, 53.4, 15.1, 54.4)),
    "ELR": ((90.6, 87.7, 69.5, 86.6), (63.6, 52.5, 23.4, 59.7)),
    "CL+E2E": ((88.8, 82.8, 72.0, 83.5), (63.5, 56.1, 36.7, 52.4)),
    "CL+Crust": ((86.5, 87.6, 77.9, 85.9), (63.0, 58.3, 34.8, 53.3)),
    "CL+Mixup": ((90.8, 84.6, 74.8, 87.5), (64.4, 55.5, 30.3, 55.5)),
    "CL+ELR": ((91.3, 89.1, 77.7, 89.7), (64.7, 55.6, 35.9, 63.6)),
}
PAPER_T1 = {label: {10: dict(zip(_C10, c10)), 100: dict(zip(_C10, c100))} for label, (c10, c100) in _T1.items()}
# Table 2: CL+Mixup by network; ResNet-34 is 46x ResNet-32's parameters.
PAPER_T2 = {
    "CL+Mixup resnet32": {10: {"sym:0.8": 74.8, "asym:0.4": 87.5}, 100: {"sym:0.8": 30.3, "asym:0.4": 55.5}},
    "CL+Mixup resnet34": {10: {"sym:0.8": 90.8, "asym:0.4": 90.4}, 100: {"sym:0.8": 69.4, "asym:0.4": 65.2}},
}
# Table 3: mini-WebVision, top-1 / top-5 on the WebVision val set (ImageNet val: not run here).
PAPER_T3 = {
    "Mixup": (71.38, 87.36), "ELR": (76.26, 91.26), "CL+E2E": (71.84, 88.84),
    "CL+Mixup": (76.34, 90.52), "CL+ELR": (79.52, 93.80), "Crust": (72.40, 89.56),
}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell of a table: a method from an init under a noise on a network."""

    method: str
    init: str
    noise: str
    arch: str | None = None  # None: the preset's network

    @property
    def label(self) -> str:
        name = LABELS[self.method]
        if self.init == "pretrained":
            return f"CL+{name}"
        return "CE (random init)" if self.method == "ce" else name

    def row_label(self, table: int) -> str:
        return f"{self.label} {self.arch}" if table == 2 else self.label

    def name(self) -> str:
        arch = f"-{self.arch}" if self.arch else ""
        return f"{self.method}-{self.init}-{self.noise.replace(':', '')}{arch}"


def paper_value(table: int, cell: Cell, num_classes: int, top: int = 1) -> float | None:
    """The paper's number for ``cell`` (None where the paper has none, e.g. CE from random init)."""
    if table == 1:
        return PAPER_T1.get(cell.label, {}).get(num_classes, {}).get(cell.noise)
    if table == 2:
        return PAPER_T2.get(cell.row_label(2), {}).get(num_classes, {}).get(cell.noise)
    values = PAPER_T3.get(cell.label)
    return None if values is None else values[0 if top == 1 else 1]


# ----------------------------------------------------------------------------- grids per preset


@dataclasses.dataclass(frozen=True)
class Grid:
    """What ``--preset`` fixes for a table: the cells, the training and pre-training settings."""

    table: int
    preset: str
    cells: tuple[Cell, ...]
    train: configs.TrainConfig
    pretrain: configs.PretrainConfig
    seeds: int
    subset: int | None = None  # train on a class-balanced subset of the pre-training images
    seed_start: int = 0  # the first seed (``--seed-start``): the seeds are seed_start, ..., seed_start + seeds - 1

    def runs(self, seeds: int | None = None) -> list[tuple[Cell, int]]:
        """(cell, seed) pairs, seed-major: every cell's first seed finishes before any second one."""
        n = self.seeds if seeds is None else seeds
        return [(cell, seed) for seed in range(self.seed_start, self.seed_start + n) for cell in self.cells]

    def train_config(self, cell: Cell, seed: int) -> configs.TrainConfig:
        return dataclasses.replace(self.train, method=cell.method, init=cell.init, noise=cell.noise, seed=seed,
                                   arch=cell.arch or self.train.arch, mode="finetune")

    def pretrain_config(self, arch: str) -> configs.PretrainConfig:
        return dataclasses.replace(self.pretrain, arch=arch)


def _cells(methods, noises, inits=INITS, archs=(None,)) -> tuple[Cell, ...]:
    return tuple(Cell(m, i, z, a) for a in archs for z in noises for i in inits for m in methods)


_METHODS_T1 = ("ce", "elr", "mixup", "crust")


def grid(table: int, preset: str) -> Grid:
    """The grid of ``table`` under ``preset`` (see the module docstring)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}, got {table!r}")
    if preset not in configs.PRESETS:
        raise ValueError(f"preset must be one of {configs.PRESETS}, got {preset!r}")
    train, pre = configs.train_preset(preset), configs.pretrain_preset(preset)
    seeds, subset = 3, None
    if preset == "smoke":
        train = dataclasses.replace(train, epochs=2, crust_warmup=1)
        noises, seeds = ("sym:0.8",), 1
    elif preset == "cpu":
        # Sized, before these runs, from the rate `clspec cifar reproduce --dry-run` measured on the
        # quiet 2-core machine (2026-12-01 16:20 UTC: 174.9 training images/s for ResNet-32
        # fine-tuning at batch 64, 1,143 evaluation images/s) to about 2 hours of CPU: all
        # 4,000 training images x 8 epochs, 1,000 test and 500 training points evaluated per
        # epoch, is ~3.3 min a run; 2 noises x 8 cells x 2 seeds = 32 runs, ~105 min. The 4,000 images
        # are the training preset's (inside the 8,000 the cpu pre-training has used since its re-sizing
        # the same day; the random-init runs do not depend on it). (Before:
        # 1,000 images x 4 epochs at sym 0.8 only, whose differences were all within 1 standard error.)
        # Crust's relabelling warm-up keeps its share of the run (half).
        train = dataclasses.replace(train, mode="finetune", epochs=8, test_limit=1_000, eval_train_limit=500,
                                    crust_warmup=4)
        noises, seeds, subset = ("sym:0.8", "asym:0.4"), 2, None
    elif preset == "gpu15":
        train = dataclasses.replace(train, crust_warmup=10)
        noises = ("sym:0.8", "asym:0.4")
    else:
        noises = _C10
    if table == 1:
        cells = _cells(_METHODS_T1, noises)
    elif table == 2:
        archs = ("tiny",) if preset == "smoke" else ("resnet32", "resnet34")
        cells = _cells(("mixup",), [z for z in ("sym:0.8", "asym:0.4") if z in noises or preset == "paper"],
                       inits=("pretrained",), archs=archs)
    else:
        if preset != "smoke":  # an ImageNet-style network at the folder's resolution
            train = dataclasses.replace(train, arch="resnet18", test_limit=None)
            pre = dataclasses.replace(pre, arch="resnet18", test_limit=None)
        cells = tuple(c for c in _cells(_METHODS_T1, ("none",)) if c.label in PAPER_T3)
        subset = None
    return Grid(table, preset, cells, train, pre, seeds, subset)


def select(g: Grid, methods: str | None = None, inits: str | None = None, noises: str | None = None,
           cells: str | None = None) -> Grid:
    """Keep the cells of the comma-separated ``methods``, ``inits`` and ``noises`` only
    (``--methods``, ``--inits``, ``--noises``), and of the comma-separated ``method/noise`` pairs of
    ``cells`` (``--cells elr/sym:0.8,crust/asym:0.4``: both inits of each, unless ``inits`` says otherwise)."""
    from experiments.cifar.methods import METHODS

    present = tuple(dict.fromkeys(c.noise for c in g.cells))
    if cells:
        pairs = [item.strip() for item in cells.split(",") if item.strip()]
        known = {(c.method, c.noise) for c in g.cells}
        for item in pairs:
            method, _, noise = item.partition("/")
            if (method, noise) not in known:
                raise ValueError(f"--cells: each item must be METHOD/NOISE with METHOD in "
                                 f"{tuple(dict.fromkeys(c.method for c in g.cells))} and NOISE in {present}, got {item!r}")
        wanted_pairs = {tuple(item.partition("/")[::2]) for item in pairs}
        g = dataclasses.replace(g, cells=tuple(c for c in g.cells if (c.method, c.noise) in wanted_pairs))
    cells = g.cells
    for flag, given, choices, field in (("--methods", methods, METHODS, "method"), ("--inits", inits, INITS, "init"),
                                        ("--noises", noises, present, "noise")):
        if not given:
            continue
        wanted = [m.strip() for m in given.split(",") if m.strip()]
        for m in wanted:
            if m not in choices:
                raise ValueError(f"{flag}: must be a comma-separated subset of {choices}, got {m!r}")
        cells = tuple(c for c in cells if getattr(c, field) in wanted)
    return dataclasses.replace(g, cells=cells)
