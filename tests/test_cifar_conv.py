"""Every convolution formulation of experiments.cifar.conv is lax.conv's function: value, reverse-mode
(vjp) and forward-mode (jvp) derivatives, on the channel counts and strides of the CIFAR ResNets.

Tolerances (errors relative to the largest entry of lax.conv's result, per compared array):
float32 2e-5: every output entry is a sum of at most 9 * 64 = 576 products computed at
``Precision.HIGHEST``, in another summation order than XLA's convolution; the rounding error of such
a sum is a few float32 ulps (1.2e-7) times sqrt(576) ~ 24, i.e. ~3e-6 of the largest entry, so 2e-5
leaves a margin of ~7 and still rejects any wrong tap, stride or padding (errors of order 1).
float64 1e-12: the same sums, with a float64 ulp of 2.2e-16.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.cifar import conv as conv_mod
from experiments.cifar.models import ProjectionHead, SimCLRModel, make_encoder

RTOL = {jnp.float32: 2e-5, jnp.float64: 1e-12}
FORMULATIONS = [impl for impl in conv_mod.IMPLS if impl not in ("auto", "lax")]  # lax is the reference
# (input, output) channels of the CIFAR ResNets' convolutions: stem 3 -> 16, stages 16/32/64.
CHANNELS = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]


def _rel_err(a, b) -> float:
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def _draw(shape_x, shape_w, stride, dtype, seed):
    kx, kw, kdx, kdw, kg = jax.random.split(jax.random.key(seed), 5)
    x = jax.random.normal(kx, shape_x, dtype)
    w = jax.random.normal(kw, shape_w, dtype)
    dx = jax.random.normal(kdx, shape_x, dtype)
    dw = jax.random.normal(kdw, shape_w, dtype)
    g = jax.random.normal(kg, conv_mod.conv_lax(x, w, stride).shape, dtype)
    return x, w, dx, dw, g


def _value_vjp_jvp(impls, stride):
    """For each formulation: (value, (dx, dw) of the vjp with g, jvp tangent along (dx, dw)); one jit."""

    def f(x, w, dx, dw, g):
        out = {}
        for impl in impls:
            conv = lambda x, w, impl=impl: conv_mod.conv2d(x, w, stride, impl)  # noqa: E731
            y, vjp = jax.vjp(conv, x, w)
            _, tangent = jax.jvp(conv, (x, w), (dx, dw))
            out[impl] = (y, *vjp(g), tangent)
        return out

    return jax.jit(f)


def _check_parity(impls, cin, cout, k, stride, dtype, seed=0):
    x, w, dx, dw, g = _draw((2, 6, 6, cin), (k, k, cin, cout), stride, dtype, seed)
    out = _value_vjp_jvp(("lax", *impls), stride)(x, w, dx, dw, g)
    ref = out["lax"]
    assert ref[0].shape == (2, (6 - 1) // stride + 1, (6 - 1) // stride + 1, cout)
    for impl in impls:
        for name, a, b in zip(("value", "vjp dx", "vjp dw", "jvp"), out[impl], ref):
            assert a.shape == b.shape and a.dtype == dtype, (impl, name)
            err = _rel_err(a, b)
            assert err < RTOL[dtype], (impl, name, err)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_every_formulation_equals_lax_conv_in_value_vjp_and_jvp_float32(stride, cin, cout):
    _check_parity(FORMULATIONS, cin, cout, 3, stride, jnp.float32)


@pytest.mark.parametrize("stride", [1, 2])
def test_every_formulation_equals_lax_conv_for_1x1_shortcuts_and_in_float64(stride):
    _check_parity(FORMULATIONS, 16, 32, 1, stride, jnp.float32)  # ResNet-18's 1x1 shortcut convolutions
    _check_parity(FORMULATIONS, 16, 64, 3, stride, jnp.float64)


def test_parity_check_fails_for_a_wrong_kernel_gradient(monkeypatch):
    # the check has the power to see a kernel derivative with two taps swapped
    window_sum = conv_mod.conv_window_sum

    def swapped(x, w, stride=1):
        return window_sum(x, w[:, ::-1], stride)

    monkeypatch.setattr(conv_mod, "conv_window_sum", swapped)
    with pytest.raises(AssertionError, match="dw|jvp"):
        _check_parity(["shiftdot"], 16, 32, 3, 1, jnp.float32)


def test_conv_matches_pytorch_padding_for_stride_two():
    # PyTorch pads 1 on every side for a 3x3 stride-2 conv; XLA's "SAME" would pad (0, 1).
    x = jax.random.normal(jax.random.key(0), (1, 8, 8, 1), jnp.float32)
    w = jnp.zeros((3, 3, 1, 1), jnp.float32).at[0, 0, 0, 0].set(1.0)  # picks x_pad[2h, 2w]
    expected = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))[:, 0:8:2, 0:8:2, :]
    for impl in ("lax", *FORMULATIONS):
        y = conv_mod.conv2d(x, w, 2, impl)
        np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=0, atol=1e-7)


def test_input_without_tangent_costs_no_input_convolution():
    # the stem's input needs no gradient: a symbolic zero tangent adds no conv of zeros
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3), jnp.float32)
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 32), jnp.float32)
    jaxpr = jax.make_jaxpr(jax.grad(lambda w: jnp.sum(conv_mod.conv_shiftdot(x, w, 1) ** 2)))(w)
    convs = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 1  # the forward convolution only


def _encoder_loss(model, variables, x):
    def f(params):
        (_, z), _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=["batch_stats"]
        )
        return jnp.sin(z)

    return f


@pytest.mark.parametrize(
    "arch,impl",
    [("tiny", "shiftdot"), ("tiny", "cols"), pytest.param("resnet32", "auto", marks=pytest.mark.slow),
     pytest.param("resnet32", "shiftdot", marks=pytest.mark.slow)],
)
def test_encoder_is_the_same_function_under_every_conv_impl(arch, impl):
    # tiny has a stride-2 block with the option-A shortcut; resnet32 is the full network.
    # Reverse mode (grad of the summed output) and forward mode (jvp along a parameter direction).
    x = jax.random.uniform(jax.random.key(3), (4, 16, 16, 3), jnp.float32)
    ref_model = SimCLRModel(make_encoder(arch, conv_impl="lax"), ProjectionHead())
    fast_model = SimCLRModel(make_encoder(arch, conv_impl=impl), ProjectionHead())
    variables = ref_model.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3), jnp.float32), train=False)
    params = variables["params"]
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(9), len(leaves))
    direction = treedef.unflatten([jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)])
    f_ref, f_fast = _encoder_loss(ref_model, variables, x), _encoder_loss(fast_model, variables, x)

    def both(f):
        return jax.jit(lambda p, d: (jax.value_and_grad(lambda p: jnp.sum(f(p)))(p), jax.jvp(f, (p,), (d,))[1]))

    (v_ref, g_ref), t_ref = both(f_ref)(params, direction)
    (v_fast, g_fast), t_fast = both(f_fast)(params, direction)
    np.testing.assert_allclose(float(v_fast), float(v_ref), rtol=1e-4)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(g_ref), jax.tree_util.tree_leaves(g_fast)):
        err = float(jnp.max(jnp.abs(a - b))) / (float(jnp.max(jnp.abs(a))) + 1e-12)
        assert err < 1e-3, (jax.tree_util.keystr(path), err)
    assert _rel_err(t_fast, t_ref) < 1e-3


def test_auto_keeps_lax_off_cpu(monkeypatch):
    assert conv_mod.resolve_impl("auto") in ("lax", *FORMULATIONS)
    monkeypatch.setattr(conv_mod.jax, "default_backend", lambda: "gpu")
    assert conv_mod.resolve_impl("auto") == "lax"


def test_conv2d_rejects_bad_input():
    with pytest.raises(ValueError, match="w must"):
        conv_mod.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((2, 2, 2, 3)))
    with pytest.raises(ValueError, match="x must"):
        conv_mod.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 5, 3)))
    with pytest.raises(ValueError, match="conv_impl"):
        conv_mod.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 3)), 1, "fft")
