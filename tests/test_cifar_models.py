"""Tests of the CIFAR networks, convolution formulations, augmentations and the SimCLR step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.cifar import conv as conv_mod
from experiments.cifar.augment import normalize, simclr_augment
from experiments.cifar.models import (
    ARCHS,
    Classifier,
    ProjectionHead,
    SimCLRModel,
    feature_dim,
    make_encoder,
    param_count,
)
from experiments.cifar.steps import TrainState, create_state, make_simclr_step, simclr_optimizer


def _init(model, shape=(2, 32, 32, 3)):
    return model.init(jax.random.key(0), jnp.zeros(shape, jnp.float32), train=False)


def _shapes(model, shape=(2, 32, 32, 3)):
    """Parameter shapes without running the initializers (fast)."""
    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape, jnp.float32), train=False))


def test_resnet32_has_the_papers_parameter_count():
    params = _shapes(Classifier(make_encoder("resnet32"), 10))["params"]
    assert 450_000 <= param_count(params) <= 480_000
    stem = params["encoder"]["stem"]["conv"]["kernel"]
    assert stem.shape == (3, 3, 3, 16)
    assert params["encoder"]["stage3"]["block4"]["conv2"]["kernel"].shape == (3, 3, 64, 64)
    assert "block5" not in params["encoder"]["stage3"] and "stage4" not in params["encoder"]


def test_resnet18_is_the_cifar_variant():
    params = _shapes(Classifier(make_encoder("resnet18"), 10))["params"]
    assert params["encoder"]["stem"]["conv"]["kernel"].shape == (3, 3, 3, 64)  # 3x3 stem, no 7x7
    assert 11_000_000 <= param_count(params) <= 11_300_000


@pytest.mark.parametrize("arch", ["tiny", pytest.param("resnet32", marks=pytest.mark.slow)])
def test_encoder_and_heads_output_shapes(arch):
    x = jax.random.uniform(jax.random.key(1), (3, 32, 32, 3), jnp.float32)
    model = SimCLRModel(make_encoder(arch), ProjectionHead(out_dim=64))
    variables = _init(model)
    feats, proj = model.apply(variables, x, train=False)
    assert feats.shape == (3, feature_dim(arch)) and proj.shape == (3, 64)
    assert feats.dtype == jnp.float32 and proj.dtype == jnp.float32
    clf = Classifier(make_encoder(arch), 7)
    logits = clf.apply(_init(clf), x, train=False)
    assert logits.shape == (3, 7)


def test_unknown_arch_and_conv_impl_are_rejected():
    with pytest.raises(ValueError, match="arch"):
        make_encoder("vgg")
    with pytest.raises(ValueError, match="conv_impl"):
        make_encoder("tiny", conv_impl="fft")


def test_params_are_float32_under_x64():
    assert jax.config.read("jax_enable_x64")
    params = _init(SimCLRModel(make_encoder("tiny"), ProjectionHead()))["params"]
    assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}


# --- augmentation -------------------------------------------------------------------------


def test_normalize_maps_uint8_to_unit_interval():
    x = jnp.array([[[[0, 128, 255]]]], jnp.uint8)
    y = normalize(x)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y).ravel(), [0.0, 128 / 255, 1.0], rtol=1e-6)


def test_augment_shape_range_determinism():
    x = jax.random.uniform(jax.random.key(2), (6, 16, 16, 3), jnp.float32)
    aug = jax.jit(simclr_augment)
    a = aug(jax.random.key(3), x)
    b = aug(jax.random.key(3), x)
    c = aug(jax.random.key(4), x)
    assert a.shape == x.shape and a.dtype == jnp.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    assert not np.allclose(np.asarray(a), np.asarray(x))


def test_augment_rejects_bad_shape():
    with pytest.raises(ValueError, match="images"):
        simclr_augment(jax.random.key(0), jnp.zeros((4, 32, 32)))


# --- SimCLR step ---------------------------------------------------------------------------


def test_simclr_step_changes_params_and_lowers_loss_on_a_fixed_batch():
    model = SimCLRModel(make_encoder("tiny"), ProjectionHead(out_dim=16))
    tx = simclr_optimizer(learning_rate=1e-2)
    state = create_state(model, tx, jax.random.key(0), (16, 16, 3))
    assert isinstance(state, TrainState)
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8))
    step = jax.jit(make_simclr_step(model, tx, augment=False))
    key = jax.random.key(1)
    losses = []
    new = state
    for _ in range(5):
        new, metrics = step(new, images, key)
        losses.append(float(metrics["loss"]))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), state.params, new.params)
    assert all(jax.tree_util.tree_leaves(changed))
    assert int(new.step) == 5
    assert {p.dtype for p in jax.tree_util.tree_leaves(new.params)} == {jnp.dtype(jnp.float32)}


@pytest.mark.slow  # the augmented step also runs in tests/test_bench.py; this adds determinism
def test_simclr_step_with_augmentation_runs_and_is_deterministic():
    model = SimCLRModel(make_encoder("tiny"), ProjectionHead(out_dim=16))
    tx = simclr_optimizer()
    state = create_state(model, tx, jax.random.key(0), (16, 16, 3))
    images = jnp.asarray(np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8))
    step = jax.jit(make_simclr_step(model, tx))
    _, m1 = step(state, images, jax.random.key(5))
    _, m2 = step(state, images, jax.random.key(5))
    _, m3 = step(state, images, jax.random.key(6))
    assert float(m1["loss"]) == float(m2["loss"])
    assert float(m1["loss"]) != float(m3["loss"])


# --- convolution formulations --------------------------------------------------------------


@pytest.mark.parametrize(
    "batch,size,cin,cout,k,stride",
    [(3, 8, 4, 6, 3, 1), (2, 9, 3, 5, 3, 2), (2, 8, 5, 7, 3, 2), (2, 8, 4, 6, 1, 2), (2, 6, 3, 4, 1, 1)],
)
def test_shiftdot_conv_equals_lax_conv_in_value_and_gradients(batch, size, cin, cout, k, stride):
    kx, kw, kg = jax.random.split(jax.random.key(batch * 100 + size * 10 + stride), 3)
    x = jax.random.normal(kx, (batch, size, size, cin), jnp.float32)
    w = jax.random.normal(kw, (k, k, cin, cout), jnp.float32)
    y_ref = conv_mod.conv_lax(x, w, stride)
    g = jax.random.normal(kg, y_ref.shape, jnp.float32)

    def loss(impl):
        return lambda x, w: jnp.sum(conv_mod.conv2d(x, w, stride, impl) * g)

    y = jax.jit(lambda x, w: conv_mod.conv2d(x, w, stride, "shiftdot"))(x, w)
    assert y.shape == y_ref.shape == (batch, (size - 1) // stride + 1, (size - 1) // stride + 1, cout)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-4, atol=1e-4)
    ref = jax.grad(loss("lax"), argnums=(0, 1))(x, w)
    got = jax.jit(jax.grad(loss("shiftdot"), argnums=(0, 1)))(x, w)
    for a, b in zip(got, ref):
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4 * scale)


def test_conv_matches_pytorch_padding_for_stride_two():
    # PyTorch pads 1 on every side for a 3x3 stride-2 conv; XLA's "SAME" would pad (0, 1).
    x = jax.random.normal(jax.random.key(0), (1, 8, 8, 1), jnp.float32)
    w = jnp.zeros((3, 3, 1, 1), jnp.float32).at[0, 0, 0, 0].set(1.0)  # picks x_pad[2h, 2w]
    y = conv_mod.conv2d(x, w, 2, "lax")
    expected = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))[:, 0:8:2, 0:8:2, :]
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=0, atol=0)


@pytest.mark.parametrize(
    "arch,impl",
    [("tiny", "shiftdot"), pytest.param("resnet32", "auto", marks=pytest.mark.slow),
     pytest.param("resnet32", "shiftdot", marks=pytest.mark.slow)],
)
def test_encoder_is_the_same_function_under_every_conv_impl(arch, impl):
    # tiny has a stride-2 block with the option-A shortcut; resnet32 is the full network
    x = jax.random.uniform(jax.random.key(3), (4, 16, 16, 3), jnp.float32)
    ref_model = SimCLRModel(make_encoder(arch, conv_impl="lax"), ProjectionHead())
    fast_model = SimCLRModel(make_encoder(arch, conv_impl=impl), ProjectionHead())
    variables = _init(ref_model, (2, 16, 16, 3))

    def loss(model):
        def f(params):
            (_, z), _ = model.apply(
                {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True,
                mutable=["batch_stats"],
            )
            return jnp.sum(jnp.sin(z))

        return f

    v_ref, g_ref = jax.value_and_grad(loss(ref_model))(variables["params"])
    v_fast, g_fast = jax.jit(jax.value_and_grad(loss(fast_model)))(variables["params"])
    np.testing.assert_allclose(float(v_fast), float(v_ref), rtol=1e-4)
    flat_ref = jax.tree_util.tree_leaves_with_path(g_ref)
    flat_fast = jax.tree_util.tree_leaves(g_fast)
    for (path, a), b in zip(flat_ref, flat_fast):
        scale = float(jnp.max(jnp.abs(a))) + 1e-12
        err = float(jnp.max(jnp.abs(a - b))) / scale
        assert err < 1e-3, (jax.tree_util.keystr(path), err)


def test_auto_keeps_lax_off_cpu_and_uses_the_measured_hybrid_on_cpu(monkeypatch):
    assert conv_mod.resolve_impl("auto") == ("hybrid" if jax.default_backend() == "cpu" else "lax")
    monkeypatch.setattr(conv_mod.jax, "default_backend", lambda: "gpu")
    assert conv_mod.resolve_impl("auto") == "lax"
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3), jnp.float32)
    for cout in (4, conv_mod.HYBRID_MIN_FEATURES):  # both branches of the hybrid
        w = jax.random.normal(jax.random.key(1), (3, 3, 3, cout), jnp.float32)
        g = jax.grad(lambda w: jnp.sum(conv_mod.conv2d(x, w, 2, "hybrid") ** 2))(w)
        g_ref = jax.grad(lambda w: jnp.sum(conv_mod.conv_lax(x, w, 2) ** 2))(w)
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-4, atol=1e-4)


def test_conv2d_rejects_bad_kernel():
    with pytest.raises(ValueError, match="w must"):
        conv_mod.conv2d(jnp.zeros((1, 4, 4, 2)), jnp.zeros((2, 2, 2, 3)))
