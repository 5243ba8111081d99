"""experiments.cifar.data and safe_pickle: loaders on generated files in the official formats, on
image folders, on a slice of the shared CIFAR-10 copy, CIFAR-N label files, and the restricted
unpickler against a crafted pickle."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.cifar import data as cdata
from experiments.cifar.data import Dataset, load_cifar_n, load_dataset, load_label_file, stratified_subset
from experiments.cifar.safe_pickle import safe_loads

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
JPG_TAR = SHARED / "cifar10-jpg.tar.gz"
C10N = SHARED / "CIFAR-10_human.pt"
C100N = SHARED / "CIFAR-100_human.pt"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data folder {SHARED} is absent")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test writes its decoded-image cache into its own folder, never ~/.cache."""
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------
# Files in the official CIFAR python formats


class _Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` as Python 2 ``str`` (BINSTRING opcodes), as the official CIFAR files were written."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump(path: Path, obj, *, py2: bool = False) -> None:
    """A protocol-2 pickle (the official batches are); ``py2``: Python 2 strings and module names."""
    if not py2:
        path.write_bytes(pickle.dumps(obj, protocol=2))
        return
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))


def _rows(images_hwc: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> the official (N, 3072) row-major CHW rows."""
    return images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)


def make_cifar10(root: Path, *, per_batch: int = 12, seed: int = 0) -> dict:
    """A small cifar-10-batches-py folder, pickled as Python 2 wrote the official one; returns the expected arrays."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    _dump(folder / "batches.meta", meta, py2=True)
    expected = {}
    for split, batches in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        imgs, labs = [], []
        for b in batches:
            x = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
            y = rng.integers(0, 10, size=per_batch).tolist()
            batch = {b"batch_label": b.encode(), b"labels": y, b"data": _rows(x), b"filenames": [b"x.png"] * per_batch}
            _dump(folder / b, batch, py2=True)
            imgs.append(x)
            labs += y
        expected[split] = (np.concatenate(imgs), np.array(labs))
    expected["classes"] = tuple(n.decode() for n in names)
    return expected


def make_cifar100(root: Path, *, n: int = 30, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [f"class{i:02d}" for i in range(100)]
    _dump(folder / "meta", {"fine_label_names": fine, "coarse_label_names": [f"super{i}" for i in range(20)]})
    expected = {}
    for split in ("train", "test"):
        x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 100, size=n)
        _dump(folder / split, {b"data": _rows(x), b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist()})
        expected[split] = (x, y)
    expected["classes"] = tuple(fine)
    return expected


def _tgz(src: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(src, arcname=src.name)
    return out


@pytest.fixture(scope="module")
def cifar10_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    expected = make_cifar10(root / "unpacked")
    return root, expected, _tgz(root / "unpacked" / "cifar-10-batches-py", root / "cifar-10-python.tar.gz")


@pytest.fixture(scope="module")
def cifar100_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("c100")
    expected = make_cifar100(root / "unpacked")
    return root, expected, _tgz(root / "unpacked" / "cifar-100-python", root / "cifar-100-python.tar.gz")


@pytest.mark.parametrize("form", ["folder", "parent", "tgz"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_pixels_and_labels_round_trip(cifar10_files, form, split):
    root, expected, tgz = cifar10_files
    path = {"folder": root / "unpacked" / "cifar-10-batches-py", "parent": root / "unpacked", "tgz": tgz}[form]
    assert cdata.detect_kind(path) == "cifar10"
    ds = load_dataset(path, split)
    x, y = expected[split]
    assert ds.images.dtype == np.uint8 and ds.images.shape == x.shape
    np.testing.assert_array_equal(ds.images, x)  # pixel-exact, CHW rows -> HWC
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.labels.dtype == np.int64
    assert ds.classes == expected["classes"]
    np.testing.assert_array_equal(ds.indices, np.arange(len(y)))


@pytest.mark.parametrize("form", ["folder", "tgz"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar100_pixels_and_fine_labels_round_trip(cifar100_files, form, split):
    root, expected, tgz = cifar100_files
    path = root / "unpacked" / "cifar-100-python" if form == "folder" else tgz
    assert cdata.detect_kind(path) == "cifar100"
    ds = load_dataset(path, split)
    x, y = expected[split]
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.classes == expected["classes"] and ds.num_classes == 100


def test_cifar_limit_is_stratified_ordered_and_seeded(cifar10_files):
    root, expected, _ = cifar10_files
    path = root / "unpacked"
    full = load_dataset(path, "train")
    a = load_dataset(path, "train", limit=20, seed=3)
    b = load_dataset(path, "train", limit=20, seed=3)
    c = load_dataset(path, "train", limit=20, seed=4)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert np.all(np.diff(a.indices) > 0)  # official order kept
    np.testing.assert_array_equal(a.images, full.images[a.indices])
    np.testing.assert_array_equal(a.labels, full.labels[a.indices])
    counts = np.bincount(a.labels, minlength=10)
    available = np.bincount(full.labels, minlength=10)
    # balanced: no class with room left has two fewer than another class
    assert counts.sum() == 20 and np.all(counts <= available)
    short = counts < available
    assert counts[short].min(initial=99) >= counts.max() - 1


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_missing_file_is_named(tmp_path, kind):
    if kind == "cifar10":
        make_cifar10(tmp_path)
        victim = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    else:
        make_cifar100(tmp_path)
        victim = tmp_path / "cifar-100-python" / "meta"
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        load_dataset(tmp_path, "train", kind=kind)


def test_cifar_truncated_batch_is_named(tmp_path):
    make_cifar10(tmp_path)
    victim = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    victim.write_bytes(victim.read_bytes()[:5000])
    with pytest.raises(ValueError, match="data_batch_2.*(truncated|corrupt)"):
        load_dataset(tmp_path, "train")


def test_cifar_truncated_archive_is_named(cifar10_files, tmp_path):
    _, _, tgz = cifar10_files
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.tar.gz"):
        load_dataset(cut, "train", kind="cifar10")


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}, "4 images but 'labels'"),
        ({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0, 1, 2, 3]}, r"\(N, 3072\) uint8"),
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0, 1, 2, 3]}, r"\(N, 3072\) uint8"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, r"must be in \[0, 10\)"),
        ({b"labels": [0]}, "missing key 'data'"),
        ([1, 2, 3], "expected a pickled dict"),
    ],
)
def test_cifar_mismatched_batch_is_named(tmp_path, batch, message):
    make_cifar10(tmp_path)
    _dump(tmp_path / "cifar-10-batches-py" / "test_batch", batch)
    with pytest.raises(ValueError, match=f"test_batch.*{message}"):
        load_dataset(tmp_path, "test")


def test_bad_arguments(tmp_path, cifar10_files):
    root, _, _ = cifar10_files
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_dataset(tmp_path / "does-not-exist", "train")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_dataset(root / "unpacked", "train", kind="imagenet")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset(root / "unpacked", "val")
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        load_dataset(root / "unpacked", "train", limit=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot tell what dataset"):
        load_dataset(tmp_path / "empty", "train")


# ---------------------------------------------------------------------------------------------
# Image folders


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _smooth_image(rng, h: int, w: int) -> np.ndarray:
    """A random colour plus gradients: JPEG keeps such images to within a few levels."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(40, 200, size=3)
    slope = rng.uniform(-4, 4, size=(2, 3))
    arr = base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_folder(root: Path, *, numeric: bool, seed: int = 0, mixed: bool = True) -> dict:
    """<root>/data/<split>/<class>/<file>: PNG and JPEG, some at another resolution.

    Returns ``{split: [(class, file name, array as written), ...]}`` in the expected order.
    """
    rng = np.random.default_rng(seed)
    classes = ["cat", "ant", "bee"]  # sorted -> ant, bee, cat
    layout: dict[str, list] = {}
    counter = 0
    for split, per_class in (("train", 4), ("test", 2)):
        rows = []
        for c in classes:
            for j in range(per_class):
                h, w = (12, 10) if (mixed and (j + counter) % 3 == 2) else (8, 8)
                arr = _smooth_image(rng, h, w)
                ext = ".png" if j % 2 == 0 else ".jpg"
                name = f"{counter:03d}{ext}" if numeric else f"img{j}{ext}"
                counter += 1
                d = root / "data" / split / c
                d.mkdir(parents=True, exist_ok=True)
                (d / name).write_bytes(_png(arr) if ext == ".png" else _jpg(arr))
                rows.append((c, name, arr))
        if numeric:
            rows.sort(key=lambda r: int(r[1][:3]))
        else:
            rows.sort(key=lambda r: (r[0], r[1]))
        layout[split] = rows
    return layout


def _tgz_folder(root: Path) -> Path:
    out = root / "images.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        tf.add(root / "data", arcname="data")
    return out


@pytest.fixture(scope="module")
def folder_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    layout = make_folder(root, numeric=True)
    return root, layout, _tgz_folder(root)


def _check_folder(ds: Dataset, rows, size):
    classes = ("ant", "bee", "cat")
    assert ds.classes == classes
    np.testing.assert_array_equal(ds.labels, [classes.index(c) for c, _, _ in rows])
    assert ds.images.shape == (len(rows), *size, 3) and ds.images.dtype == np.uint8
    for img, (_, name, arr) in zip(ds.images, rows):
        if arr.shape[:2] != size:
            continue
        if name.endswith(".png"):
            np.testing.assert_array_equal(img, arr)  # lossless: pixel-exact
        else:
            assert np.abs(img.astype(int) - arr.astype(int)).mean() < 4  # JPEG q95, smooth image


@pytest.mark.parametrize("form", ["folder", "tgz"])
@pytest.mark.parametrize("cache", [True, False])
def test_image_folder_png_jpg_mixed_resolution(folder_files, form, cache):
    root, layout, tgz = folder_files
    path = root / "data" if form == "folder" else tgz
    assert cdata.detect_kind(path) == "folder"
    for split in ("train", "test"):
        ds = load_dataset(path, split, cache=cache)
        first = layout[split][0][2].shape[:2]
        _check_folder(ds, layout[split], first)  # resized to the first image's size
        assert any(arr.shape[:2] != first for _, _, arr in layout[split])  # the test has mixed sizes


def test_image_folder_size_argument_resizes_everything(folder_files):
    root, layout, _ = folder_files
    ds = load_dataset(root / "data", "train", size=(6, 5), cache=False)
    assert ds.images.shape == (len(layout["train"]), 6, 5, 3)
    with pytest.raises(ValueError, match="size must be"):
        load_dataset(root / "data", "train", size=(0, 4))


def test_image_folder_non_numeric_names_order_by_class_then_name(tmp_path):
    layout = make_folder(tmp_path, numeric=False, mixed=False)
    ds = load_dataset(tmp_path / "data", "train", cache=False)
    _check_folder(ds, layout["train"], (8, 8))


def test_image_folder_limit_same_with_and_without_cache(folder_files):
    root, layout, tgz = folder_files
    for path in (root / "data", tgz):
        a = load_dataset(path, "train", limit=6, seed=1, cache=False)
        b = load_dataset(path, "train", limit=6, seed=1, cache=True)
        full = load_dataset(path, "train", cache=True)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.images, full.images[a.indices])
        assert np.bincount(a.labels).tolist() == [2, 2, 2]


def test_image_folder_cache_is_keyed_by_content_reused_and_invalidated(folder_files, tmp_path, monkeypatch):
    from experiments.cifar.data import folders

    root, _, tgz = folder_files
    archive = tmp_path / "copy.tar.gz"
    archive.write_bytes(tgz.read_bytes())
    first = load_dataset(archive, "train")
    cached = list((tmp_path / "cache").glob("folder-*.npz"))
    assert len(cached) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(folders, "_Decoder", no_decoding)
    again = load_dataset(archive, "test")  # both splits come from the one cache file
    np.testing.assert_array_equal(load_dataset(archive, "train").images, first.images)
    assert len(again) == 6
    with pytest.raises(ValueError, match=r"split 'val' not in .*\['test', 'train'\]"):
        load_dataset(archive, "val")  # answered from the cache as well
    os.utime(archive, ns=(1, 1))  # same content, new mtime: still the same entry
    second = tmp_path / "second copy.tar.gz"  # a copy of the same bytes: no second entry
    second.write_bytes(archive.read_bytes())
    load_dataset(second, "train")
    assert list((tmp_path / "cache").glob("folder-*.npz")) == cached
    changed = bytearray(archive.read_bytes())  # other content gets a new key
    raw = __import__("gzip").decompress(bytes(changed))
    archive.write_bytes(__import__("gzip").compress(raw + b"\0" * 1024))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(archive, "train")


def test_cache_is_bounded_and_can_be_listed_and_cleared(folder_files, tmp_path, monkeypatch, capsys):
    from experiments.cifar.data import cache
    from experiments.cli import main

    root, _, tgz = folder_files
    load_dataset(tgz, "train")
    (entry,) = cache.entries()
    assert entry["source"] == str(tgz)
    other = tmp_path / "other.tar.gz"
    other.write_bytes(__import__("gzip").compress(__import__("gzip").decompress(tgz.read_bytes()) + b"\0" * 512))
    os.utime(entry["file"], (1, 1))  # the first entry is the least recently used
    monkeypatch.setenv("CLSPEC_CACHE_MAX_MB", str(entry["bytes"] * 1.5 / 2**20))  # room for one entry
    load_dataset(other, "train")
    left = cache.entries()
    assert [e["source"] for e in left] == [str(other)]  # the older one was evicted, the new one kept
    legacy = tmp_path / "cache" / "cifar10-jpg.tar.gz-0123456789abcdef01234567.npz"  # keyed by mtime (v1)
    legacy.write_bytes(entry["file"].read_bytes() if entry["file"].exists() else b"")
    assert main(["cache", "list"]) == 0
    assert "2 entries" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert cache.entries() == []


def test_image_folder_cache_survives_damage(folder_files, tmp_path):
    _, _, tgz = folder_files
    good = load_dataset(tgz, "train")
    (cache,) = (tmp_path / "cache").glob("folder-*.npz")
    cache.write_bytes(b"not an npz")
    again = load_dataset(tgz, "train")  # rebuilt, not trusted
    np.testing.assert_array_equal(again.images, good.images)


def test_parallel_decoding_matches_serial(folder_files, monkeypatch):
    root, _, tgz = folder_files
    serial = load_dataset(tgz, "train", cache=False, workers=1)
    from experiments.cifar.data import folders

    monkeypatch.setattr(folders, "_PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(cdata._Decoder, "CHUNK", 3)
    remote_calls = []
    original = cdata._Decoder._remote

    def counting(self, chunk):
        remote_calls.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(cdata._Decoder, "_remote", counting)
    parallel = load_dataset(tgz, "train", cache=False, workers=2)
    assert sum(remote_calls) == len(serial) and len(remote_calls) >= 2  # decoded in the helper processes
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.labels, serial.labels)


def test_image_folder_errors(folder_files, tmp_path):
    root, _, _ = folder_files
    with pytest.raises(ValueError, match=r"split 'val' not in .*\['test', 'train'\]"):
        load_dataset(root / "data", "val", kind="folder")
    bad = tmp_path / "bad" / "train" / "cat"
    bad.mkdir(parents=True)
    (bad / "0.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="0.png: cannot decode"):
        load_dataset(tmp_path / "bad", "train", cache=False)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(ValueError, match="no images found"):
        load_dataset(tmp_path / "flat", "train", kind="folder")


def test_shared_data_dir_is_next_to_the_repository():
    assert cdata.shared_data_dir() == SHARED


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_reader_matches_tarfile(tmp_path, fmt, mode):
    """The streaming tar reader gives tarfile's regular files, names and bytes, in every format."""
    rng = np.random.default_rng(0)
    deep = "/".join(["d" * 40] * 4)  # 163 characters: ustar prefix, GNU 'L' or pax 'path'
    files = {
        "root/train/cat/0.png": rng.bytes(700),
        f"root/{deep}/x.bin": rng.bytes(1024),  # exactly two blocks
        "root/test/dog/1.jpg": b"",
        "root/ünï/é.png": rng.bytes(3),
    }
    if fmt != tarfile.USTAR_FORMAT:
        files["root/" + "n" * 120 + ".png"] = rng.bytes(5)  # a long base name: GNU 'L' or pax only
    out = tmp_path / "a.tar"
    with tarfile.open(out, mode, format=fmt) as tf:
        d = tarfile.TarInfo("root/train")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("root/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "root/train/cat/0.png"
        tf.addfile(link)
    got = list(cdata._tar_files(out, lambda n: True))
    assert got == list(files.items())
    assert [n for n, b in cdata._tar_files(out)] == list(files) and all(b is None for _, b in cdata._tar_files(out))


def test_tar_reader_errors(tmp_path, folder_files):
    _, _, tgz = folder_files
    raw = tmp_path / "raw.tar"
    import gzip

    raw.write_bytes(gzip.decompress(tgz.read_bytes()))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(raw.read_bytes()[:1300])
    with pytest.raises(ValueError, match="cut.tar: truncated"):
        list(cdata._tar_files(cut, lambda n: True))
    bad = bytearray(raw.read_bytes())
    bad[0] ^= 0xFF  # the first header's name, so its checksum no longer matches
    (tmp_path / "bad.tar").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="bad.tar: not a tar archive or corrupt"):
        list(cdata._tar_files(tmp_path / "bad.tar"))
    (tmp_path / "junk.tar.gz").write_bytes(b"\x1f\x8b" + b"junk" * 100)
    with pytest.raises(ValueError, match="junk.tar.gz: truncated or corrupt archive"):
        load_dataset(tmp_path / "junk.tar.gz", "train")


@pytest.mark.parametrize(
    "mode, options",
    [
        ("RGB", {}),
        ("RGB", {"progressive": True}),
        ("RGB", {"subsampling": 0, "quality": 90}),
        ("RGB", {"subsampling": 2, "optimize": True}),
        ("L", {}),
        ("CMYK", {}),
    ],
)
def test_decode_image_matches_pillow_open(mode, options):
    """The direct-decoder path for colour JPEGs gives Image.open's pixels; other JPEGs fall back."""
    rng = np.random.default_rng(1)
    arr = _smooth_image(rng, 13, 17)
    im = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", **options)
    data = buf.getvalue()
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(cdata.decode_image(data, "a.jpg"), expected)
    assert (cdata._jpeg_geometry(data) or (0, 0, 0))[:2] == (13, 17)
    with pytest.raises(ValueError, match="b.jpg: cannot decode image"):
        cdata.decode_image(data[: len(data) // 3], "b.jpg")


def test_stratified_subset_properties():
    labels = np.repeat(np.arange(4), [50, 3, 40, 7])
    keep = stratified_subset(labels, 40, seed=0)
    counts = np.bincount(labels[keep], minlength=4)
    assert len(keep) == 40 and len(np.unique(keep)) == 40
    assert counts[1] == 3 and counts[3] == 7  # small classes give all they have
    assert abs(int(counts[0]) - int(counts[2])) <= 1  # the rest is split evenly
    np.testing.assert_array_equal(stratified_subset(labels, 500, seed=0), np.arange(100))


# ---------------------------------------------------------------------------------------------
# The restricted unpickler


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Exploit(marker)}, protocol=2)
    assert pickle.loads(payload) == {b"data": 0} and marker.exists()  # the payload really runs code...
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match=r"evil.pkl: forbidden global (posix|os)\.system") as err:
        safe_loads(payload, source="evil.pkl")
    assert isinstance(err.value, ValueError)  # so the command line reports it in one line, exit 2
    assert not marker.exists()  # ...and the restricted unpickler never called it


def test_crafted_pickle_in_a_cifar_batch_and_a_pt_file(tmp_path):
    marker = tmp_path / "pwned"
    make_cifar10(tmp_path)
    _dump(tmp_path / "cifar-10-batches-py" / "data_batch_1", {b"data": _Exploit(marker), b"labels": []})
    with pytest.raises(pickle.UnpicklingError, match="data_batch_1: forbidden global"):
        load_dataset(tmp_path, "train")
    pt = tmp_path / "evil.pt"
    with zipfile.ZipFile(pt, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"clean_label": _Exploit(marker)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="evil.pt: forbidden global"):
        load_cifar_n(pt, "clean")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_loads_admits_numpy_arrays_and_containers(protocol):
    obj = {
        b"data": np.arange(24, dtype=np.uint8).reshape(2, 12),
        "f": np.linspace(0, 1, 5),
        "labels": [1, 2, 3],
        "t": (1.5, None, True, "s", b"b"),
        "set": {1, 2},
        "scalar": np.int64(7),
    }
    out = safe_loads(pickle.dumps(obj, protocol=protocol))
    assert out.keys() == obj.keys()
    np.testing.assert_array_equal(out[b"data"], obj[b"data"])
    np.testing.assert_array_equal(out["f"], obj["f"])
    assert out["labels"] == obj["labels"] and out["t"] == obj["t"] and out["set"] == obj["set"]
    assert out["scalar"] == 7


@pytest.mark.parametrize(
    "payload, message",
    [
        (pickle.dumps(np.array([1, "x"], dtype=object), protocol=2), "object dtype"),
        (pickle.dumps(Path("x"), protocol=2), "forbidden global pathlib"),
        (b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R.", "forbidden global builtins.eval"),
        (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.", "only latin-1"),
        (b"\x80\x02X\x01\x00\x00\x00xQ.", "external storage"),  # torch-style persistent id
    ],
)
def test_safe_loads_refuses(payload, message):
    with pytest.raises(pickle.UnpicklingError, match=message):
        safe_loads(payload, source="f.pkl")


# ---------------------------------------------------------------------------------------------
# CIFAR-N label files and the shared CIFAR-10 copy


def _make_pt(path: Path, arrays: dict, folder: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{folder}/data.pkl", pickle.dumps(arrays, protocol=2))
        z.writestr(f"{folder}/version", "3\n")
    return path


def test_cifar_n_generated_file(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"clean_label": rng.integers(0, 10, 50), "aggre_label": rng.integers(0, 10, 50)}
    pt = _make_pt(tmp_path / "c.pt", arrays, folder="c")
    np.testing.assert_array_equal(load_cifar_n(pt, "aggre"), arrays["aggre_label"])
    np.testing.assert_array_equal(load_cifar_n(pt, "clean_label"), arrays["clean_label"])
    with pytest.raises(ValueError, match="variant 'worse' not in"):
        load_cifar_n(pt, "worse")
    bad = _make_pt(tmp_path / "bad.pt", {"clean_label": np.zeros(5, np.int64), "aggre_label": np.zeros(4, np.int64)})
    with pytest.raises(ValueError, match="bad.pt: label arrays differ in length"):
        load_cifar_n(bad, "aggre")
    (tmp_path / "trunc.pt").write_bytes(pt.read_bytes()[:100])
    with pytest.raises(ValueError, match="trunc.pt"):
        load_cifar_n(tmp_path / "trunc.pt", "aggre")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_cifar_n(tmp_path / "nope.pt", "aggre")


# Published noise rates of CIFAR-N (Wei et al., ICLR 2022, Table 1): reading the files right
# reproduces them to the second decimal of a percent.
CIFAR10N_RATES = {"aggre": 0.0903, "random1": 0.1723, "random2": 0.1812, "random3": 0.1764, "worse": 0.4021}


@needs_shared
def test_cifar10n_file_shapes_ranges_and_published_rates():
    labels = load_label_file(C10N)
    assert set(labels) == {"clean_label", "aggre_label", "worse_label", "random_label1", "random_label2", "random_label3"}
    clean = labels["clean_label"]
    for variant, rate in CIFAR10N_RATES.items():
        y = load_cifar_n(C10N, variant)
        assert y.shape == (50000,) and y.dtype == np.int64
        assert y.min() == 0 and y.max() == 9
        assert abs(np.mean(y != clean) - rate) < 5e-4, variant
    assert np.bincount(clean).tolist() == [5000] * 10


@needs_shared
def test_cifar100n_file():
    noisy, clean = load_cifar_n(C100N, "noisy"), load_cifar_n(C100N, "clean")
    assert noisy.shape == clean.shape == (50000,)
    assert 0 <= noisy.min() and noisy.max() == 99 and np.bincount(clean).tolist() == [500] * 100
    assert abs(np.mean(noisy != clean) - 0.4020) < 5e-4  # published CIFAR-100N noise rate


@needs_shared
@pytest.mark.skipif(not JPG_TAR.is_file(), reason=f"{JPG_TAR} is absent")
def test_shared_cifar10_jpg_slice_is_in_official_order():
    ds = load_dataset(JPG_TAR, "train", limit=400, seed=0, cache=False)
    assert ds.classes == cdata.CIFAR10_CLASSES
    assert ds.images.shape == (400, 32, 32, 3) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [40] * 10
    assert len(np.unique(ds.indices)) == 400 and ds.indices.max() > 40000  # spread over the set
    clean = load_cifar_n(C10N, "clean")
    np.testing.assert_array_equal(ds.labels, clean[ds.indices])  # the official order, index for index
    # real photographs, not blank decodes: per-image pixel spread
    assert np.all(ds.images.reshape(400, -1).std(axis=1) > 5)
