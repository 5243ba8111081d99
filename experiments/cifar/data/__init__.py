"""Image datasets for the CIFAR pipeline: CIFAR-10/100, image folders, CIFAR-10N/100N labels.

What users download is read as is, nothing is downloaded:

- ``cifar10``: the official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``,
  ``batches.meta``) or ``cifar-10-python.tar.gz``;
- ``cifar100``: the official ``cifar-100-python`` folder (``train``, ``test``, ``meta``) or
  ``cifar-100-python.tar.gz``; labels are the 100 fine labels;
- ``folder``: ``<root>/<split>/<class>/*.{png,jpg,jpeg}`` as a folder or an archive (``.tar``,
  ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``),
  at any resolution (mini-WebVision-style data, and ``../shared/data/cifar10-jpg.tar.gz``).
  Classes are the sorted class-folder names over all splits. Within a split, when every file name
  is a distinct integer (``00000.jpg``...) the images come in the order of that integer (for the
  shared CIFAR-10 copy this is the official training order, so CIFAR-10N labels line up index for
  index); otherwise by class, then file name. Images whose size differs from the split's first
  image (or from ``size=``) are resized (bilinear); for high-resolution data pass ``size=`` (the
  decoded arrays are held in memory). Decoded folders are cached as ``.npz`` (see :func:`cache_dir`),
  keyed by content and bounded, so the 60,000 JPEGs of the shared copy are decoded once (helper
  processes decode in parallel).

One module per job: :mod:`.formats` (CIFAR pickles, tar archives), :mod:`.folders` (image folders,
decoding), :mod:`.cache` (the decoded-folder cache), :mod:`.cifar_n` (CIFAR-N labels),
:mod:`.dataset` (the :class:`Dataset` and the subset rule); every public name is importable from
here. :func:`data_identity` is what checkpoints and run configs record about the data.
Pickled inputs go through :mod:`experiments.cifar.safe_pickle`. A missing file raises
``FileNotFoundError`` and a truncated or inconsistent one ``ValueError``, both naming the file.
"""


from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from experiments.cifar.data.cache import CACHE_VERSION, cache_dir, source_sha256
from experiments.cifar.data.cifar_n import CIFAR_N_VARIANTS, load_cifar_n, load_label_file, shared_data_dir
from experiments.cifar.data.dataset import (
    CIFAR10_CLASSES, IMAGE_SUFFIXES, KINDS, SPLITS, Dataset, stratified_subset,
)
from experiments.cifar.data.folders import (  # noqa: F401 - private names kept importable from here
    _PARALLEL_MIN_IMAGES, _Decoder, _jpeg_geometry, _load_folder, _normalize_size, _worker_main, decode_image,
)
from experiments.cifar.data.formats import (  # noqa: F401
    _read_cifar10, _read_cifar100, _tar_files, _tar_names, detect_kind,
)

__all__ = [
    "CACHE_VERSION", "CIFAR10_CLASSES", "CIFAR_N_VARIANTS", "IMAGE_SUFFIXES", "KINDS", "SPLITS", "Dataset",
    "cache_dir", "data_identity", "decode_image", "detect_kind", "load_cifar_n", "load_dataset",
    "load_label_file", "shared_data_dir", "source_sha256", "stratified_subset",
]


def load_dataset(
    path: Path | str,
    split: str,
    *,
    kind: str = "auto",
    limit: int | None = None,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    cache: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Load one split of a CIFAR-10/100 or image-folder dataset (see the module docstring).

    Args:
      path: a folder or a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive.
      split: ``"train"`` or ``"test"`` (an image folder may name any split it holds, e.g. ``"val"``).
      kind: ``"cifar10"``, ``"cifar100"``, ``"folder"`` or ``"auto"`` (detected from the contents).
      limit: keep a class-balanced subset of this many examples, drawn with ``seed``, in the
        original order (:func:`stratified_subset`).
      size: ``H`` or ``(H, W)`` for image folders; default: the size of the split's first image.
      cache: image folders only: read/write the decoded arrays in :func:`cache_dir`.
      workers: decoding processes for image folders (default: the CPU count, at most 8).
      progress: show a progress bar on stderr for decodes longer than 2 s (default True).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data path does not exist: {path}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    size_hw = _normalize_size(size)
    if kind == "auto":
        kind = detect_kind(path)
    if kind in ("cifar10", "cifar100"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} for {kind}, got {split!r}")
        if size_hw is not None and size_hw != (32, 32):
            raise ValueError(f"size must be 32 (or None) for {kind}, got {size!r}")
        reader = _read_cifar10 if kind == "cifar10" else _read_cifar100
        images, labels, classes = reader(path, split)
        keep = None if limit is None else stratified_subset(labels, limit, seed=seed)
        if keep is not None:
            images, labels = images[keep], labels[keep]
        indices = np.arange(len(labels), dtype=np.int64) if keep is None else keep
        return Dataset(np.ascontiguousarray(images), labels, classes, str(path), indices)
    return _load_folder(
        path, split, limit=limit, seed=seed, size=size_hw, cache=cache, workers=workers, progress=progress
    )



def data_identity(path: Path | str, train_set: Dataset, test_set: Dataset | None = None, *,
                  kind: str = "auto") -> dict:
    """What a checkpoint and a run's config.json record about the data a run used.

    ``sha256`` is the content hash of the source (:func:`source_sha256`: the archive's bytes, or a
    folder's names and bytes), so a copy of the same data elsewhere has the same identity;
    ``classes`` and the image counts say what was taken from it.
    """
    path = Path(path).expanduser()
    out = {
        "path": str(path.resolve()),
        "kind": detect_kind(path) if kind == "auto" else kind,
        "sha256": source_sha256(path),
        "classes": list(train_set.classes),
        "num_classes": len(train_set.classes),
        "train_images": len(train_set),
        "image_shape": list(train_set.image_shape),
    }
    if test_set is not None:
        out["test_images"] = len(test_set)
    return out


def same_data(recorded: dict, current: dict) -> list[str]:
    """The fields in which two :func:`data_identity` records differ in content (not in path)."""
    return [k for k in ("sha256", "classes") if k in recorded and recorded.get(k) != current.get(k)]


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.cifar.data PATH``: load every split, print sizes and times (fills the cache)."""
    import argparse
    import resource

    parser = argparse.ArgumentParser(prog="python -m experiments.cifar.data", description=main.__doc__)
    parser.add_argument("path", help="CIFAR folder/.tar.gz or image folder/.tar.gz")
    parser.add_argument("--split", action="append", help="split(s) to load (default: train and test)")
    parser.add_argument("--kind", default="auto", choices=KINDS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    try:
        for split in args.split or list(SPLITS):
            t, c = time.perf_counter(), cpu()
            ds = load_dataset(
                args.path, split, kind=args.kind, limit=args.limit, cache=not args.no_cache, workers=args.workers
            )
            wall, used = time.perf_counter() - t, cpu() - c
            counts = np.bincount(ds.labels, minlength=ds.num_classes)
            print(
                f"{split}: {len(ds)} images {ds.image_shape}, {ds.num_classes} classes "
                f"(per class {counts.min()}..{counts.max()}); {wall:.2f} s wall, {used:.2f} s CPU"
            )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0



