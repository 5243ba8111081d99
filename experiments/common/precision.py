"""Float64 for a process: the theory checks, the spectra of real features and the Jacobian Gram are
computed in float64 (``jax_enable_x64``; networks keep float32 parameters). Each command that needs it
calls :func:`use_float64` once, before its first float64 array (``clspec verify`` before any check runs,
``clspec spectrum`` after the float32 feature extraction, ``clspec jacobian`` at its start); a check
module never switches it itself (tests: ``tests/conftest.py``)."""

from __future__ import annotations


def use_float64() -> None:
    """Switch JAX to float64 for the rest of this process."""
    import jax

    jax.config.update("jax_enable_x64", True)
