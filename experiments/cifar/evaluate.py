"""Evaluation of a network on many images: batched, device-sharded forward passes, pooled features,
and the per-epoch accuracy and loss numbers of training on noisy labels (Sec. 5, Fig. 1-3 of the
paper: against the clean and the noisy labels, on the mislabelled points)."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cifar.augment import normalize
from experiments.cifar.methods import cross_entropy
from experiments.cifar.parallel import DataParallel

EVAL_BATCH = 512


def _batched(fn: Callable, dp: DataParallel, arrays: tuple[np.ndarray, ...], batch: int = EVAL_BATCH):
    """Apply a jit-ed ``fn(*batch_arrays)`` over the leading axis in fixed-size, device-sharded
    chunks (the last one padded, so nothing recompiles); concatenate the results on the host."""
    n = arrays[0].shape[0]
    batch = max(dp.num_devices, (min(batch, n) + dp.num_devices - 1) // dp.num_devices * dp.num_devices)
    outs = []
    for start in range(0, n, batch):
        chunk = [a[start : start + batch] for a in arrays]
        m = chunk[0].shape[0]
        if m < batch:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch - m, axis=0)]) for c in chunk]
        out = _replicated(dp)(fn(*[jax.device_put(c, dp.batch) for c in chunk]))
        outs.append(np.asarray(jax.device_get(out))[:m])
    return np.concatenate(outs)


@functools.lru_cache(maxsize=None)
def _replicated(dp: DataParallel) -> Callable:
    """Gather a sharded result onto every device (on several hosts, every host can then read it)."""
    return jax.jit(lambda a: a, out_shardings=dp.replicated)


def make_encode(encoder) -> Callable:
    """``encode(variables, images_uint8) -> (B, D)`` pooled features, BatchNorm in evaluation mode."""

    @jax.jit
    def encode(variables, images):
        return encoder.apply(variables, normalize(images), train=False)

    return encode


def features(encode: Callable, variables: dict, images: np.ndarray, dp: DataParallel) -> np.ndarray:
    variables = dp.replicate(variables)
    return _batched(lambda x: encode(variables, x), dp, (images,))


def label_metrics(logits: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None = None) -> dict:
    """Accuracy and loss of ``logits`` against the clean labels, and (with ``noisy``) the noisy
    labels, the loss on the mislabelled points and the fraction of them memorized."""
    logits = jnp.asarray(logits, jnp.float32)
    pred = np.asarray(jnp.argmax(logits, axis=1))
    top5 = np.asarray(jax.lax.top_k(logits, min(5, logits.shape[1]))[1])
    out = {
        "acc_clean": float(np.mean(pred == clean)),
        "acc_clean_top5": float(np.mean(np.any(top5 == np.asarray(clean)[:, None], axis=1))),
        "loss_clean": float(jnp.mean(cross_entropy(logits, jnp.asarray(clean)))),
    }
    if noisy is not None:
        ce_noisy = np.asarray(cross_entropy(logits, jnp.asarray(noisy)))
        wrong = noisy != clean
        out["acc_noisy"] = float(np.mean(pred == noisy))
        out["loss_noisy"] = float(np.mean(ce_noisy))
        # None (JSON null) where there are no such points, e.g. --noise none.
        out["noisy_points_loss"] = float(np.mean(ce_noisy[wrong])) if wrong.any() else None
        out["noisy_points_memorized"] = float(np.mean(pred[wrong] == noisy[wrong])) if wrong.any() else None
        out["clean_points_loss"] = float(np.mean(ce_noisy[~wrong])) if (~wrong).any() else None
    return out


