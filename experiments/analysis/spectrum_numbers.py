"""The numbers ``clspec spectrum`` reports for each representation F (n x d) of the training images:
singular values (uncentred and centred) with the prominent count, the alignment of Eq. 25 for every
k, the information / nuisance split of the clean labels and of the label noise, RankMe, effective
rank, alpha-ReQ, and the ridge head of Eq. 3 on the noisy labels against Theorem 4.5's threshold."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from theory.tolerances import FLOAT32_FLOOR

# Theorem 4.5's head: one beta for the recovery-vs-alpha curve, fixed before any run. With F
# scaled to s_1 = 1 it is C37's flip_beta (checks/head.py), small against every direction the
# head should use and large against round-off.
BETA = 1e-3
# The beta path: C42's contrast_betas (checks/head.py), 1e-6 .. 10.
BETAS = tuple(float(b) for b in np.logspace(-6, 1, 15))
# Noise rates of the recovery-vs-alpha curve.
ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 0.95, 0.1))
# Wider representations (raw pixels, d = 3072) get their SVD from the Gram matrix (theory.spectrum.basis,
# method="gram"): measured several times faster on 2 cores; exact above 1e-7 s_1. ResNet features (d = 64)
# use LAPACK's SVD, accurate for every singular value.
GRAM_MIN_D = 512


@dataclasses.dataclass(frozen=True)
class Settings:
    noise: str
    noise_seed: int
    beta: float
    betas: tuple
    alphas: tuple
    k: int | None
    seed: int



def analyse_all(reps: dict, labels: dict, settings: Settings, *, progress: bool = False) -> dict:
    """Every representation's numbers (see :func:`analyse`) plus the noise that was used (in float64: the
    caller has called :func:`experiments.common.precision.use_float64`)."""
    from experiments.cifar.noise import make_noisy_labels, parse_noise_spec

    K = int(labels["num_classes"])
    clean = labels["train"]
    d_min = min(r["train"].shape[1] for r in reps.values())
    n = len(clean)
    k = settings.k if settings.k is not None else K
    if k > min(n, d_min):
        raise ValueError(f"--k must be <= min(n, d) = {min(n, d_min)} (d of the narrowest representation), got {k}")
    if K + 1 > min(n, d_min):
        raise ValueError(f"the number of classes K={K} must be < min(n, d) = {min(n, d_min)}")
    if "noisy" in labels:
        noisy = labels["noisy"]
        noise = {"spec": "given", "rate": float(np.mean(noisy != clean))}
        curve = []
    else:
        noisy_l = make_noisy_labels(clean, settings.noise, num_classes=K, seed=settings.noise_seed)
        noisy = noisy_l.labels
        noise = noisy_l.summary()
        kind, _ = parse_noise_spec(settings.noise)
        kind = "sym" if kind == "none" else kind
        curve = [(a, make_noisy_labels(clean, f"{kind}:{a}", num_classes=K, seed=settings.noise_seed).labels)
                 for a in settings.alphas]
        noise["curve_kind"] = kind
    out = {"num_classes": K, "n_train": n, "n_test": None if labels.get("test") is None else len(labels["test"]),
           "k": k, "noise": noise, "settings": dataclasses.asdict(settings), "representations": {}}
    from tqdm.auto import tqdm

    for name in tqdm(list(reps), desc="analyse", file=sys.stderr, disable=not progress, leave=False):
        out["representations"][name] = analyse(reps[name]["train"], reps[name]["test"], clean, labels.get("test"),
                                               noisy, curve, K, k, settings)
    return out


def analyse(F_train, F_test, clean, test_labels, noisy, curve, K: int, k: int, settings: Settings) -> dict:
    """The numbers of one representation (JSON-able)."""
    import jax.numpy as jnp

    from theory import spectrum as sp

    X = jnp.asarray(F_train, jnp.float64)
    method = "gram" if X.shape[1] > GRAM_MIN_D else "svd"
    B = sp.basis(X, method=method)
    Bc = sp.basis(sp.centre(X), method=method)  # PCA: the centred features' SVD, once
    s, sc = B.s, Bc.s
    Y = sp.one_hot(clean, K)
    dY = sp.one_hot(noisy, K) - Y
    A = np.asarray(sp.alignment_curve(B, Y))
    split_clean = sp.label_split(B, Y, k)
    split_noise = sp.label_split(B, dY, k)
    r = int(s.shape[0])
    alpha = sp.alpha_req(sc) if r >= 4 else None
    top = float(s[0])
    Bs = sp.Basis(B.U, B.s / top, B.Vt)  # F / s_1: one beta means one shrinkage everywhere
    Xt = None if F_test is None else jnp.asarray(F_test, jnp.float64) / top
    path = []
    for beta in settings.betas:
        path.append(_head(Bs, Xt, clean, noisy, test_labels, K, beta))
    n_ratio = float(sp.class_size_ratio(clean, K))
    rec = []
    for a, lab in curve:
        h = _head(Bs, Xt, clean, lab, test_labels, K, settings.beta)
        c_max = float(sp.flip_c_max(clean, lab, K))
        h.update(alpha=a, alpha_realized=float(np.mean(lab != clean)), c_max=c_max,
                 threshold=float(sp.recovery_threshold(c_max, n_ratio)) if c_max > 0 else 1.0)
        rec.append(h)
    here = _head(Bs, Xt, clean, noisy, test_labels, K, settings.beta)
    c_max = float(sp.flip_c_max(clean, noisy, K))
    here.update(c_max=c_max, n_max_over_n_min=n_ratio,
                threshold=float(sp.recovery_threshold(c_max, n_ratio)) if c_max > 0 else 1.0,
                alpha_realized=float(np.mean(noisy != clean)))
    return {
        "n": int(X.shape[0]), "d": int(X.shape[1]), "svd_method": method,
        "sigma": np.asarray(s).tolist(), "sigma_centred": np.asarray(sc).tolist(),
        "prominent": int(sp.prominent_count(s, floor=FLOAT32_FLOOR)),
        "prominent_centred": int(sp.prominent_count(sc, floor=FLOAT32_FLOOR)),
        "gap_K": float(sp.gap_ratio(s, K)), "gap_K_centred": float(sp.gap_ratio(sc, K)),
        "alignment": A.tolist(), "alignment_K": float(A[K - 1]),
        "alignment_K_centred": float(sp.alignment_curve(Bc, Y)[K - 1]),
        "split_clean": _split_dict(split_clean), "split_noise": _split_dict(split_noise),
        "rankme": float(sp.rankme(s)), "rankme_pca": float(sp.rankme_pca(sc)),
        "effective_rank": float(sp.effective_rank(s)), "participation_ratio": float(sp.participation_ratio(sc)),
        "alpha_req": None if alpha is None else {"alpha": float(alpha.alpha), "r2": float(alpha.r2),
                                                  "fit_ranks": [alpha.lo, alpha.hi]},
        "beta_path": path, "head": here, "recovery_curve": rec,
    }


def _split_dict(s) -> dict:
    tot = float(s.total_sq)
    return {"information": float(s.information), "nuisance": float(s.nuisance), "total_sq": tot,
            "information_fraction": float(s.information_sq) / tot if tot > 0 else float("nan")}


def _head(Bs, Xt, clean, noisy, test_labels, K, beta) -> dict:
    from theory import spectrum as sp

    rec = sp.ridge_recovery(Bs, clean, noisy, K, beta)
    out = {"beta": float(beta), "train_recovery": float(rec.clean),
           "noisy_memorized": None if np.isnan(float(rec.noisy_fit)) else float(rec.noisy_fit)}
    out["test_acc"] = None if Xt is None else float(sp.head_accuracy(Xt, rec.W, test_labels))
    return out
