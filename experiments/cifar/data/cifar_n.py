"""CIFAR-10N / CIFAR-100N human labels (Wei et al. 2022): the ``.pt`` label files, read without torch."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from experiments.cifar.safe_pickle import safe_loads


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
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


