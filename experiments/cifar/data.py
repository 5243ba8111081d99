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
  keyed by the archive's size, mtime and first MB, so the 60,000 JPEGs of the shared copy are
  decoded once (helper processes decode in parallel).

Pickled inputs go through :mod:`experiments.cifar.safe_pickle`. A missing file raises
``FileNotFoundError`` and a truncated or inconsistent one ``ValueError``, both naming the file.
"""

from __future__ import annotations

import bz2
import concurrent.futures
import dataclasses
import gzip
import hashlib
import io
import lzma
import os
import re
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from experiments.cifar.safe_pickle import safe_loads
from experiments.runs import atomic_writer

SPLITS = ("train", "test")
KINDS = ("auto", "cifar10", "cifar100", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CACHE_VERSION = 1
_CIFAR_PIXELS = 3 * 32 * 32
_PARALLEL_MIN_IMAGES = 4000  # below this a process pool costs more than it saves
_PROGRESS_MIN_IMAGES = 5000


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


# --------------------------------------------------------------------------------------------
# Public entry points


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


def detect_kind(path: Path | str) -> str:
    """``"cifar10"``, ``"cifar100"`` or ``"folder"``, from the names inside ``path``."""
    path = Path(path)
    if path.is_dir():
        names = _walk_names(path, stop=_decisive_name)
    elif path.is_file():
        names = _tar_names(path, stop=_decisive_name)
    else:
        raise FileNotFoundError(f"data path does not exist: {path}")
    for name in names:
        decided = _decisive_name(name)
        if decided:
            return decided
    raise ValueError(
        f"cannot tell what dataset {path} holds: expected cifar-10-batches-py (data_batch_1...), "
        "cifar-100-python (train, test, meta) or <root>/<split>/<class>/<image> files"
    )


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


CIFAR_N_VARIANTS = {
    "clean": "clean_label",
    "aggre": "aggre_label",
    "worse": "worse_label",
    "random1": "random_label1",
    "random2": "random_label2",
    "random3": "random_label3",
    "noisy": "noisy_label",
    "clean_coarse": "clean_coarse_label",
    "noisy_coarse": "noisy_coarse_label",
}


def load_label_file(path: Path | str) -> dict[str, np.ndarray]:
    """All label arrays of a CIFAR-10N/100N ``.pt`` file (a zip with ``<dir>/data.pkl``), without torch.

    Every array must be 1-D, integer and of the same length; returned as int64.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-N label file not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            pkls = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pkls) != 1:
                raise ValueError(f"{path}: expected one data.pkl inside the .pt archive, found {pkls}")
            data = archive.read(pkls[0])
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable .pt (zip) file ({err})") from None
    obj = safe_loads(data, source=str(path))
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path}: expected a dict of label arrays, got {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        arr = np.asarray(value)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{path}: {key!r} must be a 1-D integer array, got {arr.shape} {arr.dtype}")
        out[str(key)] = arr.astype(np.int64)
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path}: label arrays differ in length: {lengths}")
    return out


def load_cifar_n(path: Path | str, variant: str) -> np.ndarray:
    """One label array of a CIFAR-10N/100N file, e.g. ``variant="aggre"`` -> ``aggre_label``.

    Variants: ``aggre``, ``worse``, ``random1..3`` (CIFAR-10N), ``noisy`` (CIFAR-100N), ``clean``,
    ``clean_coarse``, ``noisy_coarse``, or the key itself (``"aggre_label"``). Labels index the
    official training order (50,000 examples).
    """
    labels = load_label_file(path)
    key = CIFAR_N_VARIANTS.get(variant, variant)
    if key not in labels:
        known = sorted(k for k, v in CIFAR_N_VARIANTS.items() if v in labels)
        raise ValueError(f"variant {variant!r} not in {path}; it has {known} (keys {sorted(labels)})")
    arr = labels[key]
    if arr.min() < 0:
        raise ValueError(f"{path}: {key} has negative labels (min {arr.min()})")
    return arr


