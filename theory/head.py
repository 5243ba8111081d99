"""The linear head on a representation, under label noise (Eqs. 2-3 and 13).

- :func:`ridge_head`: ``W-hat = (F^T F + beta I)^{-1} F^T Y-hat``, the minimizer of
  ``1/2 ||Y-hat - F W||_F^2 + beta/2 ||W||_F^2`` (Eq. 3).
- :func:`shrinkage` and :func:`spectral_predictions`: the same predictions in the
  representation's singular basis, ``F W-hat = F* B F*^T Y-hat`` with
  ``b_i = lambda_i / (lambda_i + beta)`` and ``lambda_i = s_i^2`` (Section 2).
- :func:`bias_variance`: the exact decomposition of Eq. 13 of the expected risk under
  Gaussian label noise, and :func:`expected_risk`, the same expectation computed from the
  hat matrix without the eigen-decomposition (so the two can be compared).
- :func:`train_head`: full-batch gradient descent or minibatch SGD on the same MSE
  objective or on softmax cross-entropy, recording training accuracy against the clean
  and the noisy labels over iterations.
- :func:`information_nuisance`: the split of a label vector over the representation's
  top-k left singular space ("information") and its complement ("nuisance").
- Baseline representations for the contrast the paper draws: :func:`random_features`
  (Gaussian, same shape) and :func:`mixture_inputs` (raw inputs from a Gaussian mixture).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory import _random
from theory._types import Array, Eigvals, Eigvecs, Labels, PRNGKeyArray, Representation
from theory.graph import Partition


def _check_nonnegative(name: str, value):
    """Refuse a negative Python-level ``value``; arrays and tracers pass through unchecked,
    so every public function here traces under ``jit``, ``vmap`` and ``grad``."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _check_beta(beta):
    return _check_nonnegative("beta", beta)


def _check_sigma(sigma):
    return _check_nonnegative("sigma", sigma)


# ----------------------------------------------------------------------------
# Ridge head: Eq. 3 and its spectral form.
# ----------------------------------------------------------------------------


def ridge_head(F: Representation, Y: Labels, beta: float) -> Array:
    """``W-hat = (F^T F + beta I)^{-1} F^T Y`` (Eq. 3). ``beta = 0`` needs full column rank F."""
    return _ridge_head(F, Y, _check_beta(beta))


@jax.jit
def _ridge_head(F, Y, beta):
    p = F.shape[1]
    return jnp.linalg.solve(F.T @ F + beta * jnp.eye(p, dtype=F.dtype), F.T @ Y)



def shrinkage(eigvals: Eigvals, beta: float) -> Eigvals:
    """``b_i = lambda_i / (lambda_i + beta)`` with ``lambda_i = max(eigval_i, 0)``; 0 where lambda_i = 0.

    The eigenvalues are those of ``F F^T`` (the top eigenvalues of A-bar for f_min).
    """
    return _shrinkage(jnp.asarray(eigvals), _check_beta(beta))


@jax.jit
def _shrinkage(eigvals, beta):
    lam = jnp.maximum(eigvals, 0.0)
    den = lam + beta
    return jnp.where(den > 0, lam / jnp.where(den > 0, den, 1.0), 0.0)


@jax.jit
def singular_basis(F: Representation) -> tuple[Eigvecs, Eigvals]:
    """Left singular vectors V (n, p) and ``lambda_i = s_i^2`` of F, descending."""
    U, s, _ = jnp.linalg.svd(F, full_matrices=False)
    return U, s**2


def spectral_predictions(V: Eigvecs, eigvals: Eigvals, Y: Labels, beta: float) -> Labels:
    """``F* B F*^T Y`` with ``B = diag(b_i)`` (Section 2): the ridge head's predictions ``F W-hat``."""
    return _spectral_predictions(V, jnp.asarray(eigvals), Y, _check_beta(beta))


