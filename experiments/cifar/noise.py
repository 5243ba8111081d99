"""Label noise for the CIFAR experiments (the paper's Section 5 and App. D).

A noise model is named by a spec string (``--noise`` on the command line):

- ``none``: the clean labels.
- ``sym:R``: exactly ``round(R * N)`` examples, drawn uniformly without replacement, get a label drawn
  uniformly from the K-1 *other* classes, so the realized rate is R (up to rounding). This is the
  "class-agnostic" convention of Crust (Mirzasoleiman et al. 2020), which the paper follows.
- ``symall:R``: exactly ``round(R * N)`` examples are relabelled uniformly over *all* K classes, the
  true one included (the ELR / Co-teaching convention): the expected realized rate is R (K-1)/K.
- ``asym:R``: class-dependent flips. CIFAR-10 (K=10): truck->automobile, bird->airplane, cat<->dog,
  deer->horse, each applied to exactly ``round(R * n_c)`` examples of the source class c.
  CIFAR-100 (K=100): every class c goes to the next class of its superclass (the five fine classes
  of a superclass in fine-label order, cyclically), again an exact R fraction of each class.
  Given the dataset's class names (``classes=``), the map is applied by *name*, and a dataset whose
  classes are not CIFAR-10's (or CIFAR-100's) is refused, naming its classes, unless a map by name
  is given (``asym_map=``, ``--asym-map FILE``: a JSON object ``{"source": "target", ...}``).
- ``human:VARIANT``: the CIFAR-10N / CIFAR-100N human labels (``aggre``, ``worse``, ``random1..3``,
  ``noisy``), passed in as ``human=`` (see :func:`experiments.cifar.data.load_cifar_n`).

Randomness comes from ``np.random.default_rng(seed)`` only: the same clean labels, spec and seed
give the same noisy labels. :class:`NoisyLabels` records the realized rate, the realized transition
matrix and a sha256 of the labels, so a run can be reproduced (and checked) exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from experiments.common.runs import atomic_write_bytes

NOISE_KINDS = ("none", "sym", "symall", "asym", "human")
HUMAN_VARIANTS = ("aggre", "worse", "random1", "random2", "random3", "noisy")

# CIFAR-10 asymmetric map (Patrini et al. 2017, "Making deep neural networks robust to label
# noise: a loss correction approach"): truck->automobile, bird->airplane, cat<->dog, deer->horse.
CIFAR10_ASYM = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}
# The same map by class name (CIFAR10_ASYM is it in the official class order).
CIFAR10_ASYM_NAMES = {"truck": "automobile", "bird": "airplane", "cat": "dog", "dog": "cat", "deer": "horse"}

# The CIFAR-100 fine class names in the official fine-label order (alphabetical), the order
# CIFAR100_COARSE indexes.
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# CIFAR-100 fine label -> coarse label (superclass), in the official fine-label order
# (apple, aquarium_fish, baby, ...). Source: the `coarse_labels` of the official
# cifar-100-python `train` file (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html),
# as tabulated in github.com/ryanchankh/cifar100coarse (`sparse2coarse`); the tests check it
# against the clean fine/coarse labels of CIFAR-100N (../shared/data/CIFAR-100_human.pt).
CIFAR100_COARSE = np.array(
    [
        4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
        6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
        5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
        10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
        16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
    ],
    dtype=np.int64,
)  # fmt: skip


def cifar100_asym_map() -> dict[int, int]:
    """Fine class -> the next fine class of its superclass (fine-label order, cyclic).

    Unlike the consecutive blocks of five that some codebases use (which are not superclasses in
    the official fine-label order), this uses the real superclasses of :data:`CIFAR100_COARSE`.
    """
    out = {}
    for coarse in range(20):
        members = np.flatnonzero(CIFAR100_COARSE == coarse)
        for i, c in enumerate(members):
            out[int(c)] = int(members[(i + 1) % len(members)])
    return out


def load_asym_map(path: Path | str) -> dict[str, str]:
    """A class map by name from a JSON file ``{"source class": "target class", ...}``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--asym-map {path} is a folder; expected a JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"--asym-map {path} does not exist")
    try:
        mapping = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"--asym-map {path} is not JSON ({err})") from None
    if not isinstance(mapping, dict) or not mapping or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ValueError(f'--asym-map {path} must be a JSON object of class names, e.g. {{"cat": "dog"}}')
    return mapping