def shared_data_dir() -> Path:
    """``../shared/data`` relative to the repository root: the offline CIFAR-10 copy and CIFAR-N files."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def cache_dir() -> Path:
    """Where decoded image folders are cached: ``$CLSPEC_CACHE``, else ``~/.cache/clspec``."""
    return Path(os.environ.get("CLSPEC_CACHE") or Path.home() / ".cache" / "clspec").expanduser()


# --------------------------------------------------------------------------------------------
# Detection and listing


def _decisive_name(name: str) -> str | None:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return None
    base = parts[-1]
    if re.fullmatch(r"data_batch_\d+|test_batch|batches\.meta", base):
        return "cifar10"
    if base in ("train", "test", "meta") and len(parts) >= 2 and parts[-2] == "cifar-100-python":
        return "cifar100"
    if base.lower().endswith(IMAGE_SUFFIXES) and len(parts) >= 3:
        return "folder"
    return None


def _walk_names(root: Path, *, stop: Callable[[str], object] | None) -> list[str]:
    """Relative file names under ``root`` (sorted walk), stopping at the first ``stop(name)`` hit."""
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            name = f if rel == "." else f"{rel}/{f}".replace(os.sep, "/")
            names.append(name)
            if stop is not None and stop(name):
                return names
    # A bare cifar-100-python folder holds train/test/meta directly (no parent name to go on).
    if stop is not None and {"train", "test", "meta"} <= set(names):
        names.append("cifar-100-python/meta")
    return names


_BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file
_TAR_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def _open_stream(path: Path):
    """The decompressed byte stream of a .tar, .tar.gz/.tgz, .tar.bz2 or .tar.xz file (by magic number)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic[:2] == b"\x1f\x8b":
            return gzip.open(path, "rb")
        if magic[:3] == b"BZh":
            return bz2.open(path, "rb")
        if magic == b"\xfd7zXZ\x00":
            return lzma.open(path, "rb")
        return open(path, "rb")
    except OSError as err:
        raise ValueError(f"{path}: cannot open archive ({err})") from None


