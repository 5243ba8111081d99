"""The steps of training on noisy labels and the compiled steps both training loops use.

Fine-tuning (:func:`make_finetune_step`: every layer, SGD with coupled weight decay, the standard
crop + flip augmentation) and the linear probe (:func:`make_probe_step`: the last layer on
features of the frozen encoder), each with the run's :class:`experiments.cifar.methods.Method`
as its loss (Sec. 5 of the paper; the methods of Table 1). The compiled steps are built once per
setting and kept, so a resume or a second run in the same process does not compile again.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from experiments.cifar import methods
from experiments.cifar.augment import normalize
from experiments.cifar.configs import PretrainConfig, TrainConfig
from experiments.cifar.evaluate import make_encode
from experiments.cifar.methods import Method
from experiments.cifar.models import Classifier, ProjectionHead, SimCLRModel, make_encoder
from experiments.cifar.steps import TrainState, make_simclr_step, simclr_optimizer


# ----------------------------------------------------------------------------- optimizers


def pretrain_optimizer(cfg: PretrainConfig) -> optax.GradientTransformation:
    """Adam with coupled L2 weight decay, as ``torch.optim.Adam(lr, weight_decay=wd)``."""
    return simclr_optimizer(cfg.lr, cfg.weight_decay)


def train_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """SGD with coupled L2 weight decay, as ``torch.optim.SGD(lr, momentum, weight_decay=wd)``."""
    momentum = cfg.momentum if cfg.momentum > 0 else None
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.sgd(cfg.lr, momentum))


# ----------------------------------------------------------------------------- steps


def crop_flip(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """The standard supervised CIFAR augmentation: pad by ``pad`` (zeros), random crop back to
    H x W, horizontal flip with probability 0.5. Works on any dtype; image i uses
    ``split(key, B)[i]``."""
    b, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(k, img):
        k_y, k_x, k_f = jax.random.split(k, 3)
        y = jax.random.randint(k_y, (), 0, 2 * pad + 1)
        x = jax.random.randint(k_x, (), 0, 2 * pad + 1)
        out = jax.lax.dynamic_slice(img, (y, x, 0), (h, w, img.shape[-1]))
        return jnp.where(jax.random.uniform(k_f, ()) < 0.5, out[:, ::-1], out)

    return jax.vmap(one)(jax.random.split(key, b), padded)


def _method_key(key: jax.Array) -> jax.Array:
    """The method's key of a step (``prepare``), apart from the augmentation's ``key``."""
    return jax.random.fold_in(key, 1)


def make_finetune_step(model: Classifier, tx: optax.GradientTransformation, *, augment: bool,
                       method: Method | None = None):
    """One SGD step of end-to-end training on ``(images_uint8, labels)``: the method's loss
    (default cross-entropy) on its prepared inputs, BatchNorm in training mode.
    ``step(state, images, labels, key, indices=None) -> (state, {"loss", "acc"})``; ``indices``
    are the batch's positions in the training set (the method state's rows; default 0..B-1)."""
    method = method or methods.MODULES["ce"].make()

    def loss_fn(params, batch_stats, x, labels, indices, method_state, aux):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
        )
        loss, method_state = method.loss(method_state, logits, labels, indices, aux)
        return loss, (logits, updates["batch_stats"], jax.lax.stop_gradient(method_state))

    @jax.jit
    def step(state: TrainState, images, labels, key, indices=None):
        if indices is None:
            indices = jnp.arange(images.shape[0])
        if augment:
            images = crop_flip(key, images)
        x, aux = method.prepare(_method_key(key), normalize(images), labels, indices, state.method_state)
        (loss, (logits, batch_stats, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, x, labels, indices, state.method_state, aux
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        acc = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
        new = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
                         method_state=method_state)
        return new, {"loss": loss, "acc": acc}

    return step


def linear_logits(params: dict, features: jax.Array) -> jax.Array:
    """The classifier's last layer (flax Dense ``linear``) applied to pooled features."""
    return features.astype(jnp.float32) @ params["kernel"] + params["bias"]


def make_probe_step(tx: optax.GradientTransformation, method: Method | None = None):
    """One SGD step of the linear probe on precomputed features of the frozen encoder.

    ``state`` is the whole classifier's state, but only ``params["linear"]`` enters the
    gradient and the optimizer (``state.opt_state`` is the linear layer's); the encoder's
    parameters and BatchNorm statistics pass through untouched. The method (default
    cross-entropy) prepares the features (Mixup mixes them) and gives the loss.
    ``step(state, features, labels, key=None, indices=None) -> (state, {"loss", "acc"})``."""
    method = method or methods.MODULES["ce"].make()

    def loss_fn(linear, features, labels, indices, method_state, aux):
        logits = linear_logits(linear, features)
        loss, method_state = method.loss(method_state, logits, labels, indices, aux)
        return loss, (logits, jax.lax.stop_gradient(method_state))

    @jax.jit
    def step(state: TrainState, features, labels, key=None, indices=None):
        if indices is None:
            indices = jnp.arange(features.shape[0])
        key = jax.random.PRNGKey(0) if key is None else key
        x, aux = method.prepare(_method_key(key), features, labels, indices, state.method_state)
        linear = state.params["linear"]
        (loss, (logits, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            linear, x, labels, indices, state.method_state, aux
        )
        updates, opt_state = tx.update(grads, state.opt_state, linear)
        params = {**state.params, "linear": optax.apply_updates(linear, updates)}
        acc = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
        new = TrainState(step=state.step + 1, params=params, batch_stats=state.batch_stats, opt_state=opt_state,
                         method_state=method_state)
        return new, {"loss": loss, "acc": acc}

    return step

# Built once per setting and kept: a second run in the same process (a resume, the tests)
# reuses the compiled step instead of compiling it again.


@functools.lru_cache(maxsize=None)
def _simclr_step(arch: str, projection_dim: int, lr: float, weight_decay: float, temperature: float):
    model = simclr_model(arch, projection_dim)
    tx = simclr_optimizer(lr, weight_decay)
    return model, tx, jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=True))


@functools.lru_cache(maxsize=None)
def _finetune_step(arch: str, num_classes: int, lr: float, weight_decay: float, momentum: float, augment: bool,
                   method: tuple = ("ce", ())):
    cfg = TrainConfig(lr=lr, weight_decay=weight_decay, momentum=momentum)
    model, tx = classifier(arch, num_classes), train_optimizer(cfg)
    return model, tx, make_finetune_step(model, tx, augment=augment, method=methods.from_key(method))


@functools.lru_cache(maxsize=None)
def _probe_step(lr: float, weight_decay: float, momentum: float, method: tuple = ("ce", ())):
    tx = train_optimizer(TrainConfig(lr=lr, weight_decay=weight_decay, momentum=momentum))
    return tx, make_probe_step(tx, methods.from_key(method))




@functools.lru_cache(maxsize=None)
def _encode(arch: str):
    return make_encode(make_encoder(arch))


@functools.lru_cache(maxsize=None)
def _predict(arch: str, num_classes: int):
    model = classifier(arch, num_classes)

    @jax.jit
    def predict(variables, x):
        return model.apply(variables, normalize(x), train=False)

    return predict

def simclr_model(arch: str, projection_dim: int) -> SimCLRModel:
    return SimCLRModel(make_encoder(arch), ProjectionHead(out_dim=projection_dim))



def classifier(arch: str, num_classes: int) -> Classifier:
    return Classifier(make_encoder(arch), num_classes=num_classes)

