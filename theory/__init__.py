"""clspec's mathematics, in JAX: no file I/O, no plotting, no argument parsing.

One concept a module: ``graph`` (the augmentation graph and the assumption meters),
``representation`` (the optimal representation and its spectrum), ``losses``,
``bounds`` (every closed-form bound of the paper), ``tightness`` (adversarial W for how tight a bound is),
``tolerances``; ``strategies`` (Hypothesis strategies and claim helpers for property tests) is the one
module that needs Hypothesis, so it is not imported here: ``import theory.strategies``.
Theory checks run in float64: call ``jax.config.update("jax_enable_x64", True)``.
"""

from theory.graph import (
    Partition,
    StructuredGraph,
    balanced_partition,
    check_weights,
    extremal_graph,
    make_graph,
    make_structured_graph,
    measure_delta,
    measure_xi,
    partition,
)
from theory.losses import matrix_factorization_loss, nt_xent, representation_from_factor, spectral_contrastive_loss
from theory.representation import (
    LinearOp,
    Spectral,
    alignment,
    block_normalized_adjacency,
    normalized_adjacency,
    normalized_operator,
    optimal_representation,
    principal_angle_sines,
    subspace_distance,
    top_eigh,
)
from theory.head import (bias_variance, information_nuisance, monte_carlo_risk, ridge_head, shrinkage, spectral_predictions,
                         train_head)
from theory.noise import asymmetric_flips, concentrated_flips, gaussian_noise, symmetric_flips
from theory.tightness import adversarial_graphs, ascend_block