def _read_exact(stream, n: int, path: Path, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated archive (ended inside {what})")
    return data


def _skip(stream, n: int, path: Path, what: str) -> None:
    while n > 0:
        step = min(n, 1 << 20)
        _read_exact(stream, step, path, what)
        n -= step


def _tar_number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_records(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _tar_files(path: Path, want: Callable[[str], bool] = lambda name: False):
    """Every regular file of a tar archive, in stored order: ``(name, bytes if want(name) else None)``.

    A streaming ustar/GNU/pax reader, three times faster than :mod:`tarfile` on archives of many
    small files (the 60,000 JPEGs: 0.8 s against 2.4 s to list them). Long names (GNU ``L``,
    pax ``path``) and pax sizes are understood; a bad header checksum or a truncated archive
    raises ``ValueError`` naming the file.
    """
    stream = _open_stream(path)
    try:
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            header = stream.read(_BLOCK)
            if not header or not any(header):
                return  # end of archive (zero block or end of stream)
            if len(header) != _BLOCK:
                raise ValueError(f"{path}: truncated archive (ended inside a header)")
            try:
                stored = _tar_number(header[148:156])
            except ValueError:
                raise ValueError(f"{path}: not a tar archive (unreadable header)") from None
            unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
            signed = unsigned - 2 * sum(b for b in header[:148] + header[156:] if b > 127)
            if stored not in (unsigned, signed):
                raise ValueError(f"{path}: not a tar archive or corrupt (header checksum mismatch)")
            kind = header[156:157]
            size = int(pax["size"]) if "size" in pax else _tar_number(header[124:136])
            name = header[0:100].split(b"\0", 1)[0]
            if header[257:263] == b"ustar\x00":  # POSIX ustar: a path prefix field
                prefix = header[345:500].split(b"\0", 1)[0]
                if prefix:
                    name = prefix + b"/" + name
            name_str = long_name or pax.get("path") or name.decode("utf-8", "surrogateescape")
            padded = -(-size // _BLOCK) * _BLOCK
            if kind in (b"L", b"x", b"g", b"K"):  # metadata for the next member
                data = _read_exact(stream, padded, path, "a long-name/pax header")[:size]
                if kind == b"L":
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif kind == b"x":
                    pax = _pax_records(data)
                continue
            long_name, pax = None, {}
            if kind not in _REGULAR:
                _skip(stream, padded, path, name_str)  # directories, links, devices
                continue
            if want(name_str):
                data = _read_exact(stream, size, path, name_str)
                _skip(stream, padded - size, path, name_str)
                yield name_str, data
            else:
                _skip(stream, padded, path, name_str)
                yield name_str, None
    except _TAR_ERRORS as err:
        raise ValueError(f"{path}: truncated or corrupt archive ({type(err).__name__}: {err})") from None
    finally:
        stream.close()


def _tar_names(path: Path, *, stop: Callable[[str], object] | None) -> list[str]:
    names = []
    for name, _ in _tar_files(path):
        names.append(name)
        if stop is not None and stop(name):
            break
    return names


def _tar_read(path: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """The bytes of every regular member whose name satisfies ``want``, in one streaming pass."""
    return {name: data for name, data in _tar_files(path, want) if data is not None}


# --------------------------------------------------------------------------------------------
# CIFAR python formats


def _cifar_files(path: Path, folder: str, wanted: tuple[str, ...]) -> dict[str, tuple[str, bytes]]:
    """``{base name: (display name, bytes)}`` of the official files, from a folder or an archive."""
    if path.is_dir():
        root = path / folder if (path / folder).is_dir() else path
        out = {}
        for base in wanted:
            f = root / base
            if not f.is_file():
                raise FileNotFoundError(f"missing CIFAR file: {f}")
            out[base] = (str(f), f.read_bytes())
        return out
    found = _tar_read(path, lambda n: n.rstrip("/").split("/")[-1] in wanted)
    out = {}
    for name, data in found.items():
        base = name.split("/")[-1]
        if base in out:
            raise ValueError(f"{path}: archive holds {base} twice ({out[base][0]} and {name})")
        out[base] = (f"{path}:{name}", data)
    for base in wanted:
        if base not in out:
            raise FileNotFoundError(f"missing CIFAR file: {base} in {path}")
    return out


def _key(d: dict, key: str, source: str):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise ValueError(f"{source}: missing key {key!r} (has {sorted(map(str, d))})")


def _as_dict(obj, source: str) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _decode_names(values, source: str) -> tuple[str, ...]:
    out = []
    for v in values:
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).decode("utf-8")
        if not isinstance(v, str):
            raise ValueError(f"{source}: class names must be strings, got {type(v).__name__}")
        out.append(v)
    return tuple(out)


def _cifar_batch(data: bytes, source: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _as_dict(safe_loads(data, source=source), source)
    pixels = np.asarray(_key(batch, "data", source))
    labels = np.asarray(_key(batch, label_key, source))
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != _CIFAR_PIXELS:
        raise ValueError(
            f"{source}: 'data' must be a (N, {_CIFAR_PIXELS}) uint8 array, got {pixels.shape} {pixels.dtype}"
        )
    if labels.ndim != 1 or len(labels) != len(pixels) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{source}: {len(pixels)} images but {label_key!r} has shape {labels.shape} ({labels.dtype})"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{source}: {label_key!r} must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # row-major CHW -> HWC
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _read_cifar10(path: Path, split: str):
    batches = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = _cifar_files(path, "cifar-10-batches-py", (*batches, "batches.meta"))
    meta_source, meta = files["batches.meta"]
    classes = _decode_names(_key(_as_dict(safe_loads(meta, source=meta_source), meta_source), "label_names", meta_source), meta_source)
    parts = [_cifar_batch(files[b][1], files[b][0], "labels", len(classes)) for b in batches]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), classes


def _read_cifar100(path: Path, split: str):
    files = _cifar_files(path, "cifar-100-python", (split, "meta"))
    meta_source, meta = files["meta"]
    classes = _decode_names(_key(_as_dict(safe_loads(meta, source=meta_source), meta_source), "fine_label_names", meta_source), meta_source)
    images, labels = _cifar_batch(files[split][1], files[split][0], "fine_labels", len(classes))
    return images, labels, classes


# --------------------------------------------------------------------------------------------
# Image folders


@dataclasses.dataclass(frozen=True)
class _Entry:
    split: str
    cls: str
    name: str  # file name
    key: str  # path (folder) or member name (archive)
    prefix: tuple[str, ...] = ()


def _parse_image_name(key: str) -> _Entry | None:
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-1].startswith("."):
        return None
    return _Entry(parts[-3], parts[-2], parts[-1], key, tuple(parts[:-3]))


def _folder_entries(path: Path, names: Iterable[str]) -> list[_Entry]:
    entries = [e for e in map(_parse_image_name, names) if e is not None]
    if not entries:
        raise ValueError(f"{path}: no images found in the layout <root>/<split>/<class>/*.{{png,jpg}}")
    prefixes = {e.prefix for e in entries}
    if len(prefixes) > 1:
        shown = sorted("/".join(p) or "." for p in prefixes)[:4]
        raise ValueError(f"{path}: images at several depths ({shown}); expected one <root>/<split>/<class>/ tree")
    return entries


def _order(entries: list[_Entry]) -> list[_Entry]:
    """Numeric-name order if every stem is a distinct integer, else class then name."""
    stems = [os.path.splitext(e.name)[0] for e in entries]
    if all(s.isdigit() for s in stems) and len(set(map(int, stems))) == len(stems):
        return [e for _, e in sorted(zip(map(int, stems), entries), key=lambda t: t[0])]
    return sorted(entries, key=lambda e: (e.cls, _natural(e.name)))


def _natural(name: str):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _normalize_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_geometry(data: bytes) -> tuple[int, int, int] | None:
    """``(height, width, components)`` from a JPEG's start-of-frame marker, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _JPEG_SOF:
            if i + 10 > n:
                return None
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big"), data[i + 9]
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _open_image(data: bytes, name: str):
    from PIL import Image

    geometry = _jpeg_geometry(data)
    if geometry is not None and geometry[2] == 3 and geometry[0] > 0 and geometry[1] > 0:
        # Colour JPEG: run Pillow's JPEG decoder directly with the arguments Image.open would
        # give it, skipping its Python marker parsing (1.6x faster on 32x32 images, same pixels).
        try:
            return Image.frombytes("RGB", (geometry[1], geometry[0]), data, "jpeg", "RGB", "")
        except Exception:  # noqa: BLE001 - fall back to the general path, which reports errors
            pass
    lower = name.lower()
    formats = ("JPEG",) if lower.endswith((".jpg", ".jpeg")) else ("PNG",) if lower.endswith(".png") else None
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Exception:  # noqa: BLE001 - a mislabelled file: let Pillow guess the format
        return Image.open(io.BytesIO(data))


def decode_image(data: bytes, name: str = "", size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode PNG/JPEG bytes to an (H, W, 3) uint8 array, resized (bilinear) to ``size`` if given."""
    from PIL import Image

    try:
        im = _open_image(data, name)
        if im.mode != "RGB":
            im = im.convert("RGB")
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for bad images
        raise ValueError(f"{name or 'image'}: cannot decode image ({type(err).__name__}: {err})") from None


def _decode_chunk(items: list[tuple[str, bytes | None]], size: tuple[int, int] | None) -> list[np.ndarray]:
    out = []
    for name, data in items:
        if data is None:
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError as err:
                raise ValueError(f"{name}: cannot read image ({err})") from None
        out.append(decode_image(data, name, size))
    return out


def _worker_main() -> None:
    """Decode worker: reads ``(items, size)`` requests on stdin, writes ``("ok", arrays)`` replies.

    Runs as ``python -c`` started by :class:`_Decoder`, so it never re-imports the caller's
    ``__main__`` (multiprocessing's spawn does) nor forks a process that runs JAX's threads.
    """
    import pickle

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            items, size = pickle.load(stdin)  # noqa: S301 - our own parent process, not a file
        except EOFError:
            return
        try:
            reply = ("ok", _decode_chunk(items, size))
        except Exception as err:  # noqa: BLE001 - reported by the parent
            reply = ("error", str(err))
        pickle.dump(reply, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


class _Decoder:
    """Decodes images in ``workers`` helper processes (in this process when ``workers <= 1``).

    ``add(key, data)`` queues one image (``data=None``: read the file ``key``); ``finish()`` returns
    ``{key: (H, W, 3) uint8}``. A thread per worker feeds it chunks, so reading the archive in this
    process overlaps with decoding in the workers.
    """

    CHUNK = 500

    def __init__(self, size, *, workers: int | None, progress: bool, total: int | None, desc: str,
                 min_parallel: int | None = None):
        from tqdm import tqdm

        self.size = size
        self.workers = min(os.cpu_count() or 1, 8) if workers is None else int(workers)
        self.bar = tqdm(
            total=total, desc=desc, unit="img", file=sys.stderr, disable=not progress, leave=False, delay=2.0
        )
        self.pending: list[tuple[str, bytes | None]] = []
        self.futures: list[tuple[list[str], concurrent.futures.Future]] = []
        self.out: dict[str, np.ndarray] = {}
        self.pool = None
        self.procs: list = []
        self.local = None
        self.min_parallel = _PARALLEL_MIN_IMAGES if min_parallel is None else min_parallel
        self.count = 0

    def add(self, key: str, data: bytes | None) -> None:
        self.pending.append((key, data))
        self.count += 1
        if self.count >= self.min_parallel or self.workers <= 1:
            while len(self.pending) >= self.CHUNK:
                self._flush(self.pending[: self.CHUNK])
                self.pending = self.pending[self.CHUNK :]

    def _flush(self, chunk) -> None:
        if not chunk:
            return
        if self.workers <= 1 or self.count < self.min_parallel:
            for i in range(0, len(chunk), self.CHUNK):
                part = chunk[i : i + self.CHUNK]
                self._store([k for k, _ in part], _decode_chunk(part, self.size))
            return
        if self.pool is None:
            import threading

            self.local = threading.local()
            self.pool = concurrent.futures.ThreadPoolExecutor(self.workers)
        self.futures.append(([k for k, _ in chunk], self.pool.submit(self._remote, chunk)))
        while self.futures and (self.futures[0][1].done() or len(self.futures) > 2 * self.workers):
            keys, fut = self.futures.pop(0)  # bounded queue: the archive is not read far ahead
            self._store(keys, fut.result())

    def _remote(self, chunk):
        import pickle
        import subprocess

        proc = getattr(self.local, "proc", None)
        if proc is None:
            root = str(Path(__file__).resolve().parents[2])
            code = "import sys; sys.path.insert(0, sys.argv[1]); from experiments.cifar.data import _worker_main; _worker_main()"
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-c", code, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            except OSError:  # no interpreter to start (embedded Python...): decode here instead
                return _decode_chunk(chunk, self.size)
            self.local.proc = proc
            self.procs.append(proc)
        try:
            pickle.dump((chunk, self.size), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            status, value = pickle.load(proc.stdout)  # noqa: S301 - our own child process
        except (BrokenPipeError, EOFError, OSError) as err:
            raise RuntimeError(f"image decoding worker died ({err}); try workers=1") from None
        if status != "ok":
            raise ValueError(value)
        return value

    def _store(self, keys, arrays) -> None:
        self.out.update(zip(keys, arrays))
        self.bar.update(len(keys))

    def finish(self) -> dict[str, np.ndarray]:
        try:
            self._flush(self.pending)
            self.pending = []
            for keys, fut in self.futures:
                self._store(keys, fut.result())
            self.futures = []
            return self.out
        finally:
            self.close()

    def close(self) -> None:
        if self.pool is not None:
            for _, fut in self.futures:
                fut.cancel()
            self.pool.shutdown(wait=True)
            self.pool = None
        for proc in self.procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                proc.kill()
        self.procs = []
        self.bar.close()


def _stack(arrays: list[np.ndarray], target: tuple[int, int], source: str) -> np.ndarray:
    if not arrays:
        raise ValueError(f"{source}: no images")
    if any(a.shape[:2] != target for a in arrays):
        from PIL import Image

        arrays = [
            a
            if a.shape[:2] == target
            else np.asarray(Image.fromarray(a).resize((target[1], target[0]), Image.Resampling.BILINEAR))
            for a in arrays
        ]
    return np.stack(arrays).astype(np.uint8, copy=False)


def _source_key(path: Path, names: list[str] | None, size: tuple[int, int] | None) -> str:
    """Cache key: the archive's size, mtime and the sha256 of its first MB (a folder: every file's stat)."""
    h = hashlib.sha256(f"clspec-folder-cache-v{CACHE_VERSION};size={size};".encode())
    if path.is_file():
        st = path.stat()
        h.update(f"{st.st_size};{st.st_mtime_ns};".encode())
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read(1 << 20)).digest())
    else:
        h.update(str(path.resolve()).encode())
        for name in sorted(names or []):
            st = os.stat(path / name)
            h.update(f"{name};{st.st_size};{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _cache_file(path: Path, key: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name)
    return cache_dir() / f"{stem}-{key}.npz"


def _write_cache(file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the .npz atomically: a temporary file in the same folder, then ``os.replace``."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(file) as f:
        np.savez(f, **arrays)


def _read_cache(file: Path, split: str, source: Path):
    """``(images, labels, classes)`` of ``split`` from the cache, or None when absent or unreadable."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            splits = [str(s) for s in z["splits"]]
            if split not in splits:
                raise ValueError(f"split {split!r} not in {source}; it has {splits}")
            images, labels = z[f"{split}__images"], z[f"{split}__labels"]
            classes = tuple(str(c) for c in z["classes"])
    except ValueError as err:
        if str(err).startswith(f"split {split!r} not in"):
            raise
        print(f"clspec: ignoring unreadable cache {file} ({err})", file=sys.stderr)
        return None
    except Exception as err:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
        print(f"clspec: ignoring unreadable cache {file} ({err})", file=sys.stderr)
        return None
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
        print(f"clspec: ignoring inconsistent cache {file}", file=sys.stderr)
        return None
    return images, labels.astype(np.int64), classes


def _load_folder(
    path: Path,
    split: str,
    *,
    limit: int | None,
    seed: int,
    size: tuple[int, int] | None,
    cache: bool,
    workers: int | None,
    progress: bool | None,
) -> Dataset:
    is_archive = path.is_file()
    dir_names = None if is_archive else _walk_names(path, stop=None)
    cache_file = _cache_file(path, _source_key(path, dir_names, size)) if cache else None
    if cache_file is not None:
        hit = _read_cache(cache_file, split, path)
        if hit is not None:
            return _finish(*hit, path, limit, seed)

    t0 = time.perf_counter()
    subset: np.ndarray | None = None  # positions in the split's order, when decoding a subset only
    if is_archive and (cache or limit is None):
        # One streaming pass: list every member and decode the wanted ones as they come.
        names: list[str] = []

        def wanted(name: str) -> bool:
            entry = _parse_image_name(name)
            return entry is not None and (cache or entry.split == split)

        decoder = _Decoder(size, workers=workers, progress=progress is not False, total=None, desc=f"decode {path.name}")
        try:
            for name, data in _tar_files(path, wanted):
                names.append(name)
                if data is not None:
                    decoder.add(name, data)
            decoded = decoder.finish()
        finally:
            decoder.close()
        entries = _folder_entries(path, names)
    else:
        blobs: dict[str, bytes] = {}
        if is_archive:  # one pass: keep the split's encoded bytes, decode only the subset below
            names = []

            def in_split(name: str) -> bool:
                entry = _parse_image_name(name)
                return entry is not None and entry.split == split

            for name, data in _tar_files(path, in_split):
                names.append(name)
                if data is not None:
                    blobs[name] = data
            entries = _folder_entries(path, names)
        else:
            entries = [dataclasses.replace(e, key=str(path / e.key)) for e in _folder_entries(path, dir_names)]
        splits = sorted({e.split for e in entries})
        if split not in splits:
            raise ValueError(f"split {split!r} not in {path}; it has {splits}")
        wanted_entries = [e for e in entries if cache or e.split == split]
        if limit is not None and not cache:
            index = {c: i for i, c in enumerate(sorted({e.cls for e in entries}))}
            ordered = _order(wanted_entries)
            labels_full = np.array([index[e.cls] for e in ordered])
            keep_full = stratified_subset(labels_full, limit, seed=seed)
            subset = np.union1d(keep_full, [0])  # the split's first image fixes the size
            wanted_entries = [ordered[i] for i in subset]
        decoder = _Decoder(
            size, workers=workers, progress=progress is not False, total=len(wanted_entries), desc=f"decode {path.name}"
        )
        try:
            for e in wanted_entries:
                decoder.add(e.key, blobs[e.key] if is_archive else None)
            blobs.clear()
            decoded = decoder.finish()
        finally:
            decoder.close()

    splits = sorted({e.split for e in entries})
    if split not in splits:
        raise ValueError(f"split {split!r} not in {path}; it has {splits}")
    classes = tuple(sorted({e.cls for e in entries}))
    class_index = {c: i for i, c in enumerate(classes)}
    arrays, labels_of = {}, {}
    for s in (splits if cache else [split]):
        ordered = _order([e for e in entries if e.split == s])
        if s == split and subset is not None:
            ordered = [ordered[i] for i in subset]
        missing = [e.key for e in ordered if e.key not in decoded]
        if missing:
            raise ValueError(f"{path}: could not read {missing[0]}")
        first = decoded[ordered[0].key]
        arrays[s] = _stack([decoded[e.key] for e in ordered], size or first.shape[:2], f"{path} [{s}]")
        labels_of[s] = np.array([class_index[e.cls] for e in ordered], dtype=np.int64)
    decoded.clear()
    elapsed = time.perf_counter() - t0

    if cache_file is not None:
        payload = {"classes": np.array(classes), "splits": np.array(splits)}
        for s in splits:
            payload[f"{s}__images"] = arrays[s]
            payload[f"{s}__labels"] = labels_of[s]
        try:
            _write_cache(cache_file, payload)
            if len(entries) >= _PROGRESS_MIN_IMAGES and progress is not False:
                print(f"clspec: decoded {len(entries)} images of {path} in {elapsed:.1f} s; cached in {cache_file}",
                      file=sys.stderr)
        except OSError as err:
            print(f"clspec: could not write the cache {cache_file} ({err})", file=sys.stderr)
    if subset is None:
        return _finish(arrays[split], labels_of[split], classes, path, limit, seed)
    rows = np.searchsorted(subset, keep_full)
    return Dataset(np.ascontiguousarray(arrays[split][rows]), labels_of[split][rows], classes, str(path), keep_full)


def _finish(images, labels, classes, path, limit, seed) -> Dataset:
    if limit is None:
        return Dataset(images, labels, classes, str(path), np.arange(len(labels), dtype=np.int64))
    keep = stratified_subset(labels, limit, seed=seed)
    return Dataset(np.ascontiguousarray(images[keep]), labels[keep], classes, str(path), keep)


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


if __name__ == "__main__":
    sys.exit(main())