def asym_map_for(classes, asym_map: dict[str, str] | None = None) -> dict[int, int]:
    """The asymmetric map by class index for a dataset with class names ``classes``.

    Without ``asym_map``: the CIFAR-10 map by name (10 classes) or the CIFAR-100 superclass map
    (the 100 CIFAR-100 names). Names that the map needs but the dataset lacks are an error that
    names the dataset's classes.
    """
    classes = tuple(str(c) for c in classes)
    index = {c: i for i, c in enumerate(classes)}
    if asym_map is not None:
        which, by_name = "the given map", asym_map
    elif len(classes) == 100:
        which, by_name = "the CIFAR-100 map", {
            CIFAR100_CLASSES[s]: CIFAR100_CLASSES[t] for s, t in cifar100_asym_map().items()
        }
    else:
        which, by_name = "the CIFAR-10 map", CIFAR10_ASYM_NAMES
    missing = sorted({n for pair in by_name.items() for n in pair if n not in index})
    if missing:
        shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
        need = ", ".join(missing[:12]) + (f", ... ({len(missing)} in all)" if len(missing) > 12 else "")
        raise ValueError(
            f"asym noise: {which} needs classes {need}, which this dataset lacks (its "
            f"{len(classes)} classes: {shown}); give a map by class name with --asym-map FILE"
        )
    return {index[s]: index[t] for s, t in by_name.items()}


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy labels with what is needed to report and reproduce them."""

    labels: np.ndarray  # (N,) int64 noisy labels
    clean: np.ndarray  # (N,) int64
    spec: str  # normalized spec, e.g. "sym:0.8"
    rate: float  # realized fraction with labels != clean
    transition: np.ndarray  # (K, K) realized P(noisy = j | clean = i); rows sum to 1
    sha256: str  # of the spec, seed, clean and noisy labels
    seed: int | None = None

    @property
    def num_classes(self) -> int:
        return self.transition.shape[0]

    @property
    def is_noisy(self) -> np.ndarray:
        """(N,) bool: where the label was changed."""
        return self.labels != self.clean

    def summary(self) -> dict:
        """JSON-able record for a run's config/metrics: spec, seed, rate, counts and hash."""
        return {
            "spec": self.spec,
            "seed": self.seed,
            "rate": self.rate,
            "num_noisy": int(self.is_noisy.sum()),
            "num_examples": int(len(self.labels)),
            "num_classes": self.num_classes,
            "sha256": self.sha256,
        }


class NoiseSpec(NamedTuple):
    """A parsed noise spec: its kind and its rate (or, for ``human``, the CIFAR-N variant).
    ``str(spec)`` is its one canonical spelling (``sym:0.8`` for ``SYM:.8``), which names run folders."""

    kind: str
    arg: float | str

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        return f"{self.kind}:{self.arg}" if self.kind == "human" else f"{self.kind}:{float(self.arg)!r}"


def parse_noise_spec(spec: str) -> NoiseSpec:
    """``"sym:0.8"`` -> ``("sym", 0.8)``; ``"human:aggre"`` -> ``("human", "aggre")``; ``"none"`` -> ``("none", 0.0)``.

    Raises ``ValueError`` naming the spec for an unknown kind, a malformed spec or a rate outside [0, 1].
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string like 'sym:0.8', got {spec!r}")
    text = spec.strip().lower()
    kind, sep, arg = text.partition(":")
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r} in noise spec {spec!r}; expected one of {NOISE_KINDS}")
    if kind == "none":
        if sep and arg not in ("", "0", "0.0"):
            raise ValueError(f"malformed noise spec {spec!r}: 'none' takes no rate")
        return NoiseSpec("none", 0.0)
    if not sep or not arg:
        example = "human:aggre" if kind == "human" else f"{kind}:0.4"
        raise ValueError(f"malformed noise spec {spec!r}: expected e.g. {example!r}")
    if kind == "human":
        if arg not in HUMAN_VARIANTS:
            raise ValueError(f"unknown human-noise variant {arg!r} in noise spec {spec!r}; expected one of {HUMAN_VARIANTS}")
        return NoiseSpec("human", arg)
    try:
        rate = float(arg)
    except ValueError:
        raise ValueError(f"malformed noise spec {spec!r}: rate {arg!r} is not a number") from None
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must be in [0, 1], got {arg} in noise spec {spec!r}")
    return NoiseSpec(kind, rate)


def normalize_spec(spec: str) -> str:
    """The canonical spelling of ``spec`` (``"SYM:.8"`` -> ``"sym:0.8"``)."""
    return str(parse_noise_spec(spec))


def noise_option(text: str) -> str:
    """``type=`` of a ``--noise`` option: the spec parsed once, at the command line, and returned in its
    canonical spelling, so that ``SYM:.8`` and ``sym:0.8`` are one setting (one run folder); a bad spec
    is argparse's one-line error (exit 2)."""
    try:
        return normalize_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def noisy_labels_for(dataset, spec: str, *, seed: int, human: np.ndarray | None = None,
                     asym_map: dict[str, str] | None = None) -> "NoisyLabels":
    """:func:`make_noisy_labels` for a loaded dataset: its labels and classes, so asymmetric noise
    is applied by class name (what ``clspec cifar train`` and ``reproduce`` both use)."""
    return make_noisy_labels(dataset.labels, spec, num_classes=len(dataset.classes), seed=seed, human=human,
                             classes=dataset.classes, asym_map=asym_map)


