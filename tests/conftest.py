"""Test session setup: float64 for the theory, a derandomized Hypothesis profile for CI."""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

from experiments.common.precision import use_float64

use_float64()
# `clspec verify` run by a test keeps no compilations in the user's cache (tests/test_profile.py names its own)
os.environ.setdefault("CLSPEC_XLA_CACHE", "off")
# ... and compiles with XLA's defaults, whichever test first starts JAX (tests/test_profile.py checks the flags of
# experiments.common.profile.set_xla_flags in a fresh process), so that no number depends on the order of the tests
os.environ.setdefault("CLSPEC_XLA_FLAGS", "off")

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# pytest.approx's handling of array-likes differs between pytest versions: pytest 9.2 reads `.flat`,
# which JAX arrays do not implement, so an `approx` comparison that touches a JAX array passes on one
# install and fails on another. Every comparison must convert JAX values first (float(), np.asarray());
# this guard makes a forgotten conversion fail here, on every pytest version, naming the side.
_approx = pytest.approx


def _refuse_jax(value, side: str) -> None:
    leaves = jax.tree_util.tree_leaves(value) if isinstance(value, (list, tuple, dict)) else [value]
    if any(isinstance(leaf, jax.Array) for leaf in leaves):
        raise TypeError(f"pytest.approx got a JAX array as its {side} value: convert it with float() or np.asarray()")


class _NumpyOnlyApprox:
    """pytest.approx(expected) that refuses a JAX array on either side of the comparison."""

    __array_ufunc__ = None  # numpy defers `ndarray == self` to __eq__, as it does for pytest's own approx
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, inner):
        self.inner = inner

    def __eq__(self, actual):
        _refuse_jax(actual, "actual")
        return self.inner == actual

    def __ne__(self, actual):
        return not self == actual

    def __repr__(self):
        return repr(self.inner)


def _numpy_only_approx(expected, *args, **kwargs):
    _refuse_jax(expected, "expected")
    return _NumpyOnlyApprox(_approx(expected, *args, **kwargs))


pytest.approx = _numpy_only_approx


def pytest_report_header(config):
    """The versions this install picked and the machine's matmul rate, at the top of every run (and
    so of CI's), so a failure can be matched to a release and a total time scaled to the machine."""
    from importlib.metadata import PackageNotFoundError, version

    from experiments.common.profile import matmul_rate

    names = ("jax", "jaxlib", "flax", "optax", "numpy", "scipy", "pytest", "hypothesis")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} missing")
    rate = matmul_rate(n=2048, repeats=3)
    return ["versions: " + ", ".join(found),
            f"float32 matmul, 2048^3, best of 3: {rate['gflops']:.0f} GFLOP/s ({jax.device_count()} {jax.default_backend()} device)"]
