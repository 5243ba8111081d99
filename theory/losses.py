"""Contrastive losses on the augmentation graph.

The spectral contrastive loss (Eq. 1, HaoChen et al. 2021):
``C(f) = -2 E_{x,x+}[f(x)^T f(x+)] + E_{x,x-}[(f(x)^T f(x-))^2]``.
On a finite graph, positive pairs (x, x+) are drawn with probability
``w_{x x+} / S`` (S = sum of all weights) and x, x- independently from the
marginal ``w_x / S``. With ``u_x = sqrt(w_x / S) f(x)`` the loss is exactly
``||A-bar - U U^T||_F^2 - ||A-bar||_F^2`` (:func:`matrix_factorization_loss`).
"""

from __future__ import annotations

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
