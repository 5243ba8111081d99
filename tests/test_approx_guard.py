"""The conftest guard around pytest.approx: JAX arrays are refused on either side, on every pytest
version, so a comparison that would break on a newer pytest fails on every install instead."""

import jax.numpy as jnp
import numpy as np
import pytest


def test_numpy_and_python_values_compare_as_with_pytest_approx():
    assert 1.0 == pytest.approx(1.0 + 1e-9)
    assert np.array([1.0, 2.0]) == pytest.approx([1.0, 2.0])
    assert {"a": 1.0} == pytest.approx({"a": 1.0})
    assert not (np.array([1.0, 2.1]) == pytest.approx([1.0, 2.0]))
    assert 1.1 != pytest.approx(1.0)


@pytest.mark.parametrize("side", ["actual", "expected"])
def test_a_jax_array_on_either_side_is_refused(side):
    value = jnp.asarray(1.0)
    with pytest.raises(TypeError, match=side):
        if side == "actual":
            assert value == pytest.approx(1.0)
        else:
            assert 1.0 == pytest.approx(value)
