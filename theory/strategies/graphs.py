"""Strategies of partitions (:func:`partitions`) and augmentation graphs (:func:`augmentation_graphs`),
with the constructor each draw prints as (:func:`augmentation_graph`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from hypothesis import strategies as st

from theory import tightness
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
from theory.strategies._base import GRAPH_KINDS, SEEDS, _check_x64, _floats, _interval, _partition_strategy, _repr_pretty_


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
