"""Adversarial sub-class blocks: how tight a bound is beyond random graphs.

Within Assumption 4.1 at xi = 0 every sub-class block ``B`` (``m x m``, symmetric) has entries in
``[1, 1 + delta]``, so a column's entries differ by a factor <= 1 + delta (its realized delta,
``theory.graph.measure_delta``, is at most ``delta``). :func:`ascend_block` searches that set for a
block that makes one measured quantity of a bound as large as it can, by gradient ascent on
``B = 1 + delta * sigmoid(S)`` (``S`` symmetric: the parametrization keeps every iterate inside
the assumption, so no projection step is needed). A balanced partition of ``K-bar`` copies of the
block (``kron(I, B)``) is then a weight matrix of the same assumptions, measured by the same code
as the random graphs.

The scores are functions of the spectrum of the block's normalized adjacency
``A = D^{-1/2} B D^{-1/2}`` (:func:`block_spectrum`): its eigenvalues ``lambda_1 = 1 > lambda_2
>= ...`` and ``c_i = (u_i^T 1)^2``. The eigenvectors are held fixed in the gradient (the
first-order eigenvalue derivative ``u_i u_i^T``, well defined where eigenvalues repeat), except
the Perron vector, whose closed form ``u_1 = D^{1/2} 1 / ||D^{1/2} 1||`` is differentiated. The
score's value is exact; its gradient is a search direction. The search is a heuristic: what it
finds is a lower bound on the worst case, never a proof of tightness.

Search settings, fixed before any result: :data:`STEPS` Adam steps of size :data:`LR` from the
two-level construction (``theory.graph.extremal_graph``; logits +-:data:`INIT_LOGIT`) plus
N(0, :data:`INIT_NOISE`^2) noise on the logits; the best iterate (highest score) is returned.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory import _random
from theory._types import Array, PRNGKeyArray

STEPS = 150
LR = 0.1
INIT_LOGIT = 2.0
INIT_NOISE = 0.3


def block_spectrum(B: Array) -> tuple[Array, Array]:
    """``(lambda, c)`` of ``A = D^{-1/2} B D^{-1/2}``, descending, ``c_i = (u_i^T 1)^2``; see the module
    docstring for the gradient (exact values, eigenvectors other than the Perron vector held fixed)."""
    d = jnp.sum(B, axis=1)
    A = B / jnp.sqrt(d[:, None] * d[None, :])
    _, U = jnp.linalg.eigh(jax.lax.stop_gradient(A))
    U = U[:, ::-1]
    lam = jnp.einsum("ij,ik,kj->j", U, A, U)  # = the eigenvalues; derivative u_i^T dA u_i
    c = jnp.sum(U, axis=0) ** 2
    c1 = jnp.sum(jnp.sqrt(d)) ** 2 / jnp.sum(d)  # the Perron vector D^{1/2} 1 / ||.||, differentiated
    return lam, c.at[0].set(c1)


def two_level_logits(m: int, dtype=jnp.float64) -> Array:
    """Logits of the two-level block: +INIT_LOGIT among the first m // 2 points, -INIT_LOGIT elsewhere."""
    h = jnp.arange(m) < m // 2
    return jnp.where(h[:, None] & h[None, :], INIT_LOGIT, -INIT_LOGIT).astype(dtype)


def block_from_logits(S: Array, delta) -> Array:
    """``B = 1 + delta * sigmoid((S + S^T)/2)``: symmetric, entries in [1, 1 + delta]."""
    return 1.0 + delta * jax.nn.sigmoid(0.5 * (S + S.T))


