"""Atomic, checksummed checkpoints of a training run.

One file, ``checkpoint.msgpack``: flax's msgpack of ``{"format", "sha256", "body"}``, where
``body`` is the msgpack of ``{"state": <TrainState as a state dict>, "meta": {...}}`` and
``sha256`` its checksum, verified on every load (a mismatch is a one-line ``ValueError``
naming the file). ``meta`` holds what resuming needs besides the weights: the job kind, the
architecture, the number of finished epochs, the seed (data order and augmentation keys are
pure functions of (seed, epoch, step), so the seed *is* the rng and data-order state), the
settings, the data's identity (:func:`experiments.cifar.data.data_identity`) and the
per-epoch metrics so far. The file is written to a temporary name and moved into place with
``os.replace``; the checkpoint it replaces is kept as ``checkpoint.prev.msgpack``. A run
killed mid-write keeps the last good checkpoint, and a checkpoint damaged on disk later
still leaves the one before it.

Checkpoints written before the checksum (``{"state", "meta"}`` at the top level) still load,
with a one-line warning that they cannot be verified and record no data identity.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from experiments.common.runs import _to_jsonable, atomic_write_bytes

CHECKPOINT = "checkpoint.msgpack"
PREVIOUS = "checkpoint.prev.msgpack"
FORMAT = "clspec-checkpoint-v2"
_warned: set[str] = set()


def checkpoint_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / CHECKPOINT


def previous_path(path: Path | str) -> Path:
    """Where :func:`save` keeps the checkpoint it replaced."""
    path = Path(path)
    return path.with_name(PREVIOUS if path.name == CHECKPOINT else f"{path.stem}.prev{path.suffix}")


def save(path: Path | str, state: Any, meta: dict) -> Path:
    """Write ``state`` (a pytree / flax struct) and ``meta`` (JSON-able) atomically to ``path``,
    with the sha256 of the serialized body; the file it replaces stays as :func:`previous_path`."""
    path = Path(path)
    state_dict = serialization.to_state_dict(jax.device_get(state))
    body = serialization.msgpack_serialize({"state": state_dict, "meta": json.dumps(_to_jsonable(meta))})
    payload = {"format": FORMAT, "sha256": hashlib.sha256(body).hexdigest(), "body": body}
    atomic_write_bytes(path, serialization.msgpack_serialize(payload), keep_previous=previous_path(path))
    return path


def _unpack(path: Path) -> tuple[dict, dict, bool]:
    """``(state_dict, meta, verified)``; ``ValueError`` naming ``path`` when unreadable or corrupt."""
    try:
        outer = serialization.msgpack_restore(path.read_bytes())
    except Exception as err:  # noqa: BLE001 - truncated or foreign file
        raise ValueError(f"checkpoint {path} is not a readable clspec checkpoint ({type(err).__name__})") from None
    if isinstance(outer, dict) and outer.get("format") == FORMAT:
        body = outer.get("body")
        if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != outer.get("sha256"):
            raise ValueError(f"checkpoint {path} is corrupt: its content does not match its sha256 checksum")
        payload, verified = serialization.msgpack_restore(body), True
    else:
        payload, verified = outer, False
    try:
        return payload["state"], json.loads(payload["meta"]), verified
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"checkpoint {path} is not a readable clspec checkpoint (no {err})") from None


def load_raw(path: Path | str) -> tuple[dict, dict]:
    """The state dict and meta of a checkpoint file, without a target to restore into.

    The checksum is verified; a corrupt file is a ``ValueError`` naming it (and, when the
    previous checkpoint verifies, saying so). A checkpoint from before the checksum loads with a
    one-line warning on stderr.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT).exists():
            raise FileNotFoundError(f"checkpoint folder {path} holds no {CHECKPOINT}")
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state_dict, meta, verified = _unpack(path)
    except ValueError as err:
        prev = previous_path(path)
        if prev.exists() and prev != path:
            try:
                epoch = _unpack(prev)[1].get("epoch")
                raise ValueError(f"{err}; the previous checkpoint {prev} (after epoch {epoch}) verifies: "
                                 f"copy it to {path} to resume from there") from None
            except ValueError as prev_err:
                if "verifies" in str(prev_err):
                    raise
        raise
    if not verified and str(path) not in _warned:
        _warned.add(str(path))
        print(f"warning: checkpoint {path} predates the checksum and data-identity record; "
              "loaded without verifying it", file=sys.stderr)
    return state_dict, meta


def check_arch(meta: dict, arch: str, path: Path | str) -> None:
    """Refuse a checkpoint written for another network."""
    if meta.get("arch") != arch:
        raise ValueError(
            f"checkpoint {path} was written for arch {meta.get('arch')!r}, this run uses {arch!r}"
        )


def restore(path: Path | str, target: Any, *, arch: str, kind: str | None = None) -> tuple[Any, dict]:
    """Restore the state saved at ``path`` into the structure of ``target``.

    Raises ``ValueError`` if the checkpoint was written for another architecture (or, when
    ``kind`` is given, by another job) or if its arrays do not fit ``target``.
    """
    state_dict, meta = load_raw(path)
    check_arch(meta, arch, path)
    if kind is not None and meta.get("kind") != kind:
        raise ValueError(f"checkpoint {path} was written by a {meta.get('kind')!r} run, expected {kind!r}")
    return restore_into(target, state_dict, path), meta


def restore_into(target: Any, state_dict: dict, path: Path | str = "checkpoint") -> Any:
    """``flax.serialization.from_state_dict`` with shapes and dtypes checked leaf by leaf."""
    try:
        restored = serialization.from_state_dict(target, state_dict)
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"checkpoint {path} does not fit this model ({err})") from err
    ref_leaves, ref_def = jax.tree_util.tree_flatten(target)
    new_leaves, new_def = jax.tree_util.tree_flatten(restored)
    if ref_def != new_def:
        raise ValueError(f"checkpoint {path} does not fit this model (tree structure differs)")
    for a, b in zip(ref_leaves, new_leaves):
        if np.shape(a) != np.shape(b):
            raise ValueError(
                f"checkpoint {path} does not fit this model (array of shape {np.shape(b)}, "
                f"expected {np.shape(a)})"
            )
    # Keep the target's dtypes (msgpack stores them exactly; this guards against x64 promotion).
    restored = jax.tree_util.tree_map(
        lambda a, b: np.asarray(b, dtype=np.asarray(a).dtype) if hasattr(a, "dtype") else b,
        target,
        restored,
    )
    return restored
