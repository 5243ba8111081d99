"""Test session setup: float64 for the theory, a derandomized Hypothesis profile for CI."""

import os

from hypothesis import HealthCheck, settings

from experiments.common.precision import use_float64

use_float64()

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
