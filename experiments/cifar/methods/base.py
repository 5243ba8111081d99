"""The method seam of training on noisy labels: what a robust training method may change.

A :class:`Method` is to the training loop what optax's ``GradientTransformation`` is to an
optimizer: a few pure functions that many implementations share.

* ``init(labels, num_classes) -> state``: the method's own state (a pytree of arrays), kept in
  :class:`experiments.cifar.steps.TrainState` ``.method_state`` and so in every checkpoint;
  ELR's running targets and Crust's relabelled labels and coreset weights live here.
* ``prepare(key, x, labels, indices, state) -> (x, aux)``: transforms a batch of network inputs
  (normalized images, or features for the linear probe) before the forward pass; Mixup mixes
  them here. ``aux`` is handed to ``loss``.
* ``loss(state, logits, labels, indices, aux) -> (loss, state)``: the scalar training loss of a
  batch from its logits, the (noisy) labels and the batch's sample indices into the training set,
  and the method state after the batch (no gradient flows into it).
* ``epoch_start(epoch, state, view) -> (state, subset)`` (optional, host side): runs before each
  epoch; may change the state and returns the training indices the epoch visits (None: all).
  Crust selects its coreset here. It must be a deterministic function of its arguments, which is
  why resuming from the last checkpoint stays exact.

Adding a method is one module that defines ``NAME``, ``HPARAMS`` (the names of its
:class:`~experiments.cifar.configs.TrainConfig` fields), ``check(**hparams)`` and
``make(**hparams) -> Method``, plus one entry in ``experiments.cifar.methods.MODULES``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example cross-entropy of integer labels, in float32 (float64 logits stay float64)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(_float(logits)), labels)


def _float(x: jax.Array):
    """float32, or float64 for float64 inputs (the finite-difference tests)."""
    return jnp.promote_types(x.dtype, jnp.float32)


@dataclasses.dataclass(frozen=True)
class EpochView:
    """What ``epoch_start`` may look at: the run's seed, the noisy labels, and (computed only when
    called) ``outputs() -> (features (n, D), logits (n, K))`` of the current model in evaluation
    mode on every training point, and ``kernel() -> (D, K)``, the last layer's weights."""

    seed: int
    labels: np.ndarray
    num_classes: int
    outputs: Callable[[], tuple[np.ndarray, np.ndarray]]
    kernel: Callable[[], np.ndarray]


def _identity_prepare(key, x, labels, indices, state):
    return x, None


class Method(NamedTuple):
    """A training method on noisy labels (see the module docstring for the contract)."""

    name: str
    init: Callable[[np.ndarray, int], Any]
    loss: Callable[..., tuple[jax.Array, Any]]
    prepare: Callable[..., tuple[jax.Array, Any]] = _identity_prepare
    epoch_start: Callable[[int, Any, EpochView], tuple[Any, np.ndarray | None]] | None = None
