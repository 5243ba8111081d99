"""Contrastive losses on the augmentation graph.

The spectral contrastive loss (Eq. 1, HaoChen et al. 2021):
``C(f) = -2 E_{x,x+}[f(x)^T f(x+)] + E_{x,x-}[(f(x)^T f(x-))^2]``.
On a finite graph, positive pairs (x, x+) are drawn with probability
``w_{x x+} / S`` (S = sum of all weights) and x, x- independently from the
marginal ``w_x / S``. With ``u_x = sqrt(w_x / S) f(x)`` the loss is exactly
``||A-bar - U U^T||_F^2 - ||A-bar||_F^2`` (:func:`matrix_factorization_loss`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory import _random
from theory._types import Array, Representation, Weights


def spectral_contrastive_loss(F: Representation, W: Weights) -> Array:
    """The population spectral contrastive loss of the representation ``F`` (rows f(x_i)) on graph W."""
    S = jnp.sum(W)
    P = W / S  # joint distribution of positive pairs
    w = jnp.sum(P, axis=1)  # marginal of a single augmentation
    G = F @ F.T
    return -2.0 * jnp.sum(P * G) + jnp.sum(w[:, None] * w[None, :] * G**2)


def matrix_factorization_loss(U: Representation, Abar: Weights) -> Array:
    """``||A-bar - U U^T||_F^2 - ||A-bar||_F^2``: equal to the spectral loss of
    ``f(x_i) = u_i / sqrt(w_i / S)`` (HaoChen et al., Lemma 3.2)."""
    return jnp.sum((Abar - U @ U.T) ** 2) - jnp.sum(Abar**2)


def representation_from_factor(U: Representation, W: Weights) -> Representation:
    """The encoder output ``f(x_i) = u_i / sqrt(w_i / S)`` that a factor U of A-bar stands for."""
    w = jnp.sum(W, axis=1) / jnp.sum(W)
    return U / jnp.sqrt(w)[:, None]


def nt_xent(z1: Array, z2: Array, temperature: float = 0.5) -> Array:
    """InfoNCE / NT-Xent as in SimCLR (Chen et al. 2020), the loss the paper's experiments use.

    ``z1[i]`` and ``z2[i]`` are the two views of example i (shape (B, d)). Each of the
    2B views has its partner as the positive and the other 2B - 2 views as negatives;
    similarities are cosines divided by ``temperature``. The mean over the 2B views.
    Not the spectral loss of the theory.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both have shape (B, d), got {z1.shape} and {z2.shape}")
    z = jnp.concatenate([z1, z2], axis=0)
    z = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    b = z1.shape[0]
    logits = (z @ z.T) / temperature
    logits = jnp.where(jnp.eye(2 * b, dtype=bool), -jnp.inf, logits)
    partner = jnp.concatenate([jnp.arange(b, 2 * b), jnp.arange(0, b)])
    log_prob = logits[jnp.arange(2 * b), partner] - jax.nn.logsumexp(logits, axis=1)
    return -jnp.mean(log_prob)


def spectral_loss_minibatch(z: Array, z_pos: Array, z_a: Array | None = None, z_b: Array | None = None) -> Array:
    """An unbiased minibatch estimate of the spectral contrastive loss (Eq. 1).

    ``z[b]``, ``z_pos[b]`` are the representations of B positive pairs ``(x, x+)``
    drawn i.i.d. with probability ``w_{x x+} / S``; the positive term is
    ``-2 mean_b z_b . z_pos_b``.

    Negative term, two unbiased forms:

    - ``z_a``, ``z_b`` given: B' pairs of independent draws from the marginal
      ``w_x / S``; the term is ``mean_b (z_a_b . z_b_b)^2``.
    - not given: the ``B (B - 1)`` cross pairs ``(z_a, z_pos_b)`` with ``a != b`` of the
      batch (as in HaoChen et al.'s code). Different pairs are independent and, W
      being symmetric, each end of a positive pair has the marginal law, so each
      cross pair is an independent draw ``(x, x-)``; their mean is unbiased.
    """
    if z.shape != z_pos.shape or z.ndim != 2:
        raise ValueError(f"z and z_pos must both have shape (B, p), got {z.shape} and {z_pos.shape}")
    pair = jnp.sum(z * z_pos, axis=1)  # z_b . z_pos_b
    positive = -2.0 * jnp.mean(pair)
    if (z_a is None) != (z_b is None):
        raise ValueError("give both z_a and z_b (independent negatives) or neither (in-batch negatives)")
    if z_a is not None:
        if z_a.shape != z_b.shape or z_a.ndim != 2:
            raise ValueError(f"z_a and z_b must both have shape (B', p), got {z_a.shape} and {z_b.shape}")
        return positive + jnp.mean(jnp.sum(z_a * z_b, axis=1) ** 2)
    b = z.shape[0]
    if b < 2:
        raise ValueError(f"in-batch negatives need a batch of at least 2 pairs, got {b}")
    # sum over all (a, b) of (z_a . z_pos_b)^2 = <z^T z, z_pos^T z_pos>_F: p x p Gram matrices, O(B p^2) rather
    # than the O(B^2 p) of the B x B products (issue 22); minus the B diagonal pairs a = b
    off = jnp.sum((z.T @ z) * (z_pos.T @ z_pos)) - jnp.sum(pair**2)
    return positive + off / (b * (b - 1))


class MinimizerCheck(NamedTuple):
    """Eqs. 7-8 checked on one graph (:func:`check_minimizer`).

    ``optimum`` ``-sum_{i<=p} max(lambda_i, 0)^2``; ``at_min`` the loss at f_min;
    ``grad_norm`` ``||grad loss(f_min)||``; ``min_excess`` the smallest
    ``loss(f_min + e) - loss(f_min)`` over the random perturbations ``e``; ``naive`` the loss
    of ``F* Sigma`` used directly as f (the sqrt(w_x) weighting dropped).
    """

    optimum: Array
    at_min: Array
    grad_norm: Array
    min_excess: Array
    naive: Array


def check_minimizer(W: Weights, lam, V, *, key, n_perturb: int = 64) -> MinimizerCheck:
    """Is ``f_min`` (from the top-p eigenpairs ``lam``, ``V`` of A-bar) the global minimizer of
    the spectral contrastive loss (Eqs. 7-8)? Its loss against the optimum, its gradient, and
    ``n_perturb`` random perturbations of relative size 1e-4 to 1 (log-spaced)."""
    if not (isinstance(n_perturb, int) and n_perturb >= 1):
        raise ValueError(f"n_perturb must be an int >= 1, got {n_perturb!r}")
    U = V * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :]
    f_min = representation_from_factor(U, W)
    loss_fn = lambda F: spectral_contrastive_loss(F, W)  # noqa: E731
    at_min = loss_fn(f_min)
    scale = jnp.linalg.norm(f_min) / jnp.sqrt(f_min.size)
    noise = _random.draw_each(jax.random.normal, _random.split(key, n_perturb), f_min.shape, f_min.dtype)
    sizes = jnp.geomspace(1e-4, 1.0, n_perturb)
    perturbed = jax.vmap(lambda z, s: loss_fn(f_min + s * scale * z))(noise, sizes)
    return MinimizerCheck(-jnp.sum(jnp.maximum(lam, 0.0) ** 2), at_min, jnp.linalg.norm(jax.grad(loss_fn)(f_min)),
                          jnp.min(perturbed) - at_min, loss_fn(U))
