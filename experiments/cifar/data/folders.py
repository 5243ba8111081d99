"""Image folders ``<root>/<split>/<class>/*.{png,jpg,jpeg}``, as a folder or a tar archive.

Classes are the sorted class-folder names over all splits. Within a split, when every file name
is a distinct integer (``00000.jpg``...) the images come in the order of that integer (for the
shared CIFAR-10 copy this is the official training order, so CIFAR-10N labels line up index for
index); otherwise by class, then file name. Images whose size differs from the split's first image
(or from ``size=``) are resized (bilinear). Helper processes decode in parallel; the decoded arrays
of every split go to the cache (:mod:`experiments.cifar.data.cache`).

Whole load path of the shared copy (``python -m experiments.cifar.data``): a warm load looks up the
archive's content hash (remembered by path, size, mtime and inode) and reads the cache; a cold one
reads the archive once with :mod:`tarfile` while the helpers decode (measured in
:func:`experiments.cifar.data.formats._tar_files`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from experiments.cifar.data import cache as cache_lib
from experiments.cifar.data.dataset import IMAGE_SUFFIXES, Dataset, stratified_subset
from experiments.cifar.data.formats import _tar_files, _walk_names

_PARALLEL_MIN_IMAGES = 4000  # below this a process pool costs more than it saves
_PROGRESS_MIN_IMAGES = 5000


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
            root = str(Path(__file__).resolve().parents[3])
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
    cache_file = cache_lib.cache_file(cache_lib.cache_key(path, dir_names, size)) if cache else None
    if cache_file is not None:
        hit = cache_lib.read_cache(cache_file, split, path)
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
            cache_lib.write_cache(cache_file, payload, path)
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