def ascend_block(score, m: int, delta, args=(), *, key: PRNGKeyArray, steps: int = STEPS, lr: float = LR) -> Array:
    """The block of size ``m`` with entries in ``[1, 1 + delta]`` with the highest ``score`` found.

    ``score(lam, c, delta, *args) -> scalar`` (a module-level function: it is a static argument);
    ``delta`` and every entry of ``args`` may carry one leading batch axis of the same length,
    searched in parallel (``vmap``). Returns ``B`` of shape ``(m, m)`` or ``(batch, m, m)``.
    """
    if not (isinstance(m, int) and m >= 2):
        raise ValueError(f"m must be an int >= 2, got {m!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    delta = jnp.asarray(delta, dtype=jnp.float64)
    args = tuple(jnp.asarray(a) for a in args)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # jax.random.normal's default
    if delta.ndim == 0:
        return _ascend(_noise(key, m, dtype), delta, args, score=score, m=m, steps=steps, lr=lr)
    noise = _noise(_random.split(key, delta.shape[0]), m, dtype)
    return jax.vmap(lambda z, d, a: _ascend(z, d, a, score=score, m=m, steps=steps, lr=lr))(noise, delta, args)


def _noise(key, m: int, dtype):
    """The start's perturbation of the logits, ``INIT_NOISE`` times a standard normal (m, m) draw (one per key of
    a stack of keys)."""
    z = _random.draw(jax.random.normal, key, (m, m), dtype) if np.ndim(key) == 1 else \
        _random.draw_each(jax.random.normal, key, (m, m), dtype)
    return INIT_NOISE * (z if isinstance(z, jax.core.Tracer) else np.asarray(z))  # a host product: one rounding


@functools.partial(jax.jit, static_argnames=("score", "m", "steps", "lr"))
def _ascend(noise, delta, args, *, score, m, steps, lr):
    """One search from the two-level logits plus ``noise`` (:func:`_noise`)."""
    def value(S):
        lam, c = block_spectrum(block_from_logits(S, delta))
        return score(lam, c, delta, *args)

    grad = jax.value_and_grad(value)
    S0 = two_level_logits(m) + noise
    b1, b2, eps = 0.9, 0.999, 1e-8

    def step(carry, t):
        S, mu, nu, best, best_S = carry
        v, g = grad(S)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        better = v > best
        best, best_S = jnp.where(better, v, best), jnp.where(better, S, best_S)
        mu, nu = b1 * mu + (1 - b1) * g, b2 * nu + (1 - b2) * g * g
        mhat, nhat = mu / (1 - b1 ** (t + 1)), nu / (1 - b2 ** (t + 1))
        return (S + lr * mhat / (jnp.sqrt(nhat) + eps), mu, nu, best, best_S), None

    z = jnp.zeros_like(S0)
    init = (S0, z, z, jnp.asarray(-jnp.inf, S0.dtype), S0)
    (S, _, _, best, best_S), _ = jax.lax.scan(step, init, jnp.arange(steps, dtype=S0.dtype))
    last = value(S)
    return block_from_logits(jnp.where(last > best, S, best_S), delta)


# ----------------------------------------------------------------------------
# Scores: the measured side of a bound, as a function of one block's spectrum
# ----------------------------------------------------------------------------


def tail_sq(lam, c, delta):
    """Eq. 12 / Lemma A.4's: ``sum_{i>=2} lambda_i^2`` of the block."""
    return jnp.sum(lam[1:] ** 2)


def tail_sum(lam, c, delta, q):
    """Corollary A.6's: ``sum_{i=2}^{q} max(lambda_i, 0)`` over the block's top ``q`` (``q`` an int array: traced)."""
    i = jnp.arange(lam.shape[0])
    return jnp.sum(jnp.where((i >= 1) & (i < q), jnp.maximum(lam, 0.0), 0.0))


def _shrink(lam, beta):
    lp = jnp.maximum(lam, 0.0)
    return lp[None, :] / (lp[None, :] + beta[:, None])


def head_bias_ratio(lam, c, delta, betas, lead, lin, q):
    """Eq. 15's tightness on ``K-bar`` copies of the block (balanced, xi = 0) with ``q = p / K-bar`` of
    its eigenpairs in the representation: ``max_beta (bias^2 - lead) / lin``, where Eq. 13 gives
    ``bias^2 = 1 - (1/m) sum_{i<=q} (2 b_i - b_i^2) c_i`` (``K-bar/n = 1/m``)."""
    b = _shrink(lam, betas)
    keep = jnp.arange(lam.shape[0]) < q
    bias2 = 1.0 - jnp.sum(jnp.where(keep, (2 * b - b**2) * c, 0.0), axis=1) / lam.shape[0]
    return jnp.max((bias2 - lead) / lin)


def head_variance_ratio(lam, c, delta, betas, lead, lin, q):
    """App. A.3's variance bound's tightness, same setting: ``max_beta (variance - lead) / lin`` with
    ``variance = (1/m) sum_{i<=q} b_i^2`` at sigma = 1."""
    b = _shrink(lam, betas)
    keep = jnp.arange(lam.shape[0]) < q
    var = jnp.sum(jnp.where(keep, b**2, 0.0), axis=1) / lam.shape[0]
    return jnp.max((var - lead) / lin)


def replicate(B: Array, n_sub: int) -> Array:
    """``kron(I_{K-bar}, B)``: the weight matrix of a balanced partition with every block ``B`` (xi = 0)."""
    return jnp.kron(jnp.eye(n_sub, dtype=B.dtype), B)


def adversarial_graphs(part, deltas, scores, *, key: PRNGKeyArray) -> list[tuple[str, float, Array]]:
    """``(label, delta, W)`` for each ``(label, score, args)`` of ``scores`` and each delta: ``K-bar`` copies of
    the block :func:`ascend_block` finds (``args``: one value per delta). Balanced partitions only."""
    if not part.balanced:
        raise ValueError(f"part must have balanced sub-classes, got sizes {part.sizes}")
    out = []
    for k, (label, score, args) in zip(_random.split(key, len(scores)), scores):
        blocks = np.asarray(ascend_block(score, part.sizes[0], jnp.asarray(deltas, dtype=jnp.float64), args, key=k))
        out += [(label, float(d), replicate(B, part.n_sub)) for d, B in zip(deltas, blocks)]
    return out
