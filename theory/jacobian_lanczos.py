"""The matrix-free top of a Jacobian's spectrum (Section 4.2, Appendix C, Table 4): ``v -> J J^T v`` by
one vjp and one jvp per block of points (:func:`gram_matvec`), Lanczos with full
reorthogonalization whose whole state is a :class:`LanczosState` a caller can save and resume from
(Golub & Van Loan, Alg. 10.1.1), the residual ``||G v - lambda v||`` of every returned pair, and
``||J J^T||_F`` by deflated Hutchinson. Why a host-side driver rather than ``matfree``: see
:mod:`theory.jacobian`."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory._types import Array, PRNGKeyArray
from theory.jacobian import Model, check_forward_mode


def gram_matvec(model: Model, x: Array, block: int) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> G v = J (J^T v)`` for v in R^{nK}, one vjp and one jvp per block of points.

    J^T v = sum_b vjp_b(v_b) (a P-vector), then (J u)_b = jvp_b(u). Memory: one block's
    activations and two P-vectors. Needs forward mode (see :func:`check_forward_mode`).
    """
    check_forward_mode(model, x)
    n, K, dt = len(x), model.K, model.theta.dtype

    @jax.jit
    def jt_v(theta, xb, vb):
        _, pull = jax.vjp(lambda t: model.f(t, xb), theta)
        return pull(vb.astype(dt))[0]

    @jax.jit
    def j_u(theta, xb, u):
        return jax.jvp(lambda t: model.f(t, xb), (theta,), (u.astype(dt),))[1]

    def matvec(v):
        v = jnp.asarray(v).reshape(n, K)
        u = sum(jt_v(model.theta, x[s : s + block], v[s : s + block]) for s in range(0, n, block))
        out = [j_u(model.theta, x[s : s + block], u) for s in range(0, n, block)]
        return np.asarray(jnp.concatenate(out).reshape(-1), dtype=np.float64 if jax.config.jax_enable_x64 else None)

    return matvec


class LanczosState(NamedTuple):
    """Lanczos with full reorthogonalization after ``len(alpha)`` steps: orthonormal basis rows
    ``Q`` (steps + 1, dim), tridiagonal diagonal ``alpha`` and off-diagonal ``beta`` (host numpy)."""

    Q: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray


def lanczos_start(dim: int, *, key: PRNGKeyArray) -> LanczosState:
    """A random unit start vector (Gaussian, drawn from ``key``)."""
    q = np.asarray(jax.random.normal(key, (dim,), jnp.float32), dtype=np.float64)
    return LanczosState((q / np.linalg.norm(q))[None], np.zeros(0), np.zeros(0))


def lanczos_step(state: LanczosState, matvec: Callable) -> LanczosState:
    """One step of Golub & Van Loan Alg. 10.1.1, reorthogonalized twice against all of Q."""
    Q, alpha, beta = state
    w = np.asarray(matvec(Q[-1]), dtype=np.float64)
    a = float(Q[-1] @ w)
    w = w - a * Q[-1] - (beta[-1] * Q[-2] if len(beta) else 0.0)
    for _ in range(2):
        w = w - Q.T @ (Q @ w)
    bnorm = float(np.linalg.norm(w))
    if bnorm < 1e-300:  # invariant subspace found: restart orthogonally
        w = np.random.default_rng(len(alpha)).standard_normal(Q.shape[1])
        w -= Q.T @ (Q @ w)
        q_next, bnorm = w / np.linalg.norm(w), 0.0
    else:
        q_next = w / bnorm
    return LanczosState(np.vstack([Q, q_next]), np.append(alpha, a), np.append(beta, bnorm))


def ritz_pairs(state: LanczosState, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-``k`` Ritz values (descending) and Ritz vectors (dim, k) of a Lanczos state."""
    m = len(state.alpha)
    if k > m:
        raise ValueError(f"k = {k} Ritz pairs need at least k Lanczos steps, got {m}")
    T = np.diag(state.alpha) + np.diag(state.beta[: m - 1], 1) + np.diag(state.beta[: m - 1], -1)
    theta, S = np.linalg.eigh(T)
    order = np.argsort(theta)[::-1][:k]
    return theta[order], state.Q[:m].T @ S[:, order]


def ritz_residuals(matvec: Callable, lam: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(||G v_i - lambda_i v_i||, G V)``, each product applied explicitly (k matvecs)."""
    GV = np.stack([np.asarray(matvec(V[:, i]), dtype=np.float64) for i in range(V.shape[1])], axis=1)
    return np.linalg.norm(GV - V * lam[None, :], axis=0), GV


def lanczos(
    matvec: Callable, dim: int, k: int, *, key: PRNGKeyArray, steps: int | None = None,
    callback: Callable[[LanczosState], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` eigenpairs of the PSD operator ``matvec`` on R^dim: ``(lambda, V, residuals)``.

    ``steps`` Lanczos steps (default min(dim, max(3k, k + 20))), then the residuals
    ||G v - lambda v|| by k more products. ``callback(state)`` after each step.
    """
    if not 1 <= k < dim:
        raise ValueError(f"k must be in [1, nK) = [1, {dim}), got {k}")
    steps = min(dim, steps or max(3 * k, k + 20))
    state = lanczos_start(dim, key=key)
    for _ in range(steps):
        state = lanczos_step(state, matvec)
        if callback is not None:
            callback(state)
    lam, V = ritz_pairs(state, k)
    res, _ = ritz_residuals(matvec, lam, V)
    return lam, V, res


def gram_fro_deflated(
    matvec: Callable, V: np.ndarray, lam: np.ndarray, *, key: PRNGKeyArray, samples: int,
) -> tuple[float, float]:
    """||G||_F estimated as sqrt(sum lambda_top^2 + ||G_perp||_F^2), ``(estimate, std error)``.

    G_perp = (I - V V^T) G (I - V V^T) and ||G_perp||_F^2 = E ||G_perp z||^2 for Rademacher z
    (Hutchinson's estimator on G_perp^2, deflated by the top pairs as in Hutch++). Exact up to
    the Monte-Carlo error of ``samples`` draws when V holds exact eigenvectors; the standard
    error returned is that of the mean, propagated to ||G||_F.
    """
    dim = V.shape[0]
    z = np.asarray(jax.random.rademacher(key, (samples, dim), jnp.float32), dtype=np.float64)
    vals = []
    for zi in z:
        zp = zi - V @ (V.T @ zi)
        g = np.asarray(matvec(zp), dtype=np.float64)
        g = g - V @ (V.T @ g)
        vals.append(float(g @ g))
    top = float(np.sum(lam**2))
    mean = float(np.mean(vals))
    se = float(np.std(vals, ddof=1) / np.sqrt(samples)) if samples > 1 else float("inf")
    est = math.sqrt(top + mean)
    return est, se / (2 * est)
