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

from theory._random import rng
from theory._types import Array, Labels, PRNGKeyArray, Weights
from theory.datamodel import Augmentation, DataModel, augment, check_finite
from theory.graph import check_weights
from theory.losses import nt_xent, spectral_contrastive_loss, spectral_loss_minibatch
from theory.representation import alignment, canonical_basis, normalized_adjacency, principal_angle_sines

LOSSES = ("spectral", "nt_xent")
NEGATIVES = ("independent", "in_batch")
SCHEDULES = ("cosine", "constant")

class Sampler(NamedTuple):
    """Where training pairs come from.

    ``noise(key, steps, batch)`` draws the randomness of all ``steps`` minibatches up
    front (a pytree with a leading axis of size ``steps``); ``sample(noise_t, batch)``
    turns one step's share into the inputs of B positive pairs and B negative pairs,
    ``(x, x_pos, x_a, x_b)``. Drawing up front keeps the PRNG and the sampling out
    of the compiled training step, which makes it much quicker to compile.
    """

    noise: Callable[[PRNGKeyArray, int, int], Any]
    sample: Callable[[Any, int], tuple[Array, Array, Array, Array]]


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
    W = np.asarray(check_weights(W), dtype=np.float64)
    degrees = W.sum(axis=1)
    cdf_pair = np.cumsum(W.ravel())
    cdf_marg = np.cumsum(degrees)
    n = W.shape[0]

    def draw(g, cdf, shape):
        # inverse-CDF sampling on the host
        u = g.random(shape) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)

    def noise(key, steps, batch):
        g = rng(key)
        flat = draw(g, cdf_pair, (steps, batch))
        i, j = flat // n, flat % n
        a, b = draw(g, cdf_marg, (steps, batch)), draw(g, cdf_marg, (steps, batch))
        return jnp.asarray(np.stack([i, j, a, b], axis=1).astype(np.int32))

    return Sampler(noise, functools.partial(_graph_pairs, inputs))


def _graph_pairs(inputs, idx, batch):
    """The inputs of one step's pairs from :func:`graph_sampler`'s indices (4, batch)."""
    if idx.shape != (4, batch):
        raise ValueError(f"graph sampler indices must have shape (4, {batch}), got {idx.shape}")
    return inputs[idx[0]], inputs[idx[1]], inputs[idx[2]], inputs[idx[3]]


def model_sampler(model: DataModel, aug: Augmentation) -> Sampler:
    """Pairs from the data model: two augmentations of one natural point x* ~ P (uniform);
    negatives are augmentations of two independently drawn natural points."""

    def noise(key, steps, batch):
        return jax.random.split(key, steps)

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

    return Sampler(noise, sample)


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
    if p < n_sub:
        raise ValueError(f"p must be >= K-bar={n_sub} (the proofs need p >= K-bar), got {p}")
    marginal, lam, V, F_min, min_loss = _closed_form(W, p)
    return Target(jnp.asarray(inputs), W, marginal, jnp.asarray(Y), int(n_sub), int(p), lam, V, F_min,
                  float(min_loss))


@functools.partial(jax.jit, static_argnums=1)
def _closed_form(W, p):
    """Eqs. 7-8 with the sqrt(w) weighting undone (dense eigh, small n), in one compiled function."""
    lam, V = jnp.linalg.eigh(normalized_adjacency(W))
    lam, V = lam[::-1][:p], V[:, ::-1][:, :p]
    V = canonical_basis(lam, V)  # F_min independent of the solver's basis of the repeated eigenvalue 1
    marginal = jnp.sum(W, axis=1) / jnp.sum(W)
    F_min = V * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :] / jnp.sqrt(marginal)[:, None]
    return marginal, lam, V, F_min, -jnp.sum(jnp.maximum(lam, 0.0) ** 2)


