"""Crust (Mirzasoleiman, Cao and Leskovec 2020, "Coresets for Robust Training of Neural Networks
against Noisy Labels", Alg. 1), with the warm-up and relabelling the paper uses under extreme noise.

Before every epoch from ``crust_warmup`` on, per (current) label class c:

1. the gradient proxy of each point is dCE/dh, the gradient of its cross-entropy with respect to
   the penultimate features h, (softmax(z) - onehot(y)) W^T (``estimate_grads`` of
   snap-stanford/crust, which differentiates the loss with respect to ``feats``);
2. the coreset is the greedy facility-location set of ``crust_ratio * |c|`` medoids under the
   similarity max(d) - d of the proxies' pairwise distances d (:mod:`.facility`);
3. each medoid is weighted by the size of its cluster (Crust's Eq. 5: the weights sum to |c|; the
   reference code counts the points within a radius r instead).

The epoch visits only the coreset; the batch loss is sum_i w_i CE(z_i, y_i) / sum_i w_i, and each
input is blended with a partner of the same label, x <- lam x + (1 - lam) x_partner with one
lam ~ Beta(1, 0.1) per batch (``train(fetch=True)`` of the reference; there the partner is drawn
from the whole training set, here from the batch, so the step needs no extra data).

Warm-up (the paper, Sec. 5: "under extreme noise ... first fine-tune on the noisy labels for about
20 epochs, then relabel a random half of the examples with the predictions"): for the first
``crust_warmup`` epochs the method is plain cross-entropy on all points; at epoch ``crust_warmup``
a random ``crust_relabel`` fraction of the points gets the model's prediction as its label.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cifar.methods.base import EpochView, Method, cross_entropy
from experiments.cifar.methods.facility import medoids

NAME = "crust"
HPARAMS = ("crust_ratio", "crust_warmup", "crust_relabel")
BLEND_BETA = (1.0, 0.1)  # lam ~ Beta(1, 0.1) in the reference's train(fetch=True)


def check(crust_ratio: float, crust_warmup: int, crust_relabel: float) -> None:
    if not 0.0 < crust_ratio <= 1.0:
        raise ValueError(f"crust_ratio must be in (0, 1], got {crust_ratio}")
    if crust_warmup < 0:
        raise ValueError(f"crust_warmup must be >= 0, got {crust_warmup}")
    if not 0.0 <= crust_relabel <= 1.0:
        raise ValueError(f"crust_relabel must be in [0, 1], got {crust_relabel}")


def gradient_proxies(features: np.ndarray, logits: np.ndarray, labels: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """dCE(z_i, y_i)/dh_i = (softmax(z_i) - onehot(y_i)) W^T for z = h W + b: ``(n, D)``."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p @ np.asarray(kernel, np.float64).T


def select_coreset(proxies: np.ndarray, labels: np.ndarray, num_classes: int, ratio: float):
    """Per class, the facility-location medoids of the proxies (``int(ratio * |c|)``, at least 1)
    and their cluster sizes. Returns ``(subset (m,), weight (n,))``: the sorted selected indices
    and a weight per training point (0 off the coreset)."""
    weight = np.zeros(len(labels), np.float32)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if members.size == 0:
            continue
        budget = max(1, int(ratio * members.size))
        chosen, sizes = medoids(proxies[members], budget)
        weight[members[chosen]] = sizes
    return np.flatnonzero(weight > 0), weight


def relabel(labels: np.ndarray, predictions: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``round(fraction * n)`` of the points take their predicted label."""
    new = np.array(labels, copy=True)
    pick = rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False)
    new[pick] = predictions[pick]
    return new


def same_label_partners(key: jax.Array, labels: jax.Array) -> jax.Array:
    """For each point of the batch, a uniformly random point of the batch with the same label
    (possibly itself)."""
    scores = jax.random.uniform(key, (labels.shape[0], labels.shape[0]))
    return jnp.argmax(jnp.where(labels[:, None] == labels[None, :], scores, -1.0), axis=1)


def make(crust_ratio: float = 0.5, crust_warmup: int = 20, crust_relabel: float = 0.5) -> Method:
    check(crust_ratio, crust_warmup, crust_relabel)

    def init(labels: np.ndarray, num_classes: int):
        return {
            "labels": jnp.asarray(labels, jnp.int32),
            "weight": jnp.ones((len(labels),), jnp.float32),
            "active": jnp.zeros((), jnp.int32),
        }

    def prepare(key, x, labels, indices, state):
        y = state["labels"][indices]
        k_lam, k_pair = jax.random.split(key)
        lam = jnp.where(state["active"] > 0, jax.random.beta(k_lam, *BLEND_BETA), 1.0)
        partner = same_label_partners(k_pair, y)
        return (lam * x + (1.0 - lam) * x[partner]).astype(x.dtype), None

    def loss(state, logits, labels, indices, aux):
        y, w = state["labels"][indices], state["weight"][indices]
        return jnp.sum(w * cross_entropy(logits, y)) / jnp.sum(w), state

    def epoch_start(epoch: int, state, view: EpochView):
        if epoch < crust_warmup:
            return state, None
        features, logits = view.outputs()
        labels = np.asarray(state["labels"])
        if epoch == crust_warmup and crust_warmup > 0 and crust_relabel > 0:
            rng = np.random.default_rng([view.seed, epoch, 0xC2])
            labels = relabel(labels, np.argmax(logits, axis=1), crust_relabel, rng)
        proxies = gradient_proxies(features, logits, labels, view.kernel())
        subset, weight = select_coreset(proxies, labels, view.num_classes, crust_ratio)
        new = {"labels": jnp.asarray(labels, jnp.int32), "weight": jnp.asarray(weight), "active": jnp.ones((), jnp.int32)}
        return new, subset

    return Method(name=NAME, init=init, loss=loss, prepare=prepare, epoch_start=epoch_start)
