"""Shape aliases shared across ``theory/`` (jaxtyping), so signatures read like the paper.

``n`` augmented points, ``p`` representation dimension, ``K`` classes, ``Kbar`` sub-classes.
"""

from __future__ import annotations

from jaxtyping import Array, Float, Int, PRNGKeyArray

Weights = Float[Array, "n n"]
Labels = Float[Array, "n K"]
Representation = Float[Array, "n p"]
Eigvals = Float[Array, " p"]
Eigvecs = Float[Array, "n p"]
SubIndex = Int[Array, " n"]

__all__ = ["Array", "Float", "Int", "PRNGKeyArray", "Weights", "Labels", "Representation",
           "Eigvals", "Eigvecs", "SubIndex"]
