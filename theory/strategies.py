"""Hypothesis strategies for property tests of the paper's spectral claims, and the helpers to state them.

The only module of ``theory`` that imports Hypothesis (``import theory`` does not need it). Every
strategy draws the parameters of a constructor of this module (``seed`` included) and returns the
constructed object, whose ``repr`` is that constructor call: a failing property prints its shrunk
counterexample as a call that rebuilds it exactly. Each draw carries what it promises, measured by
the project's own meters (``theory.graph.measure_delta`` / ``measure_xi`` / ``measure_structured``,
``theory.spectrum``):

- :func:`partitions`: class / sub-class partitions (:class:`theory.graph.Partition`), balanced or
  imbalanced, with bounds on K, K-bar and the sub-class sizes;
- :func:`augmentation_graphs` -> :class:`AugmentationGraph` (:func:`augmentation_graph`): weight
  matrices inside Assumption 4.1 with ``delta`` and 4.2 with ``xi``, the realized delta and xi attached:
  random dense (``theory.graph.make_graph``), the two-level and hub constructions at the edge of the
  assumption (``theory.graph.extremal_graph``), sub-class blocks found by gradient ascent
  (``theory.tightness.ascend_block``), and matrix-free graphs for large n (``make_structured_graph``);
- :func:`representations` -> :class:`PlantedRepresentation` (:func:`planted_representation`): feature
  matrices ``F = U diag(s) V^T`` with K-bar prominent singular values, a power-law tail below a chosen
  gap, and a chosen label alignment ``||U_K U_K^T Y||_F^2 / n`` (Eq. 25's quantity), with their labels;
- :func:`label_noise` -> :class:`LabelNoise` (:func:`noisy_labels`): symmetric, asymmetric and
  per-sub-class concentrated flips (``theory.noise``) with their realized ``c_max``;
- :func:`sweeps` -> :class:`Sweep` (:func:`sweep`): geometric sweeps of a small parameter over enough
  decades for the order test.

Claim helpers, called inside a property: :func:`assert_bound` (measured against a bound with the
round-off tolerances of ``theory.tolerances``; the message shows both numbers and their ratio) and
:func:`assert_order` (the order test of ``theory.bounds.loglog_order`` over a drawn sweep).

Impossible requests (delta < 0, xi outside [0, 1), K-bar < K, sizes < 1, ...) are refused when the
strategy is defined, with a one-line ``ValueError`` naming the argument and its value. Default sizes are
small (n <= 24 points for graphs and representations, 72 for label noise) so that 100 examples of a
typical property take seconds once JAX has compiled its few shapes (use :data:`JAX_SETTINGS`). Float64
only: call ``jax.config.update("jax_enable_x64", True)`` before drawing. See ``docs/property_testing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from theory import bounds, tightness, tolerances
from theory.graph import (
    Partition,
    StructuredGraph,
    extremal_graph,
    make_graph,
    make_structured_graph,
    measure_delta,
    measure_structured,
    measure_xi,
)
from theory.graph import partition as _partition
from theory.noise import FlippedLabels, asymmetric_flips, concentrated_flips, symmetric_flips
from theory.spectrum import NULL_FRACTION

__all__ = [
    "AugmentationGraph", "GRAPH_KINDS", "JAX_SETTINGS", "LabelNoise", "NOISE_KINDS", "PlantedRepresentation", "Sweep",
    "assert_bound", "assert_order", "augmentation_graph", "augmentation_graphs", "label_noise", "noisy_labels",
    "partitions", "planted_representation", "representations", "sweep", "sweeps",
]

SEEDS = st.integers(0, 2**31 - 1)

# Settings for properties over these strategies: JAX compiles each new shape once (0.3-2 s on a CPU: a new
# n for make_graph, a new block size for the ascent), which Hypothesis would count against its 200 ms
# deadline and its input-generation health check; the compiled program is then reused. Apply as
# ``@JAX_SETTINGS`` or derive: ``@settings(JAX_SETTINGS, max_examples=50)``. The project's test profiles
# (tests/conftest.py) set the same two options.
JAX_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRAPH_KINDS = ("random", "two-level", "hub", "ascent", "structured")
NOISE_KINDS = ("symmetric", "symmetric-random", "asymmetric", "concentrated")


# ----------------------------------------------------------------------------
# Argument checks: at definition time, one line naming the argument and its value
# ----------------------------------------------------------------------------


def _interval(name: str, value, lo: float, hi: float, *, hi_open: bool = False, lo_open: bool = False,
              integer: bool = False) -> tuple:
    """``(low, high)`` from a number or a ``(low, high)`` pair, every end inside the allowed range."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    kind = int if integer else (int, float)
    if len(pair) != 2 or not all(isinstance(v, kind) and not isinstance(v, bool) for v in pair):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} or a (low, high) pair, got {value!r}")
    a, b = pair
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if a > b:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    if a < lo or (lo_open and a == lo) or b > hi or (hi_open and b == hi):
        rng = (f"{'>' if lo_open else '>='} {lo:g}" if hi == math.inf else
               f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}")
        raise ValueError(f"{name} must be {rng}, got {value!r}")
    return a, b


