"""Strategies of feature matrices with a planted spectrum (:func:`representations`) and of label noise
(:func:`label_noise`), with the constructors their draws print as (:func:`planted_representation`,
:func:`noisy_labels`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from hypothesis import strategies as st

from theory.graph import Partition
from theory.noise import FlippedLabels, asymmetric_flips, concentrated_flips, symmetric_flips
from theory.spectrum import NULL_FRACTION
from theory.strategies._base import NOISE_KINDS, SEEDS, _floats, _interval, _partition_strategy, _repr_pretty_
from theory.strategies.graphs import partitions


# ----------------------------------------------------------------------------
# Representations with a planted spectrum
# ----------------------------------------------------------------------------


class PlantedRepresentation(NamedTuple):
    """A feature matrix with a known spectrum and label alignment (built by :func:`planted_representation`).

    ``F`` (n, p) with ``p = K-bar + tail_len``: ``F = U diag(sigma) V^T``; ``sigma`` the planted singular
    values, descending: the first K-bar (``prominent``) in ``[1/spread, 1]``, then ``tail_len`` values
    ``gap * sigma_Kbar * i^{-decay}``. ``alignment``: the planted ``||U_Kbar U_Kbar^T Y||_F^2 / n``
    (Eq. 25's normalized projection, :func:`theory.spectrum.alignment_curve` at K-bar). ``Y`` (n, K) the
    clean one-hot labels of ``part``, ``labels`` their class indices.
    """

    F: np.ndarray
    Y: np.ndarray
    labels: np.ndarray
    part: Partition
    sigma: np.ndarray
    prominent: int
    alignment: float
    spread: float
    gap: float
    decay: float
    tail_len: int
    seed: int

    _repr_pretty_ = _repr_pretty_

    def __repr__(self) -> str:
        return (f"planted_representation({self.part!r}, alignment={self.alignment!r}, spread={self.spread!r}, "
                f"gap={self.gap!r}, decay={self.decay!r}, tail_len={self.tail_len!r}, seed={self.seed!r})")


def _check_planted(spread, gap, decay, tail_len_max: int) -> None:
    """The largest log-gap of the planted spectrum must be the one after K-bar, above the null floor."""
    inner = max(math.log(spread), decay * math.log(2.0) if tail_len_max >= 2 else 0.0)
    if not -math.log(gap) > inner:
        raise ValueError(f"gap must be below 1/max(spread, 2^decay) so that the K-bar values stay prominent, got "
                         f"gap={gap!r} with spread={spread!r}, decay={decay!r}")
    if gap / spread * tail_len_max ** (-decay) <= NULL_FRACTION:
        raise ValueError(f"the smallest tail value gap / spread * tail_len^-decay must exceed {NULL_FRACTION:g}, got "
                         f"gap={gap!r}, spread={spread!r}, decay={decay!r}, tail_len={tail_len_max!r}")


def _orthonormal(rng: np.random.Generator, n: int, m: int, against: np.ndarray | None = None) -> np.ndarray:
    """``m`` orthonormal columns in R^n, Haar-distributed (orthogonal to the columns of ``against``)."""
    G = rng.standard_normal((n, m))
    if against is not None:
        G -= against @ (against.T @ G)
        G -= against @ (against.T @ G)  # twice: orthogonal to round-off
    Q, R = np.linalg.qr(G)
    return Q * np.sign(np.diag(R))[None, :]


def planted_representation(part: Partition, *, alignment: float = 1.0, spread: float = 1.0, gap: float = 0.1,
                           decay: float = 1.0, tail_len: int = 2, seed: int = 0) -> PlantedRepresentation:
    """``F = U diag(sigma) V^T`` with a planted spectrum and label alignment (see :class:`PlantedRepresentation`).

    The top K-bar left singular vectors are ``u_k = sqrt(a) e_k + sqrt(1 - a) r_k``, with ``e_k`` the
    normalized indicator of sub-class k (the top eigenvectors of A-bar at xi = 0, Lemma A.2) and ``r_k``
    orthonormal directions orthogonal to every indicator; the tail directions are orthogonal to both; V is
    Haar. Then ``||U_Kbar U_Kbar^T Y||_F^2 = a n`` exactly (Y's columns are sums of sub-class indicators) and
    the tail carries no label energy. Needs ``n >= 2 K-bar + tail_len``. Drawn with numpy from ``seed``.
    """
    _interval("alignment", alignment, 0.0, 1.0, lo_open=True)
    _interval("spread", spread, 1.0, math.inf)
    _interval("gap", gap, 0.0, 1.0, lo_open=True, hi_open=True)
    _interval("decay", decay, 0.0, math.inf)
    _interval("tail_len", tail_len, 1, math.inf, integer=True)
    _check_planted(spread, gap, decay, tail_len)
    kb, n = part.n_sub, part.n
    if n < 2 * kb + tail_len:
        raise ValueError(f"a planted representation needs n >= 2 K-bar + tail_len = {2 * kb + tail_len}, "
                         f"got n={n} for sizes {part.sizes}")
    rng = np.random.default_rng(seed)
    E = np.asarray(part.sub_indicator()) / np.sqrt(np.asarray(part.sizes, dtype=np.float64))[None, :]
    R = _orthonormal(rng, n, kb + tail_len, against=E)
    U = np.concatenate([math.sqrt(alignment) * E + math.sqrt(1.0 - alignment) * R[:, :kb], R[:, kb:]], axis=1)
    top = np.sort(rng.uniform(1.0 / spread, 1.0, kb))[::-1]
    sigma = np.concatenate([top, gap * top[-1] * np.arange(1, tail_len + 1, dtype=np.float64) ** (-decay)])
    V = _orthonormal(rng, kb + tail_len, kb + tail_len)
    F = (U * sigma[None, :]) @ V.T
    return PlantedRepresentation(F, np.asarray(part.labels()), part.class_of_point, part, sigma, kb, alignment,
                                 spread, gap, decay, tail_len, seed)


def representations(*, partition=None, alignment=(0.5, 1.0), spread=(1.0, 2.0), gap=(0.01, 0.3), decay=(0.0, 1.5),
                    tail_len=(1, 4)) -> st.SearchStrategy[PlantedRepresentation]:
    """Feature matrices with a planted spectrum: K-bar prominent singular values, a power-law tail, a label alignment.

    Args (a number or an inclusive ``(low, high)`` range each; see :func:`planted_representation`):
      partition: a :class:`Partition`, a strategy of them, or None (:func:`partitions` with sizes 3-6);
      alignment: ``||U_Kbar U_Kbar^T Y||_F^2 / n`` in (0, 1]; spread: the prominent values lie in
      ``[1/spread, 1]``; gap: ``sigma_{Kbar+1} / sigma_Kbar`` in (0, 1); decay: the tail's power-law
      exponent; tail_len: how many tail values (capped at ``n - 2 K-bar`` for each partition).

    Promise: the singular values of F (:func:`theory.spectrum.singular_values`) are ``r.sigma``, the largest
    log-gap rule (:func:`theory.spectrum.prominent_count`) finds K-bar, and
    :func:`theory.spectrum.alignment_curve` at K-bar is ``r.alignment``, all to round-off (``EIG_ATOL``).
    Refused: a ``gap`` that could fall above ``1/max(spread, 2^decay)`` (the K-bar values would not be the
    prominent ones).
    """
    a_lo, a_hi = _interval("alignment", alignment, 0.0, 1.0, lo_open=True)
    s_lo, s_hi = _interval("spread", spread, 1.0, math.inf)
    g_lo, g_hi = _interval("gap", gap, 0.0, 1.0, lo_open=True, hi_open=True)
    e_lo, e_hi = _interval("decay", decay, 0.0, math.inf)
    t_lo, t_hi = _interval("tail_len", tail_len, 1, math.inf, integer=True)
    _check_planted(s_hi, g_hi, e_hi, t_hi)
    _check_planted(s_hi, g_lo, e_hi, t_hi)
    if isinstance(partition, Partition) and partition.n < 2 * partition.n_sub + t_lo:
        raise ValueError(f"partition must have n >= 2 K-bar + tail_len = {2 * partition.n_sub + t_lo}, "
                         f"got n={partition.n}")
    parts = _partition_strategy(partition, partitions(sizes=(3, 6)))

    @st.composite
    def draw_representation(draw):
        part = draw(parts)
        room = part.n - 2 * part.n_sub
        if room < t_lo:
            raise ValueError(f"partition must have n >= 2 K-bar + tail_len = {2 * part.n_sub + t_lo}, drew "
                             f"sizes {part.sizes}: use sizes >= 3")
        return planted_representation(part, alignment=draw(_floats(a_lo, a_hi)), spread=draw(_floats(s_lo, s_hi)),
                                      gap=draw(_floats(g_lo, g_hi)), decay=draw(_floats(e_lo, e_hi)),
                                      tail_len=draw(st.integers(t_lo, min(t_hi, room))), seed=draw(SEEDS))

    return draw_representation()


# ----------------------------------------------------------------------------
# Label noise
# ----------------------------------------------------------------------------


class LabelNoise(NamedTuple):
    """Flipped labels (:class:`theory.noise.FlippedLabels` in ``flips``, its realized ``c_max`` and
    ``alpha``) of ``part``, built by :func:`noisy_labels` with ``kind``, the requested ``alpha``, ``c_max``
    (concentrated), ``shift`` (asymmetric: class j goes to ``(j + shift) mod K``) and ``seed``."""

    flips: FlippedLabels
    part: Partition
    alpha: float
    kind: str
    c_max: float | None
    shift: int | None
    seed: int

    _repr_pretty_ = _repr_pretty_

    def __repr__(self) -> str:
        extra = (f", c_max={self.c_max!r}" if self.kind == "concentrated" else "") + (
            f", shift={self.shift!r}" if self.kind == "asymmetric" else "")
        return f"noisy_labels({self.part!r}, alpha={self.alpha!r}, kind={self.kind!r}{extra}, seed={self.seed!r})"


def noisy_labels(part: Partition, alpha: float, *, kind: str = "symmetric", c_max: float | None = None,
                 shift: int = 1, seed: int = 0) -> LabelNoise:
    """One draw of :func:`label_noise`: exactly ``floor(alpha n_kbar)`` flips in every sub-class (``theory.noise``).

    ``kind``: ``"symmetric"`` (dealt evenly over the K - 1 wrong classes), ``"symmetric-random"`` (uniformly
    at random), ``"asymmetric"`` (class j to ``(j + shift) mod K``), ``"concentrated"`` (a fraction ``c_max``
    of each sub-class's flips to one wrong class); key ``PRNGKey(seed)``.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    key = jax.random.PRNGKey(seed)
    K = part.n_classes
    if kind == "asymmetric":
        if not (isinstance(shift, int) and 1 <= shift <= K - 1):
            raise ValueError(f"shift must be an int in [1, K-1={K - 1}], got {shift!r}")
        flips = asymmetric_flips(part, alpha, [(j + shift) % K for j in range(K)], key=key)
    elif kind == "concentrated":
        if c_max is None:
            raise ValueError("c_max must be given for kind='concentrated', got None")
        flips = concentrated_flips(part, alpha, c_max, key=key)
    else:
        flips = symmetric_flips(part, alpha, key=key, balanced=kind == "symmetric")
    return LabelNoise(flips, part, alpha, kind, c_max if kind == "concentrated" else None,
                      shift if kind == "asymmetric" else None, seed)


def label_noise(*, partition=None, alpha=(0.0, 0.6), kinds: Sequence[str] = NOISE_KINDS,
                c_max=None) -> st.SearchStrategy[LabelNoise]:
    """Label flips of a partition with their realized ``c_max`` (Theorem 4.5, Corollary 4.6).

    Args:
      partition: a :class:`Partition` (K >= 2), a strategy of them, or None (:func:`partitions` with K in
        2-4, sizes 1-12).
      alpha: the flipped fraction of every sub-class, a number or an inclusive range inside [0, 1].
      kinds: a selection of :data:`NOISE_KINDS` (see :func:`noisy_labels`).
      c_max: for ``"concentrated"``: a fraction ``f`` or range in [0, 1]; the requested ``c_max`` is
        ``1/(K-1) + f (1 - 1/(K-1))`` (None: f drawn in [0, 1]).

    Promise: ``floor(alpha n_kbar)`` flips in every sub-class, every flip to another class, the realized
    ``n.flips.c_max`` the paper's ``max c_{k|kbar}`` over sub-classes with a flip, in ``[1/(K-1), 1]``: 1 for
    asymmetric, ``max ceil(m/(K-1))/m`` for symmetric, at most ``max(c_max, ceil(m/(K-1))/m)`` for concentrated.
    """
    al_lo, al_hi = _interval("alpha", alpha, 0.0, 1.0)
    f_lo, f_hi = _interval("c_max", (0.0, 1.0) if c_max is None else c_max, 0.0, 1.0)
    kinds = tuple(kinds)
    if not kinds or any(k not in NOISE_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty selection of {NOISE_KINDS}, got {kinds!r}")
    if isinstance(partition, Partition) and partition.n_classes < 2:
        raise ValueError(f"partition must have K >= 2 classes to flip labels, got K={partition.n_classes}")
    parts = _partition_strategy(partition, partitions(n_classes=(2, 4), n_sub=(2, 6), sizes=(1, 12)))

    @st.composite
    def draw_noise(draw):
        part = draw(parts)
        K = part.n_classes
        kind = draw(st.sampled_from(kinds))
        c = None
        if kind == "concentrated":
            c = 1.0 / (K - 1) + draw(_floats(f_lo, f_hi)) * (1.0 - 1.0 / (K - 1))
        shift = draw(st.integers(1, K - 1)) if kind == "asymmetric" and K >= 2 else 1
        return noisy_labels(part, draw(_floats(al_lo, al_hi)), kind=kind, c_max=c, shift=shift, seed=draw(SEEDS))

    return draw_noise()
