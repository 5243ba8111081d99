"""Atomic checkpoints of a training run.

One file, ``checkpoint.msgpack``: flax's msgpack of ``{"state": <TrainState as a state
dict>, "meta": {...}}``. ``meta`` holds what resuming needs besides the weights: the
job kind, the architecture, the number of finished epochs, the seed (data order and
augmentation keys are pure functions of (seed, epoch, step), so the seed *is* the rng
and data-order state) and the per-epoch metrics so far. The file is written to a
temporary name and moved into place with ``os.replace``: a run killed mid-write keeps
the previous (last good) checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from experiments.runs import _to_jsonable, atomic_write_bytes

CHECKPOINT = "checkpoint.msgpack"


def checkpoint_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / CHECKPOINT


def save(path: Path | str, state: Any, meta: dict) -> Path:
    """Write ``state`` (a pytree / flax struct) and ``meta`` (JSON-able) atomically to ``path``."""
    path = Path(path)
    state_dict = serialization.to_state_dict(jax.device_get(state))
    payload = {"state": state_dict, "meta": json.dumps(_to_jsonable(meta))}
    atomic_write_bytes(path, serialization.msgpack_serialize(payload))
    return path


def load_raw(path: Path | str) -> tuple[dict, dict]:
    """The state dict and meta of a checkpoint file, without a target to restore into."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        meta = json.loads(payload["meta"])
        state_dict = payload["state"]
    except Exception as err:  # truncated or foreign file
        raise ValueError(f"checkpoint {path} is not a readable clspec checkpoint ({err})") from err
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
