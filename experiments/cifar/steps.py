"""The SimCLR pre-training step (Chen et al. 2020) as the paper runs it (Sec. 5, App. D).

Both augmented views of a batch of B images go through the network as ONE batch of 2B (so
BatchNorm sees all 2B views, as in the reference PyTorch code), the projections are scored
with NT-Xent (:func:`theory.losses.nt_xent`, temperature 0.5), and the optimizer updates the
encoder and the head. Paper defaults: Adam, learning rate 3e-4, weight decay 1e-6, batch 128.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from experiments.cifar.augment import normalize, simclr_augment
from theory.losses import nt_xent


class TrainState(flax.struct.PyTreeNode):
    """Everything a training step updates: step counter, parameters, BatchNorm statistics,
    optimizer state, and the training method's own state (``method_state``: e.g. ELR's targets,
    see :mod:`experiments.cifar.methods`; None where no method is involved, as in pre-training)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    method_state: Any = None


def simclr_optimizer(learning_rate: float = 3e-4, weight_decay: float = 1e-6) -> optax.GradientTransformation:
    """Adam with L2 weight decay added to the gradient, i.e. ``torch.optim.Adam(lr, weight_decay)``
    as in the paper's code (coupled, not AdamW's decoupled decay)."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))


def create_state(model: nn.Module, tx: optax.GradientTransformation, key: jax.Array, image_shape) -> TrainState:
    """Initialize ``model`` on float32 inputs of shape ``(2, *image_shape)`` and ``tx`` on its params."""
    x = jnp.zeros((2, *tuple(image_shape)), jnp.float32)
    variables = model.init(key, x, train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
    )


def simclr_views(key: jax.Array, images_uint8: jax.Array, augment: bool = True) -> jax.Array:
    """The 2B network inputs for B images: view 1 of every image, then view 2 (float32, [0, 1])."""
    x = normalize(images_uint8)
    if not augment:
        return jnp.concatenate([x, x], axis=0)
    k1, k2 = jax.random.split(key)
    return jnp.concatenate([simclr_augment(k1, x), simclr_augment(k2, x)], axis=0)


def simclr_loss_fn(model: nn.Module, temperature: float = 0.5) -> Callable:
    """``loss(params, batch_stats, views) -> (loss, new_batch_stats)`` for 2B stacked views."""

    def loss(params, batch_stats, views):
        (_, z), updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, views, train=True, mutable=["batch_stats"]
        )
        b = views.shape[0] // 2
        return nt_xent(z[:b], z[b:], temperature), updates["batch_stats"]

    return loss


def make_simclr_step(
    model: nn.Module, tx: optax.GradientTransformation, *, temperature: float = 0.5, augment: bool = True
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict]]:
    """A pure (jit-able) SimCLR step ``step(state, images_uint8 (B, H, W, 3), key) -> (state, metrics)``.

    ``metrics`` holds ``"loss"`` (NT-Xent of the batch before the update) and ``"grad_norm"``.
    With ``augment=False`` the two views are the image itself (for benchmarks and tests).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    loss_fn = simclr_loss_fn(model, temperature)

    def step(state: TrainState, images_uint8: jax.Array, key: jax.Array):
        views = simclr_views(key, images_uint8, augment)
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, views
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
        )
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return step
