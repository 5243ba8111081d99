"""Early-learning regularization, ELR (Liu et al. 2020, "Early-Learning Regularization Prevents
Memorization of Noisy Labels", Eq. 6 and the temporal ensembling of Sec. 4.2).

Per training point i the method keeps a target t_i (zeros at the start). On a batch,

    p_i   = clamp(softmax(z_i), 1e-4, 1 - 1e-4)
    t_i  <- beta t_i + (1 - beta) p_i / sum_c p_ic          (no gradient)
    loss  = mean_i CE(z_i, y_i) + lambda mean_i log(1 - <t_i, p_i>)

with the updated t_i in the regularizer, as ``ELR/model/loss.py`` of shengliu66/ELR (the
cross-entropy uses the unclamped softmax). The paper's settings: beta = 0.7, lambda = 3 (ELR's
own CIFAR-100 config uses 0.9 and 7).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cifar.methods.base import Method, _float, cross_entropy

NAME = "elr"
HPARAMS = ("elr_beta", "elr_lambda")
P_CLAMP = 1e-4  # ELR/model/loss.py: torch.clamp(y_pred, 1e-4, 1.0 - 1e-4)


def check(elr_beta: float, elr_lambda: float) -> None:
    if not 0.0 <= elr_beta < 1.0:
        raise ValueError(f"elr_beta must be in [0, 1), got {elr_beta}")
    if not elr_lambda >= 0.0:
        raise ValueError(f"elr_lambda must be >= 0, got {elr_lambda}")


def elr_loss(logits: jax.Array, labels: jax.Array, target: jax.Array, beta: float, lam: float):
    """ELR's batch loss and the updated targets of the batch's points (see the module docstring).

    ``logits (B, K)``, ``labels (B,)``, ``target (B, K)`` the batch's rows of t.
    Returns ``(loss, new_target (B, K))``."""
    p = jnp.clip(jax.nn.softmax(logits.astype(_float(logits)), axis=-1), P_CLAMP, 1.0 - P_CLAMP)
    p_detached = jax.lax.stop_gradient(p)
    new_target = beta * target + (1.0 - beta) * p_detached / jnp.sum(p_detached, axis=-1, keepdims=True)
    reg = jnp.mean(jnp.log(1.0 - jnp.sum(new_target * p, axis=-1)))
    return jnp.mean(cross_entropy(logits, labels)) + lam * reg, new_target


def make(elr_beta: float = 0.7, elr_lambda: float = 3.0) -> Method:
    check(elr_beta, elr_lambda)

    def init(labels: np.ndarray, num_classes: int):
        return {"target": jnp.zeros((len(labels), num_classes), jnp.float32)}

    def loss(state, logits, labels, indices, aux):
        value, rows = elr_loss(logits, labels, state["target"][indices], elr_beta, elr_lambda)
        return value, {"target": state["target"].at[indices].set(rows.astype(state["target"].dtype))}

    return Method(name=NAME, init=init, loss=loss)
