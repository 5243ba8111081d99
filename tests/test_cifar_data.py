"""experiments.cifar.data and safe_pickle: loaders on generated files in the official formats, on a
slice of the shared CIFAR-10 copy, CIFAR-N label files, and the restricted unpickler against a
crafted pickle (image folders: test_cifar_data_folders.py)."""

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

from experiments.cifar import data as cdata
from experiments.cifar.data import load_cifar_n, load_dataset, load_label_file
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


def test_shared_data_dir_is_next_to_the_repository():
    assert cdata.shared_data_dir() == SHARED