def linear_class_optimum(X: Array, target: Target) -> tuple[float, Array]:
    """The exact minimizer of the population spectral loss over linear encoders ``f(x) = W x``.

    With ``M = sqrt(w/S) X`` (n, d), the weighted outputs ``U = M W^T`` range over the
    matrices whose columns lie in span(M). With Q an orthonormal basis of it,
    ``||A-bar - Q Z Z^T Q^T||^2 = ||A-bar||^2 - ||Q^T A-bar Q||^2 + ||Q^T A-bar Q - Z Z^T||^2``,
    so ``Z`` holds the top-p eigenpairs of ``Q^T A-bar Q`` (clipped at 0) and the minimum
    is ``-sum max(mu_i, 0)^2``. Returns that minimum and the encoder outputs F (n, p).
    """
    min_loss, F = _linear_optimum(jnp.asarray(check_finite(X, "X")), target.W, target.marginal, target.p)
    return float(min_loss), F


@functools.partial(jax.jit, static_argnums=3)
def _linear_optimum(X, W, marginal, p):
    M = jnp.sqrt(marginal)[:, None] * X
    Q, _ = jnp.linalg.qr(M)
    mu, V = jnp.linalg.eigh(Q.T @ normalized_adjacency(W) @ Q)
    mu, V = mu[::-1][:p], V[:, ::-1][:, :p]
    mu = jnp.maximum(mu, 0.0)
    U = canonical_basis(mu, Q @ V) * jnp.sqrt(mu)[None, :]
    return -jnp.sum(mu**2), U / jnp.sqrt(marginal)[:, None]


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
    ``alignment_bias`` (on the span of the constant vector and the top K-bar - 1
    directions of the centred F: what a linear head with a bias sees),
    ``prominence`` (``sigma_{K-bar+1} / sigma_{K-bar}`` of U; 0 when p' = K-bar).
    """
    m = _metrics_core(jnp.asarray(F), target.W, target.marginal, target.Y, target.eigvecs[:, : target.n_sub],
                      jnp.asarray(bool(normalize)))
    s = np.asarray(m["singular_values"])
    k = target.n_sub
    out = {name: float(v) for name, v in m.items() if name != "singular_values"}
    out["singular_values"] = s
    out["prominence"] = float(s[k] / s[k - 1]) if s.shape[0] > k and s[k - 1] > 0 else 0.0
    return out


@jax.jit
def _metrics_core(F, W, marginal, Y, V_top, normalize):
    k = V_top.shape[1]
    pop_loss = spectral_contrastive_loss(F, W)
    F = jnp.where(normalize, F / jnp.maximum(jnp.linalg.norm(F, axis=1, keepdims=True), 1e-30), F)
    U = jnp.sqrt(marginal)[:, None] * F
    Vu, s = _top_left(U, k)
    Vf, _ = _top_left(F, k)
    n = F.shape[0]
    Vc, _ = _top_left(F - jnp.mean(F, axis=0), k - 1)
    Vb, _ = jnp.linalg.qr(jnp.concatenate([jnp.ones((n, 1), F.dtype) / jnp.sqrt(n), Vc], axis=1))
    return {
        "alignment_bias": alignment(Vb, Y),
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


@functools.lru_cache(maxsize=32)
def _jit(fun):
    """One jit wrapper per function, so repeated runs reuse its compilations."""
    return jax.jit(fun)


def _optimizer(config: TrainConfig):
    lr = optax.cosine_decay_schedule(config.lr, config.steps, alpha=1e-3) if config.schedule == "cosine" else config.lr
    return optax.adam(lr)


def _chunk(config: TrainConfig, apply, sampler: Sampler | None):
    """``chunk(carry, ts, noise, inputs, W)``: the training steps ``ts`` under ``lax.scan``, compiled.

    The vertex inputs and W are arguments, not constants of the compiled program, so that one
    compilation serves every graph and data draw of the same shapes (issue 22: the encoder checks
    train 16 encoders on graphs of one size). ``sampler`` None: pairs from the graph
    (:func:`graph_sampler` on ``inputs``); otherwise that sampler's ``sample``.
    """
    opt = _optimizer(config)

    def step(value_and_grad, carry, xs):
        t, noise = xs
        params, opt_state, prev, done, bad = carry
        loss, grads = value_and_grad(params, noise)
        updates, new_state = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        ok = jnp.isfinite(loss) & ~done
        pick = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(ok, x, y), a, b)  # noqa: E731
        carry = (pick(new_params, params), pick(new_state, opt_state), pick(params, prev),
                 done | ~jnp.isfinite(loss), jnp.where(~jnp.isfinite(loss) & ~done, t, bad))
        return carry, loss

    @jax.jit
    def chunk(carry, ts, noise, inputs, W):
        pairs = sampler or Sampler(None, functools.partial(_graph_pairs, inputs))
        value_and_grad = jax.value_and_grad(_objective(config, apply, pairs, inputs, W))
        return jax.lax.scan(functools.partial(step, value_and_grad), carry, (ts, noise))

    return chunk


@functools.lru_cache(maxsize=32)
def _graph_chunk(config: TrainConfig, apply):
    """:func:`_chunk` for pairs from the graph, one per (config, encoder): jit then caches it per shape."""
    return _chunk(config, apply, None)


class TrainResult(NamedTuple):
    """``params`` the final parameters (the last ones with a finite loss if training
    stopped); ``history`` a dict of arrays, one entry per evaluation; ``stopped_at``
    the step whose loss was not finite (None if training finished); ``message``."""

    params: Any
    history: dict[str, np.ndarray]
    stopped_at: int | None
    message: str | None


def _objective(config: TrainConfig, apply, sampler: Sampler, inputs: Array, W: Weights):
    def loss_fn(params, noise):
        if config.full_batch:
            return spectral_contrastive_loss(apply(params, inputs), W)
        x, xp, xa, xb = sampler.sample(noise, config.batch)
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
    on_chunk: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``params`` of ``apply`` with optax Adam on sampled pairs (or full batch).

    The randomness of every step is drawn from ``key`` up front (:class:`Sampler`),
    so results do not depend on ``eval_every``. A loss that is not finite stops
    training: the result keeps the parameters of the last step whose loss was finite
    (``theta_{t-1}`` when the loss at ``theta_t`` is NaN or inf), the message names
    step t, and a ``RuntimeWarning`` says the same.

    ``on_chunk(steps_done, mean_loss)``, if given, is called after every ``eval_every`` steps:
    progress display belongs to the caller (this module draws nothing).
    """
    n = target.inputs.shape[0]
    config.validate(n)
    for leaf in jax.tree_util.tree_leaves(params):
        check_finite(leaf, "params")
    if sampler is None:  # pairs from the graph: one compiled chunk for every graph and draw of these shapes
        sampler, chunk = graph_sampler(target.inputs, target.W), _graph_chunk(config, apply)
    else:
        chunk = _chunk(config, apply, sampler)
    opt = _optimizer(config)
    noise = jnp.zeros((config.steps,)) if config.full_batch else sampler.noise(key, config.steps, config.batch)

    normalize = config.loss == "nt_xent"
    history: dict[str, list] = {"step": [], "train_loss": [], "pop_loss": [], "singular_values": [], "sine": [],
                                "alignment_u": [], "alignment_f": [], "alignment_bias": [], "prominence": []}

    outputs = _jit(apply)

    def record(t, params, train_loss):
        m = representation_metrics(outputs(params, target.inputs), target, normalize=normalize)
        history["step"].append(t)
        history["train_loss"].append(train_loss)
        for name in ("pop_loss", "singular_values", "sine", "alignment_u", "alignment_f", "alignment_bias",
                     "prominence"):
            history[name].append(m[name])

    carry = (params, opt.init(params), params, jnp.asarray(False), jnp.asarray(-1, dtype=jnp.int32))
    record(0, params, float("nan"))
    stopped_at, message = None, None
    t0 = 0
    while t0 < config.steps:
        t1 = min(t0 + config.eval_every, config.steps)
        noise_chunk = jax.tree_util.tree_map(lambda a: a[t0:t1], noise)
        carry, losses = chunk(carry, jnp.arange(t0, t1, dtype=jnp.int32), noise_chunk, target.inputs, target.W)
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
        mean_loss = float(np.mean(np.asarray(losses)))
        record(t1, params, mean_loss)
        if on_chunk is not None:
            on_chunk(t1, mean_loss)
        t0 = t1
    hist = {k: np.asarray(v) for k, v in history.items()}
    return TrainResult(params, hist, stopped_at, message)
