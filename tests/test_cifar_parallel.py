"""Data parallelism: 4 forced host devices give the loss and gradients of 1 device.

The device count is fixed when JAX initializes, so the 4-device check runs in a
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.cifar.parallel import DataParallel, data_parallel, initialize_distributed

REPO = Path(__file__).resolve().parent.parent

# The same float32 computation with the batch reductions (BatchNorm statistics, the mean loss,
# the gradient sum) split over 4 devices and summed in another order: round-off only, a few ulp
# of float32 (1.2e-7) times the depth of the reduction trees; 1e-5 relative leaves margin and
# still catches any real difference (a per-device BatchNorm would differ at the 1e-2 level).
RTOL = 1e-5

SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
from experiments.cifar import methods, train_steps
from experiments.cifar.configs import TrainConfig
from experiments.cifar.parallel import data_parallel
from experiments.cifar.steps import create_state

assert jax.device_count() == 4, jax.devices()
model, tx, step = train_steps._finetune_step("tiny", 10, 5e-3, 1e-3, 0.9, True)
state = create_state(model, tx, jax.random.PRNGKey(0), (32, 32, 3))
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
labels = rng.integers(0, 10, 16).astype(np.int64)
key = jax.random.PRNGKey(3)

def loss_fn(params, batch_stats, images, labels):
    x = train_steps.crop_flip(key, images)
    logits, upd = model.apply({"params": params, "batch_stats": batch_stats},
                              x.astype(jnp.float32) / 255.0, train=True, mutable=["batch_stats"])
    return jnp.mean(methods.cross_entropy(logits, labels)), upd["batch_stats"]

grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
out = {}
for n in (1, 4):
    dp = data_parallel(jax.devices()[:n])
    st = dp.replicate(state)
    x, y = dp.shard(images), dp.shard(labels)
    (loss, stats), grads = grad_fn(st.params, st.batch_stats, x, y)
    new, metrics = step(st, x, y, key)
    out[n] = dict(
        loss=float(loss),
        grads=[np.asarray(g).ravel().tolist() for g in jax.tree_util.tree_leaves(grads)],
        stats=[np.asarray(s).ravel().tolist() for s in jax.tree_util.tree_leaves(stats)],
        params=[np.asarray(p).ravel().tolist() for p in jax.tree_util.tree_leaves(new.params)],
        step_loss=float(metrics["loss"]),
        x_devices=len(x.sharding.device_set),
        x_shard_rows=x.addressable_shards[0].data.shape[0],
        params_replicated=all(p.sharding.is_fully_replicated for p in jax.tree_util.tree_leaves(new.params)),
        params_devices=len(jax.tree_util.tree_leaves(new.params)[0].sharding.device_set),
    )
try:
    data_parallel().check_batch_size(6)
    out["bad_batch"] = None
except ValueError as err:
    out["bad_batch"] = str(err)
print("RESULT" + json.dumps(out))
"""


def rel_err(a, b) -> float:
    a, b = np.concatenate([np.ravel(x) for x in a]), np.concatenate([np.ravel(x) for x in b])
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def test_four_devices_match_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_ENABLE_X64"] = "1"  # as in the test session: the networks must stay float32 anyway
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    one, four = out["1"], out["4"]
    # The batch really is split: 4 devices, 4 rows each; the parameters stay whole on all 4.
    assert (one["x_devices"], four["x_devices"], four["x_shard_rows"]) == (1, 4, 4)
    assert four["params_replicated"] and four["params_devices"] == 4
    assert four["loss"] == pytest.approx(one["loss"], rel=RTOL)
    assert four["step_loss"] == pytest.approx(one["step_loss"], rel=RTOL)
    assert rel_err(four["grads"], one["grads"]) < RTOL
    assert rel_err(four["stats"], one["stats"]) < RTOL  # BatchNorm statistics of the global batch
    assert rel_err(four["params"], one["params"]) < RTOL
    assert out["bad_batch"] and "divisible by the number of devices (4), got 6" in out["bad_batch"]


def test_single_device_mesh_and_sharding():
    dp = data_parallel()
    assert isinstance(dp, DataParallel) and dp.num_devices == jax.device_count()
    x = dp.shard(np.arange(8 * dp.num_devices, dtype=np.float32).reshape(-1, 2))
    assert np.array_equal(np.asarray(x), np.arange(8 * dp.num_devices, dtype=np.float32).reshape(-1, 2))
    assert dp.local_slice(64) == slice(0, 64)


def test_distributed_needs_all_three_settings(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize_distributed() is False  # single host: nothing to do
    with pytest.raises(ValueError, match="--num-processes"):
        initialize_distributed("localhost:1234", None, 0)
    with pytest.raises(ValueError, match="process_id must be in"):
        initialize_distributed("localhost:1234", 2, 5)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES must be an integer"):
        initialize_distributed()
