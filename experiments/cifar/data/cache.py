"""The cache of decoded image folders, keyed by content and bounded; ``clspec cache list|clear``.

Decoding the 60,000 JPEGs of the shared CIFAR-10 copy takes tens of seconds, so the decoded arrays
of every split are kept as one ``.npz`` in :func:`cache_dir`. The key is the sha256 of the source's
*content* (an archive's bytes; a folder's file names and bytes), so a copy, a rename or a ``touch``
of the same data reuses the entry and changed data gets a new one (an archive's hash is remembered
by path, size, mtime and inode, so a warm load does not re-read it). The cache is bounded by
``$CLSPEC_CACHE_MAX_MB`` (default :data:`DEFAULT_MAX_MB`): after a write the least recently used
entries are removed until it fits. ``clspec cache list`` shows the entries, ``clspec cache clear``
removes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from experiments.common.runs import atomic_write_text, atomic_writer, user_cache_dir

CACHE_VERSION = 2  # 2: keyed by content (1 was keyed by size and mtime)
DEFAULT_MAX_MB = 4096  # about 20 decoded CIFAR-sized datasets
_PREFIX = "folder-"
_memo: dict[str, str] = {}
_INDEXED_BYTES = 1 << 20  # archives at least this big have their hash remembered on disk


def cache_dir() -> Path:
    """Where decoded image folders are cached: clspec's cache folder (``$CLSPEC_CACHE``, else ``~/.cache/clspec``)."""
    return user_cache_dir()


def max_bytes() -> int:
    text = os.environ.get("CLSPEC_CACHE_MAX_MB")
    try:
        mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        raise ValueError(f"CLSPEC_CACHE_MAX_MB must be a number of megabytes, got {text!r}") from None
    if not mb >= 0:
        raise ValueError(f"CLSPEC_CACHE_MAX_MB must be >= 0, got {text!r}")
    return int(mb * 2**20)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


_INDEX = "sha256-index.json"
_INDEX_MAX = 512


def _index_file() -> Path:
    return cache_dir() / _INDEX


def _read_index() -> dict:
    try:
        data = json.loads(_index_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def source_sha256(path: Path | str, names: list[str] | None = None) -> str:
    """sha256 of a dataset's content: a file's bytes, or a folder's sorted relative names and bytes.

    Remembered per (path, size, mtime, inode) of each archive, in the process and in
    ``sha256-index.json`` of the cache folder, so a warm load does not re-read a 185 MB archive;
    a copy, or a changed file, is hashed again (once).
    """
    path = Path(path)
    if path.is_file():
        st = path.stat()
        memo = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        if memo not in _memo:
            index = _read_index() if st.st_size >= _INDEXED_BYTES else {}
            if memo in index:
                _memo[memo] = index[memo]
            else:
                _memo[memo] = _file_sha256(path)
                if st.st_size >= _INDEXED_BYTES:
                    index[memo] = _memo[memo]
                    try:
                        atomic_write_text(_index_file(), json.dumps(dict(list(index.items())[-_INDEX_MAX:])))
                    except OSError:
                        pass  # a read-only cache still works, it just hashes again
        return _memo[memo]
    if names is None:
        names = sorted(
            os.path.relpath(os.path.join(d, f), path).replace(os.sep, "/")
            for d, _, files in os.walk(path) for f in files
        )
    h = hashlib.sha256(b"clspec-folder-content-v1\n")
    for name in sorted(names):
        h.update(f"{name}\n".encode())
        h.update(source_sha256(path / name).encode())
    return h.hexdigest()


def cache_key(path: Path, names: list[str] | None, size: tuple[int, int] | None) -> str:
    """The cache key of a decoded folder: its content hash and the requested image size."""
    h = hashlib.sha256(f"clspec-folder-cache-v{CACHE_VERSION};size={size};".encode())
    h.update(source_sha256(path, names).encode())
    return h.hexdigest()[:32]


def cache_file(key: str) -> Path:
    return cache_dir() / f"{_PREFIX}{key}.npz"


def write_cache(file: Path, arrays: dict[str, np.ndarray], source: Path) -> None:
    """Write the .npz atomically, then shrink the cache to its bound (never removing ``file``)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(file) as f:
        np.savez(f, source=np.array(str(source)), **arrays)
    evict(keep=file)


def read_cache(file: Path, split: str, source: Path):
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
    try:
        os.utime(file)  # last use, for the least-recently-used bound
    except OSError:
        pass
    return images, labels.astype(np.int64), classes


def entries() -> list[dict]:
    """The cache's entries, least recently used first: file, bytes, last use, source."""
    root = cache_dir()
    if not root.is_dir():
        return []
    out = []
    for f in root.glob("*.npz"):  # entries of older clspec versions too (keyed by mtime, named <archive>-<key>.npz)
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        try:
            with np.load(f, allow_pickle=False) as z:
                source = str(z["source"]) if "source" in z.files else "an entry of an older clspec version"
        except Exception:  # noqa: BLE001 - a damaged entry is still listed (and cleared)
            source = "unreadable"
        out.append({"file": f, "bytes": st.st_size, "used": st.st_mtime, "source": source})
    return sorted(out, key=lambda e: e["used"])


def evict(keep: Path | None = None) -> list[Path]:
    """Remove least recently used entries until the cache fits :func:`max_bytes`; return them."""
    bound, removed = max_bytes(), []
    items = entries()
    total = sum(e["bytes"] for e in items)
    for e in items:
        if total <= bound:
            break
        if keep is not None and e["file"] == keep:
            continue
        try:
            e["file"].unlink()
        except FileNotFoundError:
            pass
        total -= e["bytes"]
        removed.append(e["file"])
    return removed


def clear() -> list[Path]:
    """Remove every entry (and temporary files a killed write left)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    removed = []
    for f in [*root.glob("*.npz"), *root.glob(f".{_PREFIX}*.tmp"), root / _INDEX]:
        if not f.exists():
            continue
        f.unlink(missing_ok=True)
        removed.append(f)
    return removed
