"""Contrastive losses on the augmentation graph.

The spectral contrastive loss (Eq. 1, HaoChen et al. 2021):
``C(f) = -2 E_{x,x+}[f(x)^T f(x+)] + E_{x,x-}[(f(x)^T f(x-))^2]``.
On a finite graph, positive pairs (x, x+) are drawn with probability
``w_{x x+} / S`` (S = sum of all weights) and x, x- independently from the
marginal ``w_x / S``. With ``u_x = sqrt(w_x / S) f(x)`` the loss is exactly
``||A-bar - U U^T||_F^2 - ||A-bar||_F^2`` (:func:`matrix_factorization_loss`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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