@jax.jit
def _spectral_predictions(V, eigvals, Y, beta):
    b = _shrinkage(eigvals, beta)
    return V @ (b[:, None] * (V.T @ Y))


class BiasVariance(NamedTuple):
    """Eq. 13: ``E (1/n)||Y - F W-hat||_F^2 = bias2 + variance``."""

    bias2: Array
    variance: Array

    @property
    def risk(self) -> float:
        return self.bias2 + self.variance


def bias_variance(V: Eigvecs, eigvals: Eigvals, Y: Labels, beta: float, sigma: float) -> BiasVariance:
    """Eq. 13, for any representation with orthonormal left singular vectors V.

    ``bias2 = (1/n)||Y||_F^2 + (1/n) sum_{i,j} (b_i^2 - 2 b_i)(v_i^T y_j)^2`` (the first
    term is 1 for one-hot Y) and ``variance = (sigma^2/n) sum_i b_i^2``, for Gaussian label
    noise with columns ``N(0, sigma^2 I / K)``.
    """
    bias2, variance = _bias_variance(V, jnp.asarray(eigvals), Y, _check_beta(beta), _check_sigma(sigma))
    return BiasVariance(bias2, variance)


@jax.jit
def _bias_variance(V, eigvals, Y, beta, sigma):
    b = _shrinkage(eigvals, beta)
    n = Y.shape[0]
    proj2 = jnp.sum((V.T @ Y) ** 2, axis=1)  # sum_j (v_i^T y_j)^2
    bias2 = jnp.sum(Y**2) / n + jnp.sum((b**2 - 2 * b) * proj2) / n
    variance = sigma**2 * jnp.sum(b**2) / n
    return bias2, variance


def expected_risk(H: Array, Y: Labels, sigma: float) -> BiasVariance:
    """``E (1/n)||Y - H (Y + dY)||_F^2`` for a linear smoother H, computed directly:
    ``(1/n)||(I - H) Y||_F^2 + (sigma^2/n)||H||_F^2`` (each of the K columns of dY has
    covariance ``sigma^2 I / K``). For the ridge head ``H = F (F^T F + beta I)^{-1} F^T``.
    """
    sigma = _check_sigma(sigma)
    n = Y.shape[0]
    bias2, hh = _risk_terms(H, Y)
    return BiasVariance(bias2 / n, sigma**2 * hh / n)


@jax.jit
def _risk_terms(H, Y):
    return jnp.sum((Y - H @ Y) ** 2), jnp.sum(H**2)


def ridge_hat(F: Representation, beta: float) -> Array:
    """The hat matrix ``H = F (F^T F + beta I)^{-1} F^T`` of the ridge head (Eq. 3)."""
    return _ridge_hat(F, _check_beta(beta))


@jax.jit
def _ridge_hat(F, beta):
    p = F.shape[1]
    return F @ jnp.linalg.solve(F.T @ F + beta * jnp.eye(p, dtype=F.dtype), F.T)


def monte_carlo_risk(F: Representation, Y: Labels, beta, sigma, *, key: PRNGKeyArray, trials: int) -> Array:
    """The Monte-Carlo side of Eq. 13: ``(1/n)||Y - H (Y + dY_t)||_F^2`` for ``trials`` independent draws of
    Gaussian label noise ``dY_t`` (columns ``N(0, sigma^2 I / K)``), with ``H`` the ridge hat matrix of ``F``
    at ``beta``. Returns the per-trial risks, shape ``(trials,)``; their mean estimates
    :func:`bias_variance`'s ``bias2 + variance``. One ``vmap`` over the trials' keys (split from
    ``key``); traces in ``beta`` and ``sigma`` (so a grid of settings is one more ``vmap``)."""
    if not (isinstance(trials, int) and trials >= 2):
        raise ValueError(f"trials must be an int >= 2, got {trials!r}")
    return _monte_carlo_risk(F, Y, _check_beta(beta), _check_sigma(sigma), key, trials)


