"""The CIFAR training loops: fine-tuning and probe steps, exact resume, NaN stop, checkpoints.

Small generated data (32x32, 10 classes) and the ``tiny`` network with the ``smoke``
settings, so that every test here shares the same few compiled steps.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.cifar import checkpoint as ckpt
from experiments.cifar import configs
from experiments.cifar import evaluate, loop, monitors, train_steps
from experiments.cifar import train as loops
from experiments.cifar.data import Dataset
from experiments.cifar.noise import make_noisy_labels
from experiments.cifar.steps import TrainState, create_state

CLASSES = tuple(f"c{i}" for i in range(10))


def make_dataset(n: int, seed: int) -> Dataset:
    """Images whose mean colour depends on the class, plus noise: learnable but not trivial."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 10
    rng.shuffle(labels)
    palette = rng.integers(40, 216, size=(10, 3))
    images = palette[labels][:, None, None, :] + rng.normal(0, 40, size=(n, 32, 32, 3))
    return Dataset(np.clip(images, 0, 255).astype(np.uint8), labels, CLASSES, f"generated-{seed}")


@pytest.fixture(scope="module")
def data():
    return make_dataset(96, 0), make_dataset(40, 1)


PRE = dataclasses.replace(configs.pretrain_preset("smoke"), epochs=2, knn_train=64)
TRAIN = dataclasses.replace(configs.train_preset("smoke"), epochs=2, noise="sym:0.5")


def strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in loop.TIMING_FIELDS} for r in rows]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_tree(a, b) -> bool:
    la, da = jax.tree_util.tree_flatten(a)
    lb, db = jax.tree_util.tree_flatten(b)
    return da == db and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("pretrain")
    summary = loops.pretrain(PRE, out, *data)
    return out, summary


@pytest.fixture(scope="module")
def noisy(data):
    train_set = data[0]
    return make_noisy_labels(train_set.labels, TRAIN.noise, num_classes=10, seed=0)


def test_finetune_steps_change_params_and_lower_loss_on_a_fixed_batch():
    # The step the smoke runs use (compiled once for the whole module); the same key every
    # time, so the random crop and flip are the same: a fixed batch.
    model, tx, step = train_steps._finetune_step("tiny", 10, TRAIN.lr, TRAIN.weight_decay, TRAIN.momentum, True)
    state = create_state(model, tx, jax.random.PRNGKey(0), (32, 32, 3))
    batch = make_dataset(32, 3)
    losses, s = [], state
    for i in range(5):
        s, m = step(s, batch.images, batch.labels, jax.random.PRNGKey(7))
        assert m["loss"].dtype == jnp.float32
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0], losses
    kernel0 = state.params["encoder"]["stem"]["conv"]["kernel"]
    assert not np.allclose(kernel0, s.params["encoder"]["stem"]["conv"]["kernel"])
    assert not same_tree(state.batch_stats, s.batch_stats)  # BatchNorm in training mode


def test_probe_step_updates_only_the_linear_layer():
    model = train_steps.classifier("tiny", 10)
    tx = train_steps.train_optimizer(TRAIN)
    state = create_state(model, tx, jax.random.PRNGKey(0), (32, 32, 3))
    state = state.replace(opt_state=tx.init(state.params["linear"]))
    step = train_steps.make_probe_step(tx)
    feats = jax.random.normal(jax.random.PRNGKey(1), (32, 16), jnp.float32)
    labels = jnp.arange(32) % 10
    new, m = step(state, feats, labels)
    new, m2 = step(new, feats, labels)
    assert float(m2["loss"]) < float(m["loss"])
    assert same_tree(new.params["encoder"], state.params["encoder"])
    assert same_tree(new.batch_stats, state.batch_stats)
    assert not same_tree(new.params["linear"], state.params["linear"])


def test_probe_run_leaves_the_pretrained_encoder_unchanged(tmp_path, data, pretrained, noisy):
    pre_dir, _ = pretrained
    cfg = dataclasses.replace(TRAIN, mode="probe")
    summary = loops.train(cfg, tmp_path, *data, noisy, init=pre_dir / "checkpoint.msgpack")
    pre_state, _ = ckpt.load_raw(pre_dir)
    run_state, meta = ckpt.load_raw(tmp_path)
    assert meta["mode"] == "probe" and summary["epochs_done"] == 2 and summary["encoder_frozen"] is True
    assert same_tree(run_state["params"]["encoder"], pre_state["params"]["encoder"])
    assert same_tree(run_state["batch_stats"]["encoder"], pre_state["batch_stats"]["encoder"])
    # ...while the linear layer did train (it starts from a random init with seed 0).
    fresh = create_state(train_steps.classifier("tiny", 10), train_steps.train_optimizer(cfg), jax.random.PRNGKey(0), (32, 32, 3))
    assert not same_tree(run_state["params"]["linear"], jax.device_get(fresh.params["linear"]))


