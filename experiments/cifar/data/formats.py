"""Reading what users download: the CIFAR-10/100 python pickles, folders and tar archives.

Archives are read with :mod:`tarfile` in one forward pass; pickles go through
:mod:`experiments.cifar.safe_pickle`. A missing file raises ``FileNotFoundError`` and a truncated or
inconsistent one ``ValueError``, both naming the file.
"""

from __future__ import annotations

import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.cifar.data.dataset import IMAGE_SUFFIXES
from experiments.cifar.safe_pickle import safe_loads

_CIFAR_PIXELS = 3 * 32 * 32


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


_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _tar_files(path: Path, want: Callable[[str], bool] = lambda name: False):
    """Every regular file of a tar archive, in stored order: ``(name, bytes if want(name) else None)``.

    :mod:`tarfile` in stream mode (``"r|*"``: any compression, one forward pass). It replaced a
    hand-written reader after a measurement of the whole cold load of the shared CIFAR-10 copy
    (``load_dataset(cifar10-jpg.tar.gz, "train")`` without a cache: read the archive, decode the
    60,000 JPEGs in helper processes, write the cache), four interleaved pairs on the shared 2-core
    machine: 6.4-6.8 s of CPU with tarfile against 5.1-5.4 s (+1.0-1.7 s, once per dataset; every
    later load reads the cache in 0.1-0.5 s and never opens the archive). Wall times, 58-94 s
    against 43-72 s, were set by the other jobs on the machine (differences +1.5 to +36 s, not
    reproducible). The reading pass alone: 1.5 s of CPU against 0.8 s.
    A truncated or corrupt archive raises ``ValueError`` naming the file.
    """
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if not member.isreg():
                    continue  # directories, links, devices
                if want(member.name):
                    data = archive.extractfile(member).read()
                    if len(data) != member.size:
                        raise ValueError(f"{path}: truncated archive (ended inside {member.name})")
                    yield member.name, data
                else:
                    yield member.name, None
    except tarfile.ReadError as err:
        text = str(err)
        if "end of data" in text:
            raise ValueError(f"{path}: truncated archive ({text})") from None
        if "checksum" in text or "invalid header" in text or "empty file" in text:
            raise ValueError(f"{path}: not a tar archive or corrupt ({text})") from None
        raise ValueError(f"{path}: truncated or corrupt archive ({text})") from None
    except _TAR_ERRORS as err:
        raise ValueError(f"{path}: truncated or corrupt archive ({type(err).__name__}: {err})") from None


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

