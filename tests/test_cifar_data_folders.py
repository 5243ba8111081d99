"""experiments.cifar.data on image folders: PNG and JPEG of mixed resolution, folder or tarball, the
decoded-image cache (keyed by content, bounded, damaged entries), parallel decoding, the tar reader
and the image decoder against the standard library and Pillow."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments.cifar import data as cdata
from experiments.cifar.data import Dataset, load_dataset, stratified_subset


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test writes its decoded-image cache into its own folder, never ~/.cache."""
    monkeypatch.setenv("CLSPEC_CACHE", str(tmp_path / "cache"))


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