def make_noisy_labels(
    clean: np.ndarray,
    spec: str,
    *,
    num_classes: int,
    seed: int,
    human: np.ndarray | None = None,
    classes=None,
    asym_map: dict[str, str] | None = None,
) -> NoisyLabels:
    """Noisy labels for ``clean`` under the noise model ``spec`` (see the module docstring).

    ``classes``: the dataset's class names; asymmetric noise is then mapped by name
    (:func:`asym_map_for`, with ``asym_map`` by name if given). Without them the CIFAR maps are
    applied by class index, which assumes the official CIFAR class order.
    """
    kind, arg = parse_noise_spec(spec)
    k = _check_num_classes(num_classes)
    clean = _check_labels(clean, k, "clean")
    n = len(clean)
    rng = np.random.default_rng(seed)
    noisy = clean.copy()
    if kind in ("sym", "symall"):
        if kind == "sym" and k < 2 and arg > 0:
            raise ValueError(f"noise spec {spec!r} needs num_classes >= 2, got {k}")
        count = int(round(arg * n))
        idx = rng.choice(n, size=count, replace=False)
        if kind == "sym":  # a uniformly random *different* class
            noisy[idx] = (clean[idx] + rng.integers(1, k, size=count)) % k
        else:  # uniformly over all K classes, the true one included
            noisy[idx] = rng.integers(0, k, size=count)
    elif kind == "asym":
        if classes is not None:
            if len(classes) != k:
                raise ValueError(f"classes has {len(classes)} names for num_classes={k}")
            mapping = asym_map_for(classes, asym_map)
        elif asym_map is not None:
            raise ValueError("asym_map is by class name: pass classes= as well")
        elif k == 10:
            mapping = CIFAR10_ASYM
        elif k == 100:
            mapping = cifar100_asym_map()
        else:
            raise ValueError(
                f"noise spec {spec!r}: asymmetric noise is defined for CIFAR-10 (10 classes) and "
                f"CIFAR-100 (100 classes), got num_classes={k}"
            )
        for src in sorted(mapping):  # sorted: the draws do not depend on dict order
            members = np.flatnonzero(clean == src)
            count = int(round(arg * len(members)))
            idx = rng.choice(members, size=count, replace=False)
            noisy[idx] = mapping[src]
    elif kind == "human":
        if human is None:
            raise ValueError(
                f"noise spec {spec!r} needs the CIFAR-N labels: pass human=load_cifar_n(path, {arg!r})"
            )
        human = _check_labels(human, k, f"human ({arg})")
        if len(human) != n:
            raise ValueError(f"noise spec {spec!r}: {len(human)} human labels for {n} clean labels")
        noisy = human.copy()
    spec_n = normalize_spec(spec)
    return NoisyLabels(
        labels=noisy,
        clean=clean,
        spec=spec_n,
        rate=float(np.mean(noisy != clean)) if n else 0.0,
        transition=transition_matrix(clean, noisy, k),
        sha256=labels_sha256(noisy, clean, spec_n, seed),
        seed=int(seed),
    )


