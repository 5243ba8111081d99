"""Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", Eq. 1).

One lambda ~ Beta(alpha, alpha) per batch and a random pairing pi of the batch:
x_hat = lambda x + (1 - lambda) x[pi], trained against the mixed target
lambda onehot(y) + (1 - lambda) onehot(y[pi]), i.e. the loss
lambda CE(z, y) + (1 - lambda) CE(z, y[pi]) (as facebookresearch/mixup-cifar10's
``mixup_criterion``). The paper's setting: alpha = 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from experiments.cifar.methods.base import Method, cross_entropy

NAME = "mixup"
HPARAMS = ("mixup_alpha",)


def check(mixup_alpha: float) -> None:
    if not mixup_alpha > 0:
        raise ValueError(f"mixup_alpha must be > 0, got {mixup_alpha}")


def mix(key: jax.Array, x: jax.Array, alpha: float):
    """``(x_hat, lam, perm)``: the mixed batch, its lambda ~ Beta(alpha, alpha) and pairing."""
    k_lam, k_perm = jax.random.split(key)
    lam = jax.random.beta(k_lam, alpha, alpha)
    perm = jax.random.permutation(k_perm, x.shape[0])
    return lam * x + (1.0 - lam) * x[perm], lam, perm


def mixed_targets(labels: jax.Array, lam: jax.Array, perm: jax.Array, num_classes: int) -> jax.Array:
    """The soft targets lambda onehot(y) + (1 - lambda) onehot(y[perm]) of a mixed batch."""
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return lam * onehot + (1.0 - lam) * onehot[perm]


def make(mixup_alpha: float = 1.0) -> Method:
    check(mixup_alpha)

    def prepare(key, x, labels, indices, state):
        x_hat, lam, perm = mix(key, x, mixup_alpha)
        return x_hat.astype(x.dtype), (lam, perm)

    def loss(state, logits, labels, indices, aux):
        lam, perm = aux
        ce = lam * cross_entropy(logits, labels) + (1.0 - lam) * cross_entropy(logits, labels[perm])
        return jnp.mean(ce), state

    return Method(name=NAME, init=lambda labels, num_classes: {}, loss=loss, prepare=prepare)
