"""The :class:`Dataset` of one split and the class-balanced subset rule shared by every format."""

from __future__ import annotations

import dataclasses

import numpy as np

SPLITS = ("train", "test")
KINDS = ("auto", "cifar10", "cifar100", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split.

    ``indices`` are the positions of these examples in the full split (official order), so that
    per-example side data (CIFAR-N labels) can be indexed the same way after ``limit``.
    """

    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...]
    source: str
    indices: np.ndarray | None = None  # (N,) int64 positions in the full split
    identity: dict | None = None  # what runs record about the source (experiments.cifar.data.data_identity)

    def __post_init__(self):
        n = len(self.labels)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"{self.source}: images must be (N, H, W, 3) uint8, got {self.images.shape} {self.images.dtype}"
            )
        if self.labels.shape != (n,) or len(self.images) != n:
            raise ValueError(f"{self.source}: {len(self.images)} images but {n} labels")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"{self.source}: labels must be in [0, {len(self.classes)}), "
                f"got [{self.labels.min()}, {self.labels.max()}]"
            )
        if self.indices is not None and self.indices.shape != (n,):
            raise ValueError(f"{self.source}: indices must have shape ({n},), got {self.indices.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]



def stratified_subset(labels: np.ndarray, limit: int, *, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset of ``limit`` examples, sorted (original order kept).

    Each class gets ``limit // K`` examples and ``limit % K`` classes (drawn with ``seed``) get one
    more; a class with too few examples gives all it has and the rest goes to the others. Which
    examples of a class are kept is a uniform draw from ``np.random.default_rng(seed)``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if limit >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    k = len(classes)
    quota = np.full(k, limit // k, dtype=np.int64)
    quota[rng.permutation(k)[: limit % k]] += 1
    while True:  # give what a small class cannot take to the classes with room left
        over = np.maximum(quota - counts, 0).sum()
        quota = np.minimum(quota, counts)
        if over == 0:
            break
        room = np.flatnonzero(quota < counts)
        share = np.full(len(room), over // len(room), dtype=np.int64)
        share[rng.permutation(len(room))[: over % len(room)]] += 1
        quota[room] += share
    keep = []
    for c, q in zip(classes, quota):
        members = np.flatnonzero(labels == c)
        keep.append(members[np.sort(rng.permutation(len(members))[:q])])
    return np.sort(np.concatenate(keep)).astype(np.int64)

