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

from theory.strategies._base import GRAPH_KINDS, JAX_SETTINGS, NOISE_KINDS, SEEDS
from theory.strategies.claims import Sweep, assert_bound, assert_order, sweep, sweeps
from theory.strategies.graphs import AugmentationGraph, augmentation_graph, augmentation_graphs, partitions
from theory.strategies.planted import (
    LabelNoise,
    PlantedRepresentation,
    label_noise,
    noisy_labels,
    planted_representation,
    representations,
)

__all__ = [
    "AugmentationGraph", "GRAPH_KINDS", "JAX_SETTINGS", "LabelNoise", "NOISE_KINDS", "PlantedRepresentation", "Sweep",
    "assert_bound", "assert_order", "augmentation_graph", "augmentation_graphs", "label_noise", "noisy_labels",
    "partitions", "planted_representation", "representations", "sweep", "sweeps",
]