def human_labels(spec: str, dataset, path: Path | str | None = None) -> np.ndarray:
    """The CIFAR-N labels of ``spec`` (``"human:aggre"``...) for the examples of ``dataset``.

    ``dataset`` is a :class:`experiments.cifar.data.Dataset` of the CIFAR-10/100 *training* split
    in the official order (any ``limit`` subset: its ``indices`` select the CIFAR-N rows). ``path``
    defaults to ``CIFAR-10_human.pt`` / ``CIFAR-100_human.pt`` in ``../shared/data``. The file's
    ``clean_label`` must agree with ``dataset.labels`` example for example, which proves the two
    line up; otherwise ``ValueError``.
    """
    from experiments.cifar.data import CIFAR_N_VARIANTS, load_label_file, shared_data_dir

    kind, variant = parse_noise_spec(spec)
    if kind != "human":
        raise ValueError(f"human_labels needs a 'human:VARIANT' noise spec, got {spec!r}")
    k = dataset.num_classes
    if path is None:
        if k not in (10, 100):
            raise ValueError(f"human noise exists for CIFAR-10 and CIFAR-100 only, got {k} classes")
        path = shared_data_dir() / ("CIFAR-10_human.pt" if k == 10 else "CIFAR-100_human.pt")
    table = load_label_file(path)
    key = CIFAR_N_VARIANTS[variant]
    if key not in table or "clean_label" not in table:
        raise ValueError(f"noise spec {spec!r}: {path} has no {key!r} (it has {sorted(table)})")
    n = len(table[key])
    indices = np.arange(len(dataset.labels)) if dataset.indices is None else np.asarray(dataset.indices)
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"{path} has {n} labels, but the dataset indexes up to {indices.max()}")
    disagree = int(np.sum(table["clean_label"][indices] != dataset.labels))
    if disagree:
        raise ValueError(
            f"{path}: clean_label disagrees with the dataset's labels on {disagree} of {len(indices)} examples; "
            "human noise needs the CIFAR training split in the official order"
        )
    return table[key][indices]


def transition_matrix(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Realized ``T[i, j] = #(clean = i, noisy = j) / #(clean = i)``; a class with no examples gets e_i."""
    k = _check_num_classes(num_classes)
    counts = np.zeros((k, k), dtype=np.float64)
    np.add.at(counts, (np.asarray(clean), np.asarray(noisy)), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    empty = totals[:, 0] == 0
    counts[empty, np.flatnonzero(empty)] = 1.0
    return counts / np.where(totals == 0, 1.0, totals)


def labels_sha256(noisy: np.ndarray, clean: np.ndarray, spec: str, seed: int | None) -> str:
    """sha256 of the spec, seed and both label arrays (as little-endian int64)."""
    h = hashlib.sha256(f"clspec-noisy-labels-v1;{spec};{seed};{len(noisy)};".encode())
    h.update(np.ascontiguousarray(noisy, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(clean, dtype="<i8").tobytes())
    return h.hexdigest()


def save_noisy_labels(path: Path | str, noisy: NoisyLabels) -> None:
    """Write ``noisy`` to ``path`` (.npz), atomically."""
    buf = io.BytesIO()
    np.savez(
        buf,
        labels=noisy.labels.astype(np.int64),
        clean=noisy.clean.astype(np.int64),
        spec=np.array(noisy.spec),
        rate=np.array(noisy.rate),
        transition=noisy.transition,
        sha256=np.array(noisy.sha256),
        seed=np.array(-1 if noisy.seed is None else noisy.seed, dtype=np.int64),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_noisy_labels(path: Path | str) -> NoisyLabels:
    """Read what :func:`save_noisy_labels` wrote; the hash is recomputed and must match."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"noisy-label file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in ("labels", "clean", "spec", "rate", "transition", "sha256", "seed")}
    except KeyError as err:
        raise ValueError(f"{path}: not a noisy-label file (missing {err})") from None
    except Exception as err:  # noqa: BLE001 - zip/npz errors come in many types
        raise ValueError(f"{path}: unreadable noisy-label file ({type(err).__name__}: {err})") from None
    labels, clean = fields["labels"].astype(np.int64), fields["clean"].astype(np.int64)
    seed = int(fields["seed"])
    seed_or_none = None if seed == -1 else seed
    spec, sha = str(fields["spec"]), str(fields["sha256"])
    if labels.shape != clean.shape or labels.ndim != 1:
        raise ValueError(f"{path}: labels {labels.shape} and clean {clean.shape} must be equal 1-D shapes")
    if labels_sha256(labels, clean, spec, seed_or_none) != sha:
        raise ValueError(f"{path}: sha256 does not match the stored labels (file altered or corrupt)")
    return NoisyLabels(labels, clean, spec, float(fields["rate"]), fields["transition"], sha, seed_or_none)


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _check_labels(labels, k: int, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{name} labels must be a 1-D integer array, got shape {arr.shape} dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= k):
        raise ValueError(f"{name} labels must be in [0, {k}), got [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)