@partial(jax.jit, static_argnums=(5,))
def _monte_carlo_risk(F, Y, beta, sigma, key, trials):
    H = _ridge_hat(F, beta)
    n, K = Y.shape

    def one(k):
        dY = jax.random.normal(k, (n, K), dtype=Y.dtype) / jnp.sqrt(jnp.asarray(K, Y.dtype))
        return jnp.sum((Y - H @ (Y + sigma * dY)) ** 2) / n

    return jax.vmap(one)(jax.random.split(key, trials))


# ----------------------------------------------------------------------------
# Accuracy.
# ----------------------------------------------------------------------------


def correct(scores: Array, labels, *, margin: float = 1e-9) -> Array:
    """Per point: does the score of ``labels[i]`` beat every other class by more than ``margin``
    (relative to the largest |score|)? Ties count as wrong, so a tie is never a lucky hit."""
    return _correct(jnp.asarray(scores), jnp.asarray(labels), margin)


@jax.jit
def _correct(scores, labels, margin):
    own = jnp.take_along_axis(scores, labels[:, None], axis=1)[:, 0]
    other = jnp.max(jnp.where(jax.nn.one_hot(labels, scores.shape[1], dtype=bool), -jnp.inf, scores), axis=1)
    tol = margin * jnp.maximum(jnp.max(jnp.abs(scores)), 1e-300)
    return own - other > tol


def recovery(V: Eigvecs, eigvals: Eigvals, Y_noisy: Labels, clean_labels, beta) -> Array:
    """Theorem 4.5's quantity: the fraction of training points whose clean label strictly wins
    under the ridge head's predictions ``F* B F*^T Y-hat`` (ties count as wrong, see :func:`correct`).

    Traceable in every argument, so a sweep over ``beta`` or over a stack of ``Y_noisy`` is a ``jax.vmap``.
    """
    Z = spectral_predictions(V, eigvals, Y_noisy, _check_beta(beta))
    return jnp.mean(_correct(Z, jnp.asarray(clean_labels), 1e-9).astype(Z.dtype))


def recovery_boundary(alpha, recovered) -> float:
    """The largest mislabeled fraction up to which every flip of a sweep recovers all labels:
    ``max a`` such that ``recovered[i]`` holds for every ``alpha[i] <= a`` (0 when the smallest fails).
    ``alpha`` the realized per-sub-class fractions, ``recovered`` booleans (recovery == 1). Host-side."""
    alpha, recovered = np.asarray(alpha, dtype=float), np.asarray(recovered, dtype=bool)
    order = np.argsort(alpha, kind="stable")
    a, ok = alpha[order], recovered[order]
    bad = np.nonzero(~ok)[0]
    if bad.size == 0:
        return float(a[-1]) if a.size else 0.0
    below = a[a < a[bad[0]]]  # every alpha strictly below the first failing one
    return float(below[-1]) if below.size else 0.0


def accuracy(scores: Array, labels, *, margin: float = 1e-9) -> Array:
    """Fraction of points whose own label strictly wins (see :func:`correct`). Traceable."""
    c = correct(scores, labels, margin=margin)
    return jnp.mean(c.astype(jnp.result_type(float)))


# ----------------------------------------------------------------------------
# Gradient descent / SGD.
# ----------------------------------------------------------------------------


class Trajectory(NamedTuple):
    """Training accuracy over iterations. ``steps[t]`` is the iteration after which the
    accuracies were taken (0 = initialization W = 0); ``fit_flipped[t]`` is the fraction
    of mislabeled points predicted with their noisy label (NaN when none is mislabeled)."""

    steps: Array
    acc_clean: Array
    acc_noisy: Array
    fit_flipped: Array
    loss: Array
    W: Array


