"""Training an encoder on sampled augmentation pairs, and how far it lands from f_min.

Pairs come from the augmentation graph W (:func:`graph_sampler`: positive pairs
``(x_i, x_j)`` with probability ``w_ij / S``, negatives independently from the
marginal ``w_i / S``) or from the data model itself (:func:`model_sampler`: two fresh
augmentations of a uniformly drawn natural point). Steps are jit-compiled and run
``eval_every`` at a time under ``lax.scan``; between chunks the metrics are taken on
the graph's n vertices (:func:`representation_metrics`).

The sqrt(w) weighting. The spectral loss of f on the graph equals
``||A-bar - U U^T||_F^2 - ||A-bar||_F^2`` with rows ``u_i = sqrt(w_i / S) f(x_i)``
(HaoChen et al., Lemma 3.2; :func:`theory.losses.matrix_factorization_loss`), so its
minimizers are ``U = V_p Sigma R`` and ``f_min(x_i) = u_i / sqrt(w_i / S)``. The
weighted matrix U, not F = [f(x_i)], has the singular values ``sqrt(lambda_i)`` and
the eigenvectors of A-bar as left singular vectors; F itself has them only when all
degrees are equal. So the metrics compare the top-K-bar left singular space of the
learned U with that of A-bar (exact at the optimum, whatever R), and report the
label alignment of both U (the paper's Eq. 25 quantity) and F (what a linear head on
the encoder's output sees), each computed the same way for the closed form.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from theory._types import Array, Labels, PRNGKeyArray, Weights
from theory.datamodel import Augmentation, DataModel, augment, check_finite
from theory.graph import check_weights
from theory.losses import nt_xent, spectral_contrastive_loss, spectral_loss_minibatch
from theory.representation import alignment, normalized_adjacency, optimal_representation, principal_angle_sines

LOSSES = ("spectral", "nt_xent")
NEGATIVES = ("independent", "in_batch")
SCHEDULES = ("cosine", "constant")

# A sampler maps (key, batch) to the inputs of B positive pairs and B negative pairs:
# (x, x_pos, x_a, x_b), each with a leading axis of size B.
Sampler = Callable[[PRNGKeyArray, int], tuple[Array, Array, Array, Array]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    ``loss``: "spectral" (Eq. 1) or "nt_xent" (SimCLR's InfoNCE, ``temperature``).
    ``negatives``: for the spectral loss, "independent" marginal draws or "in_batch"
    cross pairs (see :func:`theory.losses.spectral_loss_minibatch`).
    ``full_batch``: use the exact population spectral loss on the graph instead of
    sampled pairs (spectral loss only).
    """

    loss: str = "spectral"
    steps: int = 2000
    batch: int = 256
    lr: float = 1e-2
    schedule: str = "cosine"
    temperature: float = 0.5
    negatives: str = "independent"
    full_batch: bool = False
    eval_every: int = 100

    def validate(self, n: int | None = None) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {self.negatives!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.batch < 2:
            raise ValueError(f"batch must be >= 2, got {self.batch}")
        if n is not None and self.batch > n:
            raise ValueError(f"batch must be <= the number of data points n={n}, got {self.batch}")
        if self.full_batch and self.loss != "spectral":
            raise ValueError(f"full_batch needs loss='spectral' (the population loss), got {self.loss!r}")


# ----------------------------------------------------------------------------
# Samplers
# ----------------------------------------------------------------------------


def graph_sampler(inputs: Array, W: Weights) -> Sampler:
    """Pairs from the graph: positives ``(i, j) ~ w_ij / S``, negatives ``i, j ~ w_i / S`` independently.

    ``inputs[i]`` is what the encoder reads for vertex i (an index for an embedding
    table, a point of R^d otherwise).
    """
    W = jnp.asarray(check_weights(W))
    degrees = jnp.sum(W, axis=1)
    cdf_marg = jnp.cumsum(degrees) / jnp.sum(degrees)
    cdf_rows = jnp.cumsum(W, axis=1) / degrees[:, None]  # row i: the law of x+ given x = x_i

    def draw(key, cdf):
        # inverse-CDF sampling by counting (no loops: quick to compile, O(n) a draw)
        u = jax.random.uniform(key, cdf.shape[:-1], cdf.dtype)
        return jnp.minimum(jnp.sum(cdf < u[..., None], axis=-1), cdf.shape[-1] - 1)

    def sample(key, batch):
        # x ~ w_i / S, then x+ ~ w_ij / w_i: the pair has law w_ij / S.
        k_i, k_j, k_a, k_b = jax.random.split(key, 4)
        marg = jnp.broadcast_to(cdf_marg, (batch, cdf_marg.shape[0]))
        i = draw(k_i, marg)
        j = draw(k_j, cdf_rows[i])
        a, b = draw(k_a, marg), draw(k_b, marg)
        return inputs[i], inputs[j], inputs[a], inputs[b]

    return sample


def model_sampler(model: DataModel, aug: Augmentation) -> Sampler:
    """Pairs from the data model: two augmentations of one natural point x* ~ P (uniform);
    negatives are augmentations of two independently drawn natural points."""

    def sample(key, batch):
        k_s, k_n, k1, k2, k3, k4 = jax.random.split(key, 6)
        n_nat = model.natural.shape[0]
        src = jax.random.randint(k_s, (batch,), 0, n_nat)
        neg = jax.random.randint(k_n, (2, batch), 0, n_nat)
        x_star = model.natural[src]
        return (
            augment(k1, x_star, aug),
            augment(k2, x_star, aug),
            augment(k3, model.natural[neg[0]], aug),
            augment(k4, model.natural[neg[1]], aug),
        )

    return sample


# ----------------------------------------------------------------------------
# The target (closed form on the graph) and the metrics
# ----------------------------------------------------------------------------


class Target(NamedTuple):
    """The closed form on a graph, and what the metrics need.

    ``inputs`` the encoder inputs of the n vertices; ``W`` the weights; ``marginal``
    ``w_i / S``; ``Y`` clean labels; ``n_sub`` K-bar; ``p`` the dimension;
    ``eigvals`` (p) and ``eigvecs`` (n, p) of A-bar; ``F_min`` (n, p) the encoder
    outputs of the exact minimizer ``u_i / sqrt(w_i / S)``; ``min_loss`` the minimum
    of the population loss, ``-sum_{i<=p} max(lambda_i, 0)^2``.
    """

    inputs: Array
    W: Weights
    marginal: Array
    Y: Labels
    n_sub: int
    p: int
    eigvals: Array
    eigvecs: Array
    F_min: Array
    min_loss: float


def make_target(inputs: Array, W: Weights, Y: Labels, *, n_sub: int, p: int) -> Target:
    check_finite(inputs, "inputs")
    W = jnp.asarray(check_weights(W))
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    spec = optimal_representation(normalized_adjacency(W), p, n_sub=n_sub)
    marginal = jnp.sum(W, axis=1) / jnp.sum(W)
    F_min = spec.F / jnp.sqrt(marginal)[:, None]
    min_loss = -float(jnp.sum(jnp.maximum(spec.eigvals, 0.0) ** 2))
    return Target(jnp.asarray(inputs), W, marginal, jnp.asarray(Y), int(n_sub), int(p), spec.eigvals, spec.eigvecs,
                  F_min, min_loss)


def linear_class_optimum(X: Array, target: Target) -> tuple[float, Array]:
    """The exact minimizer of the population spectral loss over linear encoders ``f(x) = W x``.

    With ``M = sqrt(w/S) X`` (n, d), the weighted outputs ``U = M W^T`` range over the
    matrices whose columns lie in span(M). With Q an orthonormal basis of it,
    ``||A-bar - Q Z Z^T Q^T||^2 = ||A-bar||^2 - ||Q^T A-bar Q||^2 + ||Q^T A-bar Q - Z Z^T||^2``,
    so ``Z`` holds the top-p eigenpairs of ``Q^T A-bar Q`` (clipped at 0) and the minimum
    is ``-sum max(mu_i, 0)^2``. Returns that minimum and the encoder outputs F (n, p).
    """
    X = jnp.asarray(X)
    M = jnp.sqrt(target.marginal)[:, None] * X
    Q, R = jnp.linalg.qr(M)
    Abar = normalized_adjacency(target.W)
    mu, V = jnp.linalg.eigh(Q.T @ Abar @ Q)
    mu, V = mu[::-1][: target.p], V[:, ::-1][:, : target.p]
    mu = jnp.maximum(mu, 0.0)
    U = Q @ (V * jnp.sqrt(mu)[None, :])
    return -float(jnp.sum(mu**2)), U / jnp.sqrt(target.marginal)[:, None]


def _top_left(F: Array, k: int) -> tuple[Array, Array]:
    U, s, _ = jnp.linalg.svd(F, full_matrices=False)
    return U[:, :k], s


def representation_metrics(F: Array, target: Target, *, normalize: bool = False) -> dict[str, Any]:
    """How close the representation F (rows f(x_i), shape (n, p')) is to f_min.

    ``normalize``: measure the unit-norm outputs ``f / ||f||`` (what NT-Xent sees).
    Keys: ``pop_loss`` (population spectral loss of F as given), ``singular_values``
    of ``U = sqrt(w/S) F``, ``sine`` (largest principal-angle sine between the
    top-K-bar left singular space of U and the top-K-bar eigenspace of A-bar),
    ``alignment_u`` (Eq. 25 on U's top-K-bar space), ``alignment_f`` (on F's),
    ``prominence`` (``sigma_{K-bar+1} / sigma_{K-bar}`` of U; 0 when p' = K-bar).
    """
    m = _metrics_core(jnp.asarray(F), target.W, target.marginal, target.Y, target.eigvecs[:, : target.n_sub],
                      normalize)
    s = np.asarray(m["singular_values"])
    k = target.n_sub
    out = {name: float(v) for name, v in m.items() if name != "singular_values"}
    out["singular_values"] = s
    out["prominence"] = float(s[k] / s[k - 1]) if s.shape[0] > k and s[k - 1] > 0 else 0.0
    return out


@functools.partial(jax.jit, static_argnums=5)
def _metrics_core(F, W, marginal, Y, V_top, normalize):
    k = V_top.shape[1]
    pop_loss = spectral_contrastive_loss(F, W)
    if normalize:
        F = F / jnp.maximum(jnp.linalg.norm(F, axis=1, keepdims=True), 1e-30)
    U = jnp.sqrt(marginal)[:, None] * F
    Vu, s = _top_left(U, k)
    Vf, _ = _top_left(F, k)
    return {
        "pop_loss": pop_loss,
        "singular_values": s,
        "sine": principal_angle_sines(Vu, V_top)[0],
        "alignment_u": alignment(Vu, Y),
        "alignment_f": alignment(Vf, Y),
    }


def closed_form_metrics(target: Target) -> dict[str, Any]:
    """The same metrics for f_min itself (the reference on the same graph)."""
    return representation_metrics(target.F_min, target)


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------


class TrainResult(NamedTuple):
    """``params`` the final parameters (the last ones with a finite loss if training
    stopped); ``history`` a dict of arrays, one entry per evaluation; ``stopped_at``
    the step whose loss was not finite (None if training finished); ``message``."""

    params: Any
    history: dict[str, np.ndarray]
    stopped_at: int | None
    message: str | None


def _objective(config: TrainConfig, apply, sampler: Sampler, target: Target):
    def loss_fn(params, key):
        if config.full_batch:
            return spectral_contrastive_loss(apply(params, target.inputs), target.W)
        x, xp, xa, xb = sampler(key, config.batch)
        z, zp = apply(params, x), apply(params, xp)
        if config.loss == "nt_xent":
            return nt_xent(z, zp, config.temperature)
        if config.negatives == "independent":
            return spectral_loss_minibatch(z, zp, apply(params, xa), apply(params, xb))
        return spectral_loss_minibatch(z, zp)

    return loss_fn


def train(
    key: PRNGKeyArray,
    apply: Callable[[Any, Array], Array],
    params: Any,
    target: Target,
    config: TrainConfig,
    *,
    sampler: Sampler | None = None,
    progress: bool = False,
    desc: str = "train",
) -> TrainResult:
    """Train ``params`` of ``apply`` with optax Adam on sampled pairs (or full batch).

    Step t uses the key ``fold_in(key, t)``, so results do not depend on
    ``eval_every``. A loss that is not finite stops training: the result keeps the
    parameters of the last step whose loss was finite and its message names the step.
    """
    n = target.inputs.shape[0]
    config.validate(n)
    for leaf in jax.tree_util.tree_leaves(params):
        check_finite(leaf, "params")
    if sampler is None:
        sampler = graph_sampler(target.inputs, target.W)
    if config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.lr, config.steps, alpha=1e-3)
    else:
        lr = config.lr
    opt = optax.adam(lr)
    loss_fn = _objective(config, apply, sampler, target)
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, t):
        params, opt_state, prev, done, bad = carry
        loss, grads = value_and_grad(params, jax.random.fold_in(key, t))
        updates, new_state = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        ok = jnp.isfinite(loss) & ~done
        pick = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(ok, x, y), a, b)  # noqa: E731
        carry = (pick(new_params, params), pick(new_state, opt_state), pick(params, prev),
                 done | ~jnp.isfinite(loss), jnp.where(~jnp.isfinite(loss) & ~done, t, bad))
        return carry, loss

    @jax.jit
    def chunk(carry, ts):
        return jax.lax.scan(step, carry, ts)

    normalize = config.loss == "nt_xent"
    history: dict[str, list] = {"step": [], "train_loss": [], "pop_loss": [], "singular_values": [], "sine": [],
                                "alignment_u": [], "alignment_f": [], "prominence": []}

    def record(t, params, train_loss):
        m = representation_metrics(apply(params, target.inputs), target, normalize=normalize)
        history["step"].append(t)
        history["train_loss"].append(train_loss)
        for name in ("pop_loss", "singular_values", "sine", "alignment_u", "alignment_f", "prominence"):
            history[name].append(m[name])

    carry = (params, opt.init(params), params, jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))
    record(0, params, float("nan"))
    stopped_at, message = None, None
    bar = tqdm(total=config.steps, desc=desc, disable=not progress, leave=False)
    t0 = 0
    while t0 < config.steps:
        t1 = min(t0 + config.eval_every, config.steps)
        carry, losses = chunk(carry, jnp.arange(t0, t1, dtype=jnp.int32))
        bar.update(t1 - t0)
        if bool(carry[3]):
            stopped_at = int(carry[4])
            bad_loss = float(np.asarray(losses)[stopped_at - t0])
            message = (f"loss became {bad_loss} at step {stopped_at}; training stopped, keeping the parameters "
                       f"of step {stopped_at - 1} (the last finite loss)")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            params = carry[2]
            good = np.asarray(losses)[: stopped_at - t0]
            record(stopped_at - 1, params, float(np.mean(good)) if good.size else float("nan"))
            break
        params = carry[0]
        mean_loss = float(jnp.mean(losses))
        bar.set_postfix(loss=f"{mean_loss:.4g}")
        record(t1, params, mean_loss)
        t0 = t1
    bar.close()
    hist = {k: np.asarray(v) for k, v in history.items()}
    return TrainResult(params, hist, stopped_at, message)