def test_pretrain_kill_and_resume_gives_the_same_metrics(tmp_path, data, pretrained):
    full_dir, full = pretrained
    loops.pretrain(PRE, tmp_path, *data, stop_after_epochs=1)  # "killed" after epoch 1's checkpoint
    assert ckpt.load_raw(tmp_path)[1]["epoch"] == 1
    resumed = loops.pretrain(PRE, tmp_path, *data, resume=True)
    assert strip_timing([resumed["last"]]) == strip_timing([full["last"]])
    assert strip_timing(read_jsonl(tmp_path / "metrics.jsonl")) == strip_timing(read_jsonl(full_dir / "metrics.jsonl"))
    assert same_tree(ckpt.load_raw(tmp_path)[0], ckpt.load_raw(full_dir)[0])


def test_finetune_kill_and_resume_gives_the_same_metrics(tmp_path, data, pretrained, noisy):
    init = pretrained[0] / "checkpoint.msgpack"
    full = loops.train(TRAIN, tmp_path / "full", *data, noisy, init=init)
    loops.train(TRAIN, tmp_path / "killed", *data, noisy, init=init, stop_after_epochs=1)
    with pytest.raises(ValueError, match="--resume"):  # a second start would overwrite it
        loops.train(TRAIN, tmp_path / "killed", *data, noisy, init=init)
    resumed = loops.train(TRAIN, tmp_path / "killed", *data, noisy, init=init, resume=True)
    for key in ("best", "last"):
        assert strip_timing([resumed[key]]) == strip_timing([full[key]])
    assert len(read_jsonl(tmp_path / "killed" / "metrics.jsonl")) == 2
    assert same_tree(ckpt.load_raw(tmp_path / "killed")[0], ckpt.load_raw(tmp_path / "full")[0])
    assert (tmp_path / "killed" / "noisy_labels.npz").exists()
    # The metric definitions: against the noisy labels on the mislabelled points only.
    last = full["last"]
    assert 0.0 <= last["train_acc_clean"] <= 1.0 and 0.0 <= last["noisy_points_memorized"] <= 1.0
    assert np.isfinite(last["noisy_points_loss"])


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, data, noisy):
    cfg = dataclasses.replace(TRAIN, epochs=3)
    loops.train(cfg, tmp_path, *data, noisy, stop_after_epochs=1)
    good = (tmp_path / "checkpoint.msgpack").read_bytes()

    def poison(epoch, step, metrics):  # epoch and step count from 0 here
        return {**metrics, "loss": jnp.float32(np.nan)} if (epoch, step) == (1, 1) else metrics

    with pytest.raises(loop.NonFiniteLoss, match=r"loss is nan at epoch 2 step 2;.*last good checkpoint"):
        loops.train(cfg, tmp_path, *data, noisy, resume=True, step_hook=poison)
    assert (tmp_path / "checkpoint.msgpack").read_bytes() == good
    assert ckpt.load_raw(tmp_path)[1]["epoch"] == 1
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 1


