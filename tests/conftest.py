"""Test session setup: float64 for the theory, a derandomized Hypothesis profile for CI."""

import os

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
# `clspec verify` run by a test keeps no compilations in the user's cache (tests/test_profile.py names its own)
os.environ.setdefault("CLSPEC_XLA_CACHE", "off")

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