def _objective(W, F, T, beta, loss):
    Z = F @ W
    if loss == "mse":
        data = 0.5 * jnp.sum((T - Z) ** 2)
    else:
        data = -jnp.sum(T * jax.nn.log_softmax(Z, axis=1))
    return data + 0.5 * beta * jnp.sum(W**2)


@partial(jax.jit, static_argnames=("loss", "steps", "batch_size"))
def _run(F, T, clean, noisy, beta, lr, key, *, loss, steps, batch_size):
    n = F.shape[0]
    W0 = jnp.zeros((F.shape[1], T.shape[1]), F.dtype)
    flipped = clean != noisy
    n_flip = jnp.sum(flipped)

    def metrics(W):
        Z = F @ W
        c = _correct(Z, clean, 1e-9)
        h = _correct(Z, noisy, 1e-9)
        fit = jnp.where(n_flip > 0, jnp.sum(h & flipped) / jnp.maximum(n_flip, 1), jnp.nan)
        return jnp.mean(c.astype(F.dtype)), jnp.mean(h.astype(F.dtype)), fit.astype(F.dtype), _objective(W, F, T, beta, loss)

    def step(W, k):
        if batch_size is None:
            g = jax.grad(_objective)(W, F, T, beta, loss)
        else:
            idx = jax.random.choice(k, n, (batch_size,), replace=False)
            # unbiased minibatch estimate of the full objective's gradient
            g = jax.grad(lambda W_: (n / batch_size) * _objective(W_, F[idx], T[idx], 0.0, loss)
                         + 0.5 * beta * jnp.sum(W_**2))(W)
        W = W - lr * g
        return W, metrics(W)

    keys = jax.random.split(key, steps)
    W, hist = jax.lax.scan(step, W0, keys)
    first = metrics(W0)
    hist = tuple(jnp.concatenate([jnp.asarray(f)[None], h]) for f, h in zip(first, hist))
    return W, hist


def train_head(
    F: Representation,
    Y_noisy: Labels,
    clean_labels,
    *,
    beta: float = 0.0,
    loss: str = "mse",
    steps: int = 1000,
    lr: float | None = None,
    batch_size: int | None = None,
    key: PRNGKeyArray | None = None,
) -> Trajectory:
    """Gradient descent (or SGD with ``batch_size``) on the linear head from ``W = 0``.

    Objective: ``1/2 ||Y-hat - F W||_F^2 + beta/2 ||W||_F^2`` (``loss="mse"``, Eq. 2) or
    ``-sum_i y-hat_i . log softmax(F W)_i + beta/2 ||W||_F^2`` (``loss="ce"``, soft targets
    ``Y-hat``). ``lr`` defaults to ``1 / (s_max(F)^2 + beta)``, the reciprocal of the MSE
    objective's smoothness constant (so GD on MSE converges to the ridge solution of Eq. 3).
    Accuracy is measured against ``clean_labels`` and against ``argmax Y-hat``.
    """
    beta = _check_beta(beta)
    if loss not in ("mse", "ce"):
        raise ValueError(f"loss must be 'mse' or 'ce', got {loss!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n = F.shape[0]
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, n={n}], got {batch_size}")
    if batch_size is not None and key is None:
        raise ValueError("SGD (batch_size given) needs a PRNG key")
    if lr is None:
        lr = 1.0 / (_top_gram_eigval(F) + beta)
    elif not isinstance(lr, jax.Array) and not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    key = jax.random.PRNGKey(0) if key is None else key
    clean = jnp.asarray(clean_labels)
    noisy = jnp.argmax(Y_noisy, axis=1)
    W, (acc_c, acc_n, fit, obj) = _run(
        F, jnp.asarray(Y_noisy, F.dtype), clean, noisy, beta, lr, key, loss=loss, steps=int(steps), batch_size=batch_size
    )
    return Trajectory(jnp.arange(steps + 1), acc_c, acc_n, fit, obj, W)