def test_checkpoint_of_another_architecture_is_refused(tmp_path, pretrained):
    with pytest.raises(ValueError, match="arch 'tiny'.*'resnet32'"):
        loops.encoder_from_pretrain(pretrained[0] / "checkpoint.msgpack", "resnet32", {})
    state = {"w": np.ones((2, 3), np.float32)}
    path = ckpt.save(tmp_path / "c.msgpack", state, {"kind": "train", "arch": "tiny"})
    with pytest.raises(ValueError, match="does not fit"):
        ckpt.restore(path, {"w": np.ones((3, 3), np.float32)}, arch="tiny")
    restored, meta = ckpt.restore(path, {"w": np.zeros((2, 3), np.float32)}, arch="tiny")
    assert restored["w"].dtype == np.float32 and np.all(restored["w"] == 1)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = ckpt.save(tmp_path / "c.msgpack", {"w": np.ones(3, np.float32)}, {"arch": "tiny", "epoch": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError):
        ckpt.save(path, {"w": np.zeros(3, np.float32)}, {"arch": "tiny", "epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.msgpack"]  # no temporary file left behind


def test_data_order_and_keys_are_functions_of_seed_epoch_step():
    a, b = loop.epoch_order(3, 5, 100), loop.epoch_order(3, 5, 100)
    assert np.array_equal(a, b) and sorted(a) == list(range(100))
    assert not np.array_equal(a, loop.epoch_order(3, 6, 100))
    assert not np.array_equal(a, loop.epoch_order(4, 5, 100))
    k = jax.random.key_data(loop.step_key(0, 1, 2))
    assert np.array_equal(k, jax.random.key_data(loop.step_key(0, 1, 2)))
    assert not np.array_equal(k, jax.random.key_data(loop.step_key(0, 2, 1)))


def test_knn_accuracy_on_separable_and_on_shuffled_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    centres = rng.normal(size=(5, 8)) * 5
    feats = centres[labels] + rng.normal(size=(200, 8)) * 0.1
    test_labels = rng.integers(0, 5, 50)
    test_feats = centres[test_labels] + rng.normal(size=(50, 8)) * 0.1
    assert monitors.knn_accuracy(feats, labels, test_feats, test_labels, k=20, num_classes=5) == 1.0
    shuffled = monitors.knn_accuracy(feats, rng.permutation(labels), test_feats, test_labels, k=20, num_classes=5)
    assert shuffled < 0.6


def test_crop_flip_keeps_pixels_and_is_deterministic():
    images = jnp.asarray(make_dataset(8, 0).images)
    a = train_steps.crop_flip(jax.random.PRNGKey(0), images)
    assert a.shape == images.shape and a.dtype == images.dtype
    assert np.array_equal(a, train_steps.crop_flip(jax.random.PRNGKey(0), images))
    assert not np.array_equal(a, train_steps.crop_flip(jax.random.PRNGKey(1), images))
    # With no padding a crop is the image itself, possibly mirrored.
    b = train_steps.crop_flip(jax.random.PRNGKey(0), images, pad=0)
    for i in range(8):
        assert np.array_equal(b[i], images[i]) or np.array_equal(b[i], images[i][:, ::-1])


def test_presets_are_valid_and_paper_defaults():
    for name in configs.PRESETS:
        configs.pretrain_preset(name), configs.train_preset(name)
    pre, tr = configs.pretrain_preset("paper"), configs.train_preset("paper")
    assert (pre.arch, pre.epochs, pre.lr, pre.weight_decay, pre.batch_size, pre.temperature, pre.projection_dim) == (
        "resnet32", 1000, 3e-4, 1e-6, 128, 0.5, 64
    )
    assert (tr.lr, tr.weight_decay, tr.batch_size) == (5e-3, 1e-3, 64)
    with pytest.raises(ValueError, match="mode"):
        dataclasses.replace(tr, mode="linear")
    with pytest.raises(ValueError, match="preset"):
        configs.train_preset("huge")


def test_a_diverging_probe_stops_with_a_message(tmp_path, data, pretrained, noisy):
    cfg = dataclasses.replace(TRAIN, mode="probe", lr=1e30, momentum=0.0)  # overflows at once
    with pytest.raises(loop.NonFiniteLoss, match=r"loss is (nan|inf) at epoch 1 step \d+"):
        loops.train(cfg, tmp_path, *data, noisy, init=pretrained[0])


def test_label_metrics_separate_the_mislabelled_points():
    clean = np.array([0, 1, 2, 0])
    noisy = np.array([0, 2, 2, 1])  # points 1 and 3 are mislabelled
    logits = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]))
    m = evaluate.label_metrics(logits, clean, noisy)
    assert m["acc_clean"] == 0.75 and m["acc_noisy"] == 0.75
    assert m["noisy_points_memorized"] == 0.5  # point 1 predicted as its noisy label, point 3 not
    assert m["noisy_points_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.1)) / 2, rel=1e-6)
    assert m["clean_points_loss"] == pytest.approx(-np.log(0.8), rel=1e-6)
    none = evaluate.label_metrics(logits, clean, clean)
    assert none["noisy_points_loss"] is None and none["noisy_points_memorized"] is None
