"""Tests of the CIFAR networks, convolution formulations, augmentations and the SimCLR step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

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


# The convolution formulations are tested in tests/test_cifar_conv.py.
