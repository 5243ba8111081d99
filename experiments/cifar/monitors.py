"""The per-epoch monitors of SimCLR pre-training: the k-NN accuracy of the encoder's features and the
cheap spectral numbers of those features (Eq. 25's top-K alignment, RankMe, the prominent count)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MONITOR_KEYS = ("spec_alignment_K", "spec_rankme", "spec_prominent", "spec_gap_K")


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    k: int,
    num_classes: int,
    temperature: float = 0.1,
) -> float:
    """Weighted k-NN accuracy on cosine similarity (Wu et al. 2018, the usual SimCLR monitor):
    each of the k most similar training points votes for its label with weight exp(cos / t)."""
    k = min(k, train_features.shape[0])
    tr = jnp.asarray(train_features, jnp.float32)
    te = jnp.asarray(test_features, jnp.float32)
    tr = tr / jnp.maximum(jnp.linalg.norm(tr, axis=1, keepdims=True), 1e-12)
    te = te / jnp.maximum(jnp.linalg.norm(te, axis=1, keepdims=True), 1e-12)
    onehot = jax.nn.one_hot(jnp.asarray(train_labels), num_classes, dtype=jnp.float32)
    correct = 0
    for start in range(0, te.shape[0], 1024):
        sims = te[start : start + 1024] @ tr.T
        top, idx = jax.lax.top_k(sims, k)
        votes = jnp.einsum("bk,bkc->bc", jnp.exp(top / temperature), onehot[idx])
        pred = np.asarray(jnp.argmax(votes, axis=1))
        correct += int(np.sum(pred == np.asarray(test_labels[start : start + 1024])))
    return correct / te.shape[0]



def monitor_row(features: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """The cheap spectral numbers of the k-NN monitor's training features, for an epoch row of
    ``clspec cifar pretrain``: top-K alignment A(K) (Eq. 25), RankMe, the prominent count and
    ``sigma_K / sigma_{K+1}`` (uncentred). Empty when there are too few points or dimensions."""
    from theory import spectrum as sp
    from theory.tolerances import FLOAT32_FLOOR

    F = np.asarray(features, np.float64)
    if F.ndim != 2 or num_classes + 1 > min(F.shape) or not np.isfinite(F).all():
        return {}
    S = sp.spectral_summary(jnp.asarray(F), np.asarray(labels), num_classes, floor=FLOAT32_FLOOR)
    return {"spec_alignment_K": round(float(S.alignment_K), 6), "spec_rankme": round(float(S.rankme), 4),
            "spec_prominent": int(S.prominent), "spec_gap_K": round(float(S.gap_K), 4)}