# ----------------------------------------------------------------------------
# Information / nuisance split (Oymak et al. 2019; the paper's App. C, Table 4).
# ----------------------------------------------------------------------------


class Split(NamedTuple):
    """``||Pi_I(y)||`` and ``||Pi_N(y)||`` with ``||Pi_I||^2 + ||Pi_N||^2 = ||y||^2``;
    ``coefficients`` are the ``u_i^T y`` (Frobenius over columns) along each singular direction."""

    information: Array
    nuisance: Array
    coefficients: Array


def information_nuisance(F: Representation, Y: Array, k: int) -> Split:
    """Split Y over the top-k left singular space of F (information) and its complement in R^n.

    The complement includes directions with small singular values and F's null space,
    which a linear head on F learns slowly or never.
    """
    n, p = F.shape
    if not 1 <= k <= min(n, p):
        raise ValueError(f"k must be in [1, min(n, p)={min(n, p)}], got {k}")
    coef, total = _split(F, jnp.asarray(Y).reshape(n, -1))
    info2 = jnp.sum(coef[:k] ** 2)
    return Split(jnp.sqrt(info2), jnp.sqrt(jnp.maximum(total - info2, 0.0)), coef[:p])


@jax.jit
def _split(F, Y2):
    # eigenvectors of F F^T, descending: the left singular vectors of F (then its null space)
    _, U = jnp.linalg.eigh(F @ F.T)
    U = U[:, ::-1]
    return jnp.sqrt(jnp.sum((U.T @ Y2) ** 2, axis=1)), jnp.sum(Y2**2)


@jax.jit
def _top_gram_eigval(F):
    """``s_max(F)^2``, the largest eigenvalue of ``F^T F``."""
    return jnp.linalg.eigvalsh(F.T @ F)[-1]


# ----------------------------------------------------------------------------
# Baseline representations for the contrast.
# ----------------------------------------------------------------------------


def random_features(n: int, p: int, *, key: PRNGKeyArray, frobenius: float | None = None) -> Representation:
    """Gaussian features of shape (n, p): a flat spectrum with no sub-class structure.

    With ``frobenius`` the matrix is rescaled to that Frobenius norm (e.g. that of the CL
    representation, so ``beta`` means the same on both).
    """
    G = _random.draw(jax.random.normal, key, (n, p), jnp.float64)
    if frobenius is None:
        return G
    if isinstance(G, jax.core.Tracer) or isinstance(frobenius, jax.core.Tracer):
        return G * (frobenius / jnp.sqrt(jnp.sum(G**2)))
    return _rescale(G, frobenius)


@jax.jit
def _rescale(G, frobenius):
    """The rescaling compiled for concrete arrays, rounded as evaluated operation by operation (the barrier: no
    ``rsqrt``; see ``theory.representation._normalized_adjacency``)."""
    return G * (frobenius / jax.lax.optimization_barrier(jnp.sqrt(jnp.sum(G**2))))


def mixture_inputs(part: Partition, d: int, *, key: PRNGKeyArray, spread: float = 1.0) -> Representation:
    """Raw inputs: ``x_i = mu_{kbar(i)} + eps_i`` with sub-class centers ``mu ~ N(0, I_d/d)``
    (norm about 1) and ``eps_i ~ N(0, spread^2 I_d / d)`` (norm about ``spread``), shape (n, d).

    The sub-class structure is there but buried in per-point variation, as in raw pixels.
    """
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    _check_nonnegative("spread", spread)
    k_mu, k_eps = _random.split(key)
    mu = _random.draw(jax.random.normal, k_mu, (part.n_sub, d), jnp.float64)
    eps = _random.draw(jax.random.normal, k_eps, (part.n, d), jnp.float64)
    return _mixture(mu, eps, jnp.asarray(part.sub_of_point), spread, np.sqrt(d))


@jax.jit
def _mixture(mu, eps, sub, spread, root_d):
    return (mu / root_d)[sub] + spread * eps / root_d