def _floats(lo: float, hi: float):
    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_subnormal=False)


def _check_x64() -> None:
    if not jax.config.jax_enable_x64:
        raise RuntimeError('theory.strategies draws float64: call jax.config.update("jax_enable_x64", True) first')


def _partition_strategy(partition, default):
    """A strategy of partitions from a :class:`Partition`, a strategy, or None (``default``)."""
    if partition is None:
        return default
    if isinstance(partition, Partition):
        return st.just(partition)
    if isinstance(partition, st.SearchStrategy):
        return partition
    raise ValueError(f"partition must be a Partition, a strategy of them or None, got {partition!r}")


def _repr_pretty_(self, p, cycle) -> None:
    """Draws print as the constructor call that rebuilds them: Hypothesis's printer uses ``_repr_pretty_``."""
    p.text(repr(self))


# ----------------------------------------------------------------------------
# Partitions
# ----------------------------------------------------------------------------


def partitions(*, n_classes=(2, 3), n_sub=(2, 4), sizes=(2, 6), balanced: bool | None = None,
               max_n: int | None = None) -> st.SearchStrategy[Partition]:
    """Partitions of n points into K-bar sub-classes of K classes (:func:`theory.graph.partition`).

    Args (an int or an inclusive ``(low, high)`` pair each):
      n_classes: K; n_sub: K-bar (every draw has K-bar >= K, every class at least one sub-class);
      sizes: points per sub-class (>= 1);
      balanced: True: all sizes equal (Appendix B); False: at least two differ; None: either;
      max_n: if given, every draw has at most this many points.

    Promise: ``K`` and ``K-bar`` within their bounds, ``K-bar >= K``, every size within its bounds,
    balanced as asked, ``n <= max_n``. Sub-classes are dealt to classes by a drawn surjection.
    """
    k_lo, k_hi = _interval("n_classes", n_classes, 1, math.inf, integer=True)
    s_lo, s_hi = _interval("n_sub", n_sub, 1, math.inf, integer=True)
    z_lo, z_hi = _interval("sizes", sizes, 1, math.inf, integer=True)
    if s_hi < k_lo:
        raise ValueError(f"n_sub (K-bar) must allow K-bar >= K, got n_sub={n_sub!r} with n_classes={n_classes!r}")
    if balanced not in (None, True, False):
        raise ValueError(f"balanced must be True, False or None, got {balanced!r}")
    fewest = max(s_lo, k_lo, 2 if balanced is False else 1)
    if balanced is False and (z_lo == z_hi or s_hi < 2):
        raise ValueError(f"balanced=False needs two sizes and two sub-classes, got sizes={sizes!r}, n_sub={n_sub!r}")
    if max_n is not None:
        least = fewest * z_lo + (1 if balanced is False else 0)
        if not (isinstance(max_n, int) and max_n >= least):
            raise ValueError(f"max_n must be an int >= {least} (the smallest partition asked for), got {max_n!r}")
    cap = math.inf if max_n is None else max_n

    @st.composite
    def draw_partition(draw):
        most = (cap - (1 if balanced is False else 0)) // z_lo  # sub-classes that fit in max_n points
        K = draw(st.integers(k_lo, min(k_hi, s_hi, most)))
        lo = max(s_lo, K, 2 if balanced is False else 1)
        hi = min(s_hi, most)
        kb = draw(st.integers(lo, hi))
        if balanced:
            sz = [draw(st.integers(z_lo, min(z_hi, cap // kb)))] * kb
        else:
            sz, left = [], cap
            for i in range(kb):
                top = min(z_hi, left - z_lo * (kb - 1 - i) - (1 if balanced is False else 0))
                sz.append(draw(st.integers(z_lo, top)))
                left -= sz[-1]
            if balanced is False and len(set(sz)) == 1:  # make two sizes differ, inside the bounds and max_n
                sz[0] += -1 if sz[0] > z_lo else 1
        classes = list(range(K)) + [draw(st.integers(0, K - 1)) for _ in range(kb - K)]
        return _partition(sz, sub_to_class=draw(st.permutations(classes)))

    return draw_partition()


# ----------------------------------------------------------------------------
# Augmentation graphs
# ----------------------------------------------------------------------------


class AugmentationGraph(NamedTuple):
    """A weight matrix and what it satisfies (built by :func:`augmentation_graph`).

    ``W``: the (n, n) float64 weight matrix (numpy), or a :class:`theory.graph.StructuredGraph` for
    ``kind="structured"`` (``.dense()`` gives the matrix at small n); ``part`` its partition; ``delta``,
    ``xi``: the realized (measured) parameters, the smallest for which Assumptions 4.1 and 4.2 hold;
    ``delta_max``, ``xi_max``: the requested ones (``delta <= delta_max``, ``xi <= xi_max``);
    ``kind``, ``seed``, ``score``: how it was built.
    """

    W: Any
    part: Partition
    delta: float
    xi: float
    delta_max: float
    xi_max: float
    kind: str
    seed: int
    score: Any = None

    _repr_pretty_ = _repr_pretty_

    def __repr__(self) -> str:
        score = "" if self.kind != "ascent" else f", score=tightness.{self.score.__name__}"
        return (f"augmentation_graph({self.part!r}, delta={self.delta_max!r}, xi={self.xi_max!r}, "
                f"kind={self.kind!r}, seed={self.seed!r}{score})")

    def dense(self) -> np.ndarray:
        """The weight matrix as an (n, n) numpy array."""
        return np.asarray(self.W.dense()) if isinstance(self.W, StructuredGraph) else self.W


def _ascent_weights(part: Partition, delta: float, xi: float, key, score) -> np.ndarray:
    """Every sub-class's block is the one :func:`theory.tightness.ascend_block` finds at its size (one ascent
    per distinct size; size 1: the 1 x 1 block 1); every cross entry is ``xi``."""
    blocks = {}
    for m in sorted(set(part.sizes)):
        blocks[m] = np.ones((1, 1)) if m == 1 else np.asarray(
            tightness.ascend_block(score, m, delta, key=jax.random.fold_in(key, m)))
    W = np.full((part.n, part.n), float(xi))
    for lo, m in zip(part.offsets[:-1], part.sizes):
        W[lo:lo + m, lo:lo + m] = blocks[m]
    return W


def augmentation_graph(part: Partition, delta: float, xi: float = 0.0, *, kind: str = "random", seed: int = 0,
                       score=tightness.tail_sq, rank: int = 4) -> AugmentationGraph:
    """The weight matrix of one draw of :func:`augmentation_graphs`, rebuilt from its parameters.

    ``kind``: ``"random"`` (:func:`theory.graph.make_graph` with key ``PRNGKey(seed)``), ``"two-level"`` or
    ``"hub"`` (:func:`theory.graph.extremal_graph`: every cross entry ``xi``; realized delta and xi exactly
    ``delta`` and ``xi`` when a sub-class has two points or more), ``"ascent"`` (every sub-class block
    found by :func:`theory.tightness.ascend_block` maximizing ``score`` at its size, cross entries ``xi``),
    ``"structured"`` (:func:`theory.graph.make_structured_graph` with ``rank``, matrix-free; balanced
    partitions only). The realized delta and xi are measured
    (:func:`theory.graph.measure_delta`, :func:`measure_xi`; :func:`measure_structured` for structured).
    """
    _check_x64()
    _interval("delta", delta, 0.0, 1.0, hi_open=True)
    _interval("xi", xi, 0.0, 1.0, hi_open=True)
    if kind not in GRAPH_KINDS:
        raise ValueError(f"kind must be one of {GRAPH_KINDS}, got {kind!r}")
    key = jax.random.PRNGKey(seed)
    if kind == "structured":
        g = make_structured_graph(key, part, delta, xi, rank=rank)
        meters = measure_structured(g)
        return AugmentationGraph(g, part, meters.delta, meters.xi, delta, xi, kind, seed)
    if kind == "random":
        W = np.asarray(make_graph(key, part, delta, xi))
    elif kind == "ascent":
        W = _ascent_weights(part, delta, xi, key, score)
    else:
        W = np.asarray(extremal_graph(part, delta, kind, xi=xi))
    return AugmentationGraph(W, part, measure_delta(W, part), measure_xi(W, part), delta, xi, kind, seed,
                             score if kind == "ascent" else None)


def augmentation_graphs(*, partition=None, delta=(0.0, 0.5), xi=(0.0, 0.1), kinds: Sequence[str] = GRAPH_KINDS,
                        score=tightness.tail_sq) -> st.SearchStrategy[AugmentationGraph]:
    """Weight matrices inside Assumptions 4.1 (``delta``) and 4.2 (``xi``) with the realized values attached.

    Args:
      partition: a :class:`Partition`, a strategy of them, or None (:func:`partitions` with its defaults;
        balanced ones when ``kinds`` is only ``"structured"``).
      delta, xi: a number or an inclusive ``(low, high)`` range, inside ``[0, 1)``; each draw's requested
        value is drawn from it.
      kinds: which constructions to draw from (:func:`augmentation_graph`): the random graph and the
        tightest constructions known here (two-level, hub, gradient ascent on ``score``), so that a property
        meets the edge of the assumptions and not only random matrices. ``"structured"`` is drawn only for
        balanced partitions.

    Promise: ``g.delta <= g.delta_max`` and ``g.xi <= g.xi_max`` (up to ``tolerances.METER_ATOL``), both
    requested values inside the ranges, ``g.W`` symmetric, nonnegative, float64.
    """
    d_lo, d_hi = _interval("delta", delta, 0.0, 1.0, hi_open=True)
    x_lo, x_hi = _interval("xi", xi, 0.0, 1.0, hi_open=True)
    kinds = tuple(kinds)
    if not kinds or any(k not in GRAPH_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty selection of {GRAPH_KINDS}, got {kinds!r}")
    only_structured = set(kinds) == {"structured"}
    if only_structured and isinstance(partition, Partition) and not partition.balanced:
        raise ValueError(f"kinds=('structured',) needs a balanced partition, got sizes {partition.sizes}")
    parts = _partition_strategy(partition, partitions(balanced=True) if only_structured else partitions())

    @st.composite
    def draw_graph(draw):
        part = draw(parts)
        usable = [k for k in kinds if k != "structured" or part.balanced]
        if not usable:
            raise ValueError(f"kinds=('structured',) needs balanced partitions, drew sizes {part.sizes}: "
                             "pass partition=partitions(balanced=True)")
        kind = draw(st.sampled_from(usable))
        return augmentation_graph(part, draw(_floats(d_lo, d_hi)), draw(_floats(x_lo, x_hi)), kind=kind,
                                  seed=draw(SEEDS), score=score)

    return draw_graph()


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


# ----------------------------------------------------------------------------
# Sweeps and the claim helpers
# ----------------------------------------------------------------------------


class Sweep(NamedTuple):
    """``points`` values of a small parameter, geometric from ``top * 10^-decades`` to ``top`` (ascending)."""

    x: np.ndarray
    top: float
    decades: float
    points: int

    _repr_pretty_ = _repr_pretty_

    def __repr__(self) -> str:
        return f"sweep(top={self.top!r}, decades={self.decades!r}, points={self.points!r})"


def sweep(top: float, decades: float, points: int = 9) -> Sweep:
    """The sweep of :func:`sweeps` with these parameters."""
    _interval("top", top, 0.0, math.inf, lo_open=True)
    _interval("decades", decades, 0.0, math.inf, lo_open=True)
    _interval("points", points, 3, math.inf, integer=True)
    return Sweep(top * 10.0 ** np.linspace(-decades, 0.0, points), top, decades, points)


def sweeps(*, top=(1e-2, 1e-1), decades=(tolerances.ORDER_MIN_DECADES, 3.0), points: int = 9) -> st.SearchStrategy[Sweep]:
    """Geometric sweeps of a small parameter for :func:`assert_order`.

    ``top``: the largest value (range); ``decades``: how many decades below it the sweep reaches, at least
    ``theory.tolerances.ORDER_MIN_DECADES`` (a shorter sweep gives the order test no power to fail);
    ``points`` values (fixed per strategy: the order fit compiles once per length).

    Promise: ``points`` values, ascending, ``max/min = 10^decades``, the largest in ``top``.
    """
    t_lo, t_hi = _interval("top", top, 0.0, math.inf, lo_open=True)
    d_lo, d_hi = _interval("decades", decades, tolerances.ORDER_MIN_DECADES, math.inf)
    _interval("points", points, 3, math.inf, integer=True)
    return st.builds(sweep, _floats(t_lo, t_hi), _floats(d_lo, d_hi), st.just(points))


RELATIONS = ("<=", ">=", "==")


def assert_bound(measured, bound, relation: str = "<=", *, rtol: float | None = None, atol: float = 0.0,
                 dtype: str = "float64", what: str = "measured") -> float:
    """Assert ``measured <relation> bound`` up to round-off; return the largest ratio measured / bound.

    The tolerance is the project's (``theory.tolerances``): ``rtol * |bound| + atol`` with ``rtol`` defaulting
    to ``bound_rtol(dtype)`` (sums of O(n) terms in float64); pass ``atol=tolerances.eig_atol(dtype)`` for an
    eigenvalue and ``tolerances.METER_ATOL`` for a realized delta or xi. Never widen it to make a claim pass.
    Arrays are compared entrywise (broadcast); the message names the worst entry, both numbers in full
    precision, their ratio and difference. Called on concrete values inside a test (it is not traceable).
    """
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    rtol = tolerances.bound_rtol(dtype) if rtol is None else rtol
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol!r}, atol={atol!r}")
    m, b = np.broadcast_arrays(np.asarray(measured, dtype=np.float64), np.asarray(bound, dtype=np.float64))
    slack = rtol * np.abs(b) + atol
    excess = {"<=": m - b, ">=": b - m, "==": np.abs(m - b)}[relation] - slack
    bad = ~(excess <= 0)  # NaN fails
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b != 0, m / b, np.where(m == 0, 1.0, np.inf))
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), m.shape) if m.ndim else ()
        where = f" at index {tuple(int(j) for j in i)} ({int(bad.sum())} of {m.size} entries fail)" if m.ndim else ""
        raise AssertionError(f"{what} = {float(m[i])!r} is not {relation} bound = {float(b[i])!r}{where}: ratio {float(ratio[i]):.6g}, "
                             f"difference {float(m[i] - b[i]):.3g} (tolerance rtol={rtol:g}, atol={atol:g})")
    return float(np.max(ratio)) if ratio.size else 1.0


def assert_order(x, y, order: float, *, limit: str = "0", groups=None, n_groups: int = 1, seed: int = 0,
                 what: str = "y", label: str = "x") -> bounds.OrderFit:
    """Assert ``y = O(x^order)`` over a sweep by the project's order test (:func:`theory.bounds.loglog_order`).

    ``limit="0"`` (x -> 0): fails when ``order`` lies above the bootstrap interval of the fitted log-log slope
    by more than ``tolerances.ORDER_SLACK`` (y falls more slowly than claimed); ``limit="inf"`` (x -> infinity):
    when it lies that far below. ``groups``: one intercept per group, one common slope (several settings of
    one order). A sweep spanning fewer than ``tolerances.ORDER_MIN_DECADES`` decades of x is refused
    (ValueError: it could not fail); a y that is <= 0 everywhere is trivially O(anything) and passes; a y > 0
    on too few decades to fit fails. Returns the fit.
    """
    if limit not in ("0", "inf"):
        raise ValueError(f"limit must be '0' or 'inf', got {limit!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    pos = x[x > 0]
    span = float(np.log10(pos.max() / pos.min())) if pos.size else 0.0
    if span < tolerances.ORDER_MIN_DECADES - 1e-9:
        raise ValueError(f"x must span >= {tolerances.ORDER_MIN_DECADES:g} decades for the order test to have power, "
                         f"got {span:.3g} over {x.size} points")
    fit = bounds.loglog_order(x, y, key=jax.random.PRNGKey(seed), groups=groups, n_groups=n_groups,
                              n_boot=tolerances.ORDER_BOOT, level=tolerances.ORDER_LEVEL)
    if not np.any((y > 0) & (x > 0)):
        return fit
    slope, lo, hi, dec = float(fit.slope), float(fit.lo), float(fit.hi), float(fit.decades)
    slack = tolerances.ORDER_SLACK
    arrow = "0" if limit == "0" else "infinity"
    head = (f"{what} = O({label}^{order:g}) as {label} -> {arrow}: fitted slope {slope:.4g}, "
            f"{tolerances.ORDER_LEVEL:.0%} interval [{lo:.4g}, {hi:.4g}] over {dec:.3g} decades ({int(fit.n_used)} points)")
    if not (dec >= tolerances.ORDER_MIN_DECADES - 1e-9 and math.isfinite(lo)):
        raise AssertionError(f"{head}: {what} > 0 on too few decades of {label} to fit an order")
    if limit == "0" and not hi >= order - slack:
        raise AssertionError(f"{head}: the claimed order lies above the interval by more than ORDER_SLACK={slack:g}")
    if limit == "inf" and not lo <= order + slack:
        raise AssertionError(f"{head}: the claimed order lies below the interval by more than ORDER_SLACK={slack:g}")
    return fit
