"""Cross-entropy on the noisy labels: the plain method (CL+E2E when it starts from SimCLR)."""

from __future__ import annotations

import jax.numpy as jnp

from experiments.cifar.methods.base import Method, cross_entropy

NAME = "ce"
HPARAMS: tuple[str, ...] = ()


def check() -> None:
    """Cross-entropy has no hyperparameters."""


def make() -> Method:
    """Mean cross-entropy of the batch; no state."""

    def loss(state, logits, labels, indices, aux):
        return jnp.mean(cross_entropy(logits, labels)), state

    return Method(name=NAME, init=lambda labels, num_classes: {}, loss=loss)
