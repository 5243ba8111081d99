"""The training loops: SimCLR pre-training, and training on noisy labels (linear probe or fine-tuning).

Both loops are resumable and exact: the data order of epoch e is
``permutation(seed, e)`` and the random key of step s of epoch e is
``fold_in(fold_in(key(seed), e), s)``, pure functions of (seed, epoch, step). A
checkpoint after every epoch holds the state, the finished epoch count and the
metrics so far, so a killed run resumed from its last checkpoint ends with the
same numbers as one that ran through. A non-finite loss stops the run with
:class:`NonFiniteLoss` naming the epoch and step; the checkpoint of the last good
epoch stays in place.

Per epoch, training on noisy labels reports (Section 5, Fig. 1-3 of the paper):
``test_acc``/``test_loss``; ``train_acc_clean`` and ``train_acc_noisy`` (the model in
evaluation mode on the training points, against the true and the noisy labels);
``noisy_points_loss`` (cross-entropy w.r.t. the noisy labels on the mislabelled points,
Fig. 2d), ``noisy_points_memorized`` (the fraction of them predicted as their noisy
label), ``clean_points_loss``; and ``loss``, the mean training loss of the epoch.
Pre-training reports the mean NT-Xent loss and a k-NN monitor accuracy.

The loss of training on noisy labels is the run's :class:`experiments.cifar.methods.Method`
(``cfg.method``: cross-entropy, ELR, Mixup, Crust). Its state is ``TrainState.method_state``,
checkpointed with the rest; its ``epoch_start`` hook may pick the points an epoch visits
(``points_trained`` in the row), from the state only, so resume stays exact. Rows also give
``test_acc_top5`` and ``train_loss_clean``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from experiments.cifar import checkpoint as ckpt
from experiments.cifar.augment import normalize
from experiments.cifar import methods
from experiments.cifar.configs import PretrainConfig, TrainConfig
from experiments.cifar.methods import EpochView, Method, cross_entropy
from experiments.cifar.models import Classifier, ProjectionHead, SimCLRModel, make_encoder
from experiments.cifar.parallel import DataParallel, data_parallel
from experiments.cifar.steps import TrainState, create_state, make_simclr_step, simclr_optimizer
from experiments.common import runs
from experiments.common.runs import atomic_write_text, start_run, write_json
from experiments.analysis.spectrum import monitor_row as spectral_monitor

METRICS_JSONL = "metrics.jsonl"
METRICS_JSON = "metrics.json"
EVAL_BATCH = 512
# Fields of a metrics row that measure the machine, not the run: excluded when runs are compared.
TIMING_FIELDS = ("time_s", "images_per_s")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


# ----------------------------------------------------------------------------- randomness and order


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the n training points: a function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_key(seed: int, epoch: int, step: int) -> jax.Array:
    """The random key of step ``step`` of epoch ``epoch``: a function of (seed, epoch, step)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), epoch), step)


# ----------------------------------------------------------------------------- optimizers


def pretrain_optimizer(cfg: PretrainConfig) -> optax.GradientTransformation:
    """Adam with coupled L2 weight decay, as ``torch.optim.Adam(lr, weight_decay=wd)``."""
    return simclr_optimizer(cfg.lr, cfg.weight_decay)


def train_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """SGD with coupled L2 weight decay, as ``torch.optim.SGD(lr, momentum, weight_decay=wd)``."""
    momentum = cfg.momentum if cfg.momentum > 0 else None
    return optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.sgd(cfg.lr, momentum))


# ----------------------------------------------------------------------------- steps


def crop_flip(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """The standard supervised CIFAR augmentation: pad by ``pad`` (zeros), random crop back to
    H x W, horizontal flip with probability 0.5. Works on any dtype; image i uses
    ``split(key, B)[i]``."""
    b, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))

    def one(k, img):
        k_y, k_x, k_f = jax.random.split(k, 3)
        y = jax.random.randint(k_y, (), 0, 2 * pad + 1)
        x = jax.random.randint(k_x, (), 0, 2 * pad + 1)
        out = jax.lax.dynamic_slice(img, (y, x, 0), (h, w, img.shape[-1]))
        return jnp.where(jax.random.uniform(k_f, ()) < 0.5, out[:, ::-1], out)

    return jax.vmap(one)(jax.random.split(key, b), padded)


def _method_key(key: jax.Array) -> jax.Array:
    """The method's key of a step (``prepare``), apart from the augmentation's ``key``."""
    return jax.random.fold_in(key, 1)


def make_finetune_step(model: Classifier, tx: optax.GradientTransformation, *, augment: bool,
                       method: Method | None = None):
    """One SGD step of end-to-end training on ``(images_uint8, labels)``: the method's loss
    (default cross-entropy) on its prepared inputs, BatchNorm in training mode.
    ``step(state, images, labels, key, indices=None) -> (state, {"loss", "acc"})``; ``indices``
    are the batch's positions in the training set (the method state's rows; default 0..B-1)."""
    method = method or methods.MODULES["ce"].make()

    def loss_fn(params, batch_stats, x, labels, indices, method_state, aux):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
        )
        loss, method_state = method.loss(method_state, logits, labels, indices, aux)
        return loss, (logits, updates["batch_stats"], jax.lax.stop_gradient(method_state))

    @jax.jit
    def step(state: TrainState, images, labels, key, indices=None):
        if indices is None:
            indices = jnp.arange(images.shape[0])
        if augment:
            images = crop_flip(key, images)
        x, aux = method.prepare(_method_key(key), normalize(images), labels, indices, state.method_state)
        (loss, (logits, batch_stats, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, x, labels, indices, state.method_state, aux
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        acc = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
        new = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
                         method_state=method_state)
        return new, {"loss": loss, "acc": acc}

    return step


def linear_logits(params: dict, features: jax.Array) -> jax.Array:
    """The classifier's last layer (flax Dense ``linear``) applied to pooled features."""
    return features.astype(jnp.float32) @ params["kernel"] + params["bias"]


def make_probe_step(tx: optax.GradientTransformation, method: Method | None = None):
    """One SGD step of the linear probe on precomputed features of the frozen encoder.

    ``state`` is the whole classifier's state, but only ``params["linear"]`` enters the
    gradient and the optimizer (``state.opt_state`` is the linear layer's); the encoder's
    parameters and BatchNorm statistics pass through untouched. The method (default
    cross-entropy) prepares the features (Mixup mixes them) and gives the loss.
    ``step(state, features, labels, key=None, indices=None) -> (state, {"loss", "acc"})``."""
    method = method or methods.MODULES["ce"].make()

    def loss_fn(linear, features, labels, indices, method_state, aux):
        logits = linear_logits(linear, features)
        loss, method_state = method.loss(method_state, logits, labels, indices, aux)
        return loss, (logits, jax.lax.stop_gradient(method_state))

    @jax.jit
    def step(state: TrainState, features, labels, key=None, indices=None):
        if indices is None:
            indices = jnp.arange(features.shape[0])
        key = jax.random.PRNGKey(0) if key is None else key
        x, aux = method.prepare(_method_key(key), features, labels, indices, state.method_state)
        linear = state.params["linear"]
        (loss, (logits, method_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            linear, x, labels, indices, state.method_state, aux
        )
        updates, opt_state = tx.update(grads, state.opt_state, linear)
        params = {**state.params, "linear": optax.apply_updates(linear, updates)}
        acc = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
        new = TrainState(step=state.step + 1, params=params, batch_stats=state.batch_stats, opt_state=opt_state,
                         method_state=method_state)
        return new, {"loss": loss, "acc": acc}

    return step


# Built once per setting and kept: a second run in the same process (a resume, the tests)
# reuses the compiled step instead of compiling it again.


@functools.lru_cache(maxsize=None)
def _simclr_step(arch: str, projection_dim: int, lr: float, weight_decay: float, temperature: float):
    model = simclr_model(arch, projection_dim)
    tx = simclr_optimizer(lr, weight_decay)
    return model, tx, jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=True))


@functools.lru_cache(maxsize=None)
def _finetune_step(arch: str, num_classes: int, lr: float, weight_decay: float, momentum: float, augment: bool,
                   method: tuple = ("ce", ())):
    cfg = TrainConfig(lr=lr, weight_decay=weight_decay, momentum=momentum)
    model, tx = classifier(arch, num_classes), train_optimizer(cfg)
    return model, tx, make_finetune_step(model, tx, augment=augment, method=methods.from_key(method))


@functools.lru_cache(maxsize=None)
def _probe_step(lr: float, weight_decay: float, momentum: float, method: tuple = ("ce", ())):
    tx = train_optimizer(TrainConfig(lr=lr, weight_decay=weight_decay, momentum=momentum))
    return tx, make_probe_step(tx, methods.from_key(method))




@functools.lru_cache(maxsize=None)
def _encode(arch: str):
    return make_encode(make_encoder(arch))


@functools.lru_cache(maxsize=None)
def _predict(arch: str, num_classes: int):
    model = classifier(arch, num_classes)

    @jax.jit
    def predict(variables, x):
        return model.apply(variables, normalize(x), train=False)

    return predict


# ----------------------------------------------------------------------------- evaluation


def _batched(fn: Callable, dp: DataParallel, arrays: tuple[np.ndarray, ...], batch: int = EVAL_BATCH):
    """Apply a jit-ed ``fn(*batch_arrays)`` over the leading axis in fixed-size, device-sharded
    chunks (the last one padded, so nothing recompiles); concatenate the results on the host."""
    n = arrays[0].shape[0]
    batch = max(dp.num_devices, (min(batch, n) + dp.num_devices - 1) // dp.num_devices * dp.num_devices)
    outs = []
    for start in range(0, n, batch):
        chunk = [a[start : start + batch] for a in arrays]
        m = chunk[0].shape[0]
        if m < batch:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch - m, axis=0)]) for c in chunk]
        out = _replicated(dp)(fn(*[jax.device_put(c, dp.batch) for c in chunk]))
        outs.append(np.asarray(jax.device_get(out))[:m])
    return np.concatenate(outs)


@functools.lru_cache(maxsize=None)
def _replicated(dp: DataParallel) -> Callable:
    """Gather a sharded result onto every device (on several hosts, every host can then read it)."""
    return jax.jit(lambda a: a, out_shardings=dp.replicated)


def make_encode(encoder) -> Callable:
    """``encode(variables, images_uint8) -> (B, D)`` pooled features, BatchNorm in evaluation mode."""

    @jax.jit
    def encode(variables, images):
        return encoder.apply(variables, normalize(images), train=False)

    return encode


def features(encode: Callable, variables: dict, images: np.ndarray, dp: DataParallel) -> np.ndarray:
    variables = dp.replicate(variables)
    return _batched(lambda x: encode(variables, x), dp, (images,))


def knn_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    *,
    k: int,
    num_classes: int,
    temperature: float = 0.1,
) -> float:
    """Weighted k-NN accuracy on cosine similarity (Wu et al. 2018, the usual SimCLR monitor):
    each of the k most similar training points votes for its label with weight exp(cos / t)."""
    k = min(k, train_features.shape[0])
    tr = jnp.asarray(train_features, jnp.float32)
    te = jnp.asarray(test_features, jnp.float32)
    tr = tr / jnp.maximum(jnp.linalg.norm(tr, axis=1, keepdims=True), 1e-12)
    te = te / jnp.maximum(jnp.linalg.norm(te, axis=1, keepdims=True), 1e-12)
    onehot = jax.nn.one_hot(jnp.asarray(train_labels), num_classes, dtype=jnp.float32)
    correct = 0
    for start in range(0, te.shape[0], 1024):
        sims = te[start : start + 1024] @ tr.T
        top, idx = jax.lax.top_k(sims, k)
        votes = jnp.einsum("bk,bkc->bc", jnp.exp(top / temperature), onehot[idx])
        pred = np.asarray(jnp.argmax(votes, axis=1))
        correct += int(np.sum(pred == np.asarray(test_labels[start : start + 1024])))
    return correct / te.shape[0]


def label_metrics(logits: np.ndarray, clean: np.ndarray, noisy: np.ndarray | None = None) -> dict:
    """Accuracy and loss of ``logits`` against the clean labels, and (with ``noisy``) the noisy
    labels, the loss on the mislabelled points and the fraction of them memorized."""
    logits = jnp.asarray(logits, jnp.float32)
    pred = np.asarray(jnp.argmax(logits, axis=1))
    top5 = np.asarray(jax.lax.top_k(logits, min(5, logits.shape[1]))[1])
    out = {
        "acc_clean": float(np.mean(pred == clean)),
        "acc_clean_top5": float(np.mean(np.any(top5 == np.asarray(clean)[:, None], axis=1))),
        "loss_clean": float(jnp.mean(cross_entropy(logits, jnp.asarray(clean)))),
    }
    if noisy is not None:
        ce_noisy = np.asarray(cross_entropy(logits, jnp.asarray(noisy)))
        wrong = noisy != clean
        out["acc_noisy"] = float(np.mean(pred == noisy))
        out["loss_noisy"] = float(np.mean(ce_noisy))
        # None (JSON null) where there are no such points, e.g. --noise none.
        out["noisy_points_loss"] = float(np.mean(ce_noisy[wrong])) if wrong.any() else None
        out["noisy_points_memorized"] = float(np.mean(pred[wrong] == noisy[wrong])) if wrong.any() else None
        out["clean_points_loss"] = float(np.mean(ce_noisy[~wrong])) if (~wrong).any() else None
    return out


# ----------------------------------------------------------------------------- run bookkeeping


def _finite_tree(tree) -> bool:
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return bool(all(bool(jnp.all(jnp.isfinite(x))) for x in leaves))


def _state_tree(state: TrainState) -> dict:
    tree = {
        "step": state.step,
        "params": state.params,
        "batch_stats": state.batch_stats,
        "opt_state": state.opt_state,
    }
    if state.method_state is not None:  # training on noisy labels: the method's state is checkpointed too
        tree["method"] = state.method_state
    return tree


def _from_tree(tree: dict) -> TrainState:
    return TrainState(
        step=tree["step"], params=tree["params"], batch_stats=tree["batch_stats"], opt_state=tree["opt_state"],
        method_state=tree.get("method"),
    )


def _is_writer() -> bool:
    """Only process 0 writes files in a multi-host run (all processes compute the same metrics)."""
    return jax.process_index() == 0


def _write_history(out: Path, history: list[dict]) -> None:
    if not _is_writer():
        return
    atomic_write_text(out / METRICS_JSONL, "".join(json.dumps(row) + "\n" for row in history))


def _append_history(out: Path, row: dict) -> None:
    if not _is_writer():
        return
    with open(out / METRICS_JSONL, "a") as f:
        f.write(json.dumps(row) + "\n")


# Settings that may change on --resume without changing the epochs already run: they are
# recorded in config.json with the epoch they took effect. Every other change is refused.
RESUMABLE_CHANGES = ("epochs", "data")
RUN_FILES = {
    **{k: v for k, v in runs.COMMON_FILES.items() if k != "metrics.json"},
    "metrics.jsonl": "one JSON line per finished epoch (loss, accuracies, time)",
    "metrics.json": "the summary at the end of the run (best and last epoch, epochs done)",
    ckpt.CHECKPOINT: "the last checkpoint (weights, optimizer state, epoch, settings, data identity; "
                     "sha256-checked on load); --resume continues from it",
    ckpt.PREVIOUS: "the checkpoint of the epoch before, kept in case the last one is damaged",
    "noisy_labels.npz": "train only: the noisy labels, clean labels, realized rate and transition matrix",
}


class _Loop:
    """Shared epoch bookkeeping: resume, checkpoint, NaN checks, metrics files, progress bars.

    ``data`` is the identity of the training data (:func:`experiments.cifar.data.data_identity`);
    it goes into config.json and every checkpoint, and a resume on other data is refused.
    """

    def __init__(self, kind: str, cfg, out: Path, *, resume: bool, progress: bool, extra_meta: dict,
                 data: dict | None = None):
        self.kind, self.cfg, self.out, self.progress = kind, cfg, Path(out), progress
        self.path = ckpt.checkpoint_path(self.out)
        self.extra_meta = extra_meta
        self.data = data
        self.changes: list[dict] = []
        self.history: list[dict] = []
        self.start_epoch = 0
        self.resume = resume
        self._estimated = False
        self._session_epochs = 0

    def config(self) -> dict:
        """What config.json holds: every setting, the data actually used, and changes made on resume."""
        return {**dataclasses.asdict(self.cfg), "dataset": self.data, "changes": self.changes}

    def begin(self, state_tree: dict) -> dict:
        """Restore from the checkpoint when resuming; otherwise start the run folder afresh."""
        if self.resume:
            if not self.path.exists():
                raise FileNotFoundError(f"--resume: no checkpoint at {self.path}")
            state_tree, meta = ckpt.restore(self.path, state_tree, arch=self.cfg.arch, kind=self.kind)
            for key, value in self.extra_meta.items():
                if meta.get(key) != value:
                    raise ValueError(
                        f"--resume: checkpoint {self.path} has {key}={meta.get(key)!r}, this run has {value!r}"
                    )
            if meta.get("seed") != self.cfg.seed:
                raise ValueError(f"--resume: checkpoint {self.path} has seed {meta.get('seed')}, got {self.cfg.seed}")
            self._check_data(meta.get("data"))
            if _is_writer():  # temporary files of a write that was killed
                for stale in self.out.glob(".*.tmp"):
                    stale.unlink(missing_ok=True)
            self.start_epoch = int(meta["epoch"])
            self.changes = list(meta.get("changes", []))
            self._check_settings(meta.get("config", {}))
            self.history = list(meta["history"])
            _write_history(self.out, self.history)  # drop rows of an epoch that never checkpointed
            if _is_writer():
                write_json(self.out / "config.json", self.config())
            print(f"resuming {self.path} after epoch {self.start_epoch}", file=sys.stderr)
        else:
            if self.path.exists():
                raise ValueError(
                    f"{self.path} exists: pass --resume to continue that run, or another --out"
                )
            if _is_writer():
                start_run(self.out, self.config(), seed=self.cfg.seed, files=RUN_FILES)
            _write_history(self.out, [])
        return state_tree

    def _check_data(self, recorded: dict | None) -> None:
        from experiments.cifar.data import same_data

        if recorded is None or self.data is None:
            if recorded is None and self.data is not None:
                print(f"warning: checkpoint {self.path} records no data identity; cannot check that it was "
                      "trained on this data", file=sys.stderr)
            return
        differ = same_data(recorded, self.data)
        if differ:
            raise ValueError(
                f"--resume: checkpoint {self.path} was trained on {recorded.get('path')} "
                f"({recorded.get('train_images')} images, sha256 {str(recorded.get('sha256'))[:12]}), this run "
                f"loads {self.data.get('path')} (sha256 {str(self.data.get('sha256'))[:12]}): {', '.join(differ)} differ"
            )

    def _check_settings(self, before: dict) -> None:
        """Refuse changed settings that would alter the result; record the others (``epochs``)."""
        now = dataclasses.asdict(self.cfg)
        changed = {k: (before[k], v) for k, v in now.items() if k in before and before[k] != v}
        refused = [f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items() if k not in RESUMABLE_CHANGES]
        if refused:
            raise ValueError(
                f"--resume: these settings differ from the checkpoint's and would change the result: "
                f"{', '.join(refused)}; resume with the run's settings, or start a new run in another --out"
            )
        if "epochs" in changed and now["epochs"] < self.start_epoch:
            raise ValueError(f"--resume: --epochs {now['epochs']} is below the {self.start_epoch} epochs already done")
        for k, (a, b) in changed.items():
            self.changes.append({"after_epoch": self.start_epoch, "setting": k, "from": a, "to": b})
            print(f"resuming with {k} {a!r} -> {b!r} from epoch {self.start_epoch + 1} (recorded in config.json)",
                  file=sys.stderr)

    def bar(self, total: int, epoch: int):
        bar = tqdm(
            total=total, desc=f"{self.kind} epoch {epoch + 1}/{self.cfg.epochs}", file=sys.stderr,
            disable=not (self.progress and _is_writer()), leave=False, dynamic_ncols=True, mininterval=1.0,
        )
        return bar if self._estimated else _EstimatingBar(bar, self, epoch)

    def estimate(self, seconds_per_step: float, steps: int, epoch: int, measured: str) -> None:
        """Print, once, the time the rest of the run will take at the measured rate."""
        self._estimated = True
        left = self.cfg.epochs - epoch
        total = seconds_per_step * steps * left
        if _is_writer():
            print(f"{self.kind}: {seconds_per_step:.3g} s per step ({measured}): about {_duration(total)} for the "
                  f"{left} epochs left ({steps} steps each, evaluation not included)", file=sys.stderr, flush=True)

    def check_losses(self, losses: list, epoch: int, first_step: int) -> None:
        values = np.asarray(jax.device_get(jnp.stack(losses)))
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            step = first_step + int(bad[0])
            kept = (
                f"the last good checkpoint {self.path} (after epoch {self.start_epoch_done}) is kept"
                if self.path.exists()
                else "no checkpoint was written yet"
            )
            raise NonFiniteLoss(
                f"{self.kind}: loss is {values[bad[0]]} at epoch {epoch + 1} step {step + 1}; {kept}"
            )

    @property
    def start_epoch_done(self) -> int:
        return len(self.history)

    def end_epoch(self, epoch: int, state_tree: dict, row: dict) -> None:
        if not _finite_tree(state_tree["params"]):
            raise NonFiniteLoss(
                f"{self.kind}: parameters are not finite after epoch {epoch + 1}; "
                f"the last good checkpoint {self.path} (after epoch {len(self.history)}) is kept"
            )
        self.history.append(row)
        meta = {"kind": self.kind, "arch": self.cfg.arch, "epoch": epoch + 1, "seed": self.cfg.seed,
                "history": self.history, "config": dataclasses.asdict(self.cfg), "data": self.data,
                "changes": self.changes, **self.extra_meta}
        if _is_writer():
            ckpt.save(self.path, state_tree, meta)
        _append_history(self.out, row)
        self._session_epochs += 1
        left = self.cfg.epochs - epoch - 1
        if self._session_epochs == 1 and left > 0 and _is_writer() and "time_s" in row:
            print(f"{self.kind}: the first epoch took {row['time_s']:.1f} s with evaluation: about "
                  f"{_duration(row['time_s'] * left)} for the {left} epochs left", file=sys.stderr, flush=True)

    def finish(self, summary: dict) -> dict:
        if _is_writer():
            write_json(self.out / METRICS_JSON, summary)
        return summary


class _EstimatingBar:
    """A progress bar that times the first steps of a session and has :meth:`_Loop.estimate` print
    the run's remaining time: from the end of step 1 (compilation done) to the end of step 21 (the
    loss check of step 20 waits for the device), or to the end of a shorter epoch."""

    def __init__(self, bar, loop: _Loop, epoch: int):
        self.bar, self.loop, self.epoch = bar, loop, epoch
        self.count, self.t1 = 0, None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def set_postfix(self, **kw):
        self.bar.set_postfix(**kw)

    def update(self, n: int = 1):
        self.bar.update(n)
        self.count += n
        total = self.bar.total
        if self.count == 1:
            self.t1 = time.perf_counter()
        elif self.t1 is not None and self.count == min(21, total):
            rate = (time.perf_counter() - self.t1) / (self.count - 1)
            self.loop.estimate(rate, total, self.epoch, f"measured over steps 2-{self.count} of epoch {self.epoch + 1}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _shuffled_batches(seed: int, epoch: int, n: int, batch_size: int, dp: DataParallel,
                      subset: np.ndarray | None = None):
    """Batches of epoch ``epoch``: all n points, or the points ``subset`` (a method's selection),
    in the order ``epoch_order(seed, epoch, len)``."""
    order = epoch_order(seed, epoch, n if subset is None else len(subset))
    if subset is not None:
        order = np.asarray(subset)[order]
    local = dp.local_slice(batch_size)
    for s in range(len(order) // batch_size):
        yield s, order[s * batch_size : (s + 1) * batch_size][local]


# ----------------------------------------------------------------------------- pre-training


def simclr_model(arch: str, projection_dim: int) -> SimCLRModel:
    return SimCLRModel(make_encoder(arch), ProjectionHead(out_dim=projection_dim))


def pretrain(
    cfg: PretrainConfig,
    out: Path | str,
    train_set,
    test_set,
    *,
    resume: bool = False,
    progress: bool = False,
    dp: DataParallel | None = None,
    stop_after_epochs: int | None = None,
    check_every: int = 20,
) -> dict:
    """SimCLR pre-training of ``cfg.arch`` on ``train_set.images`` (labels unused but for the k-NN
    monitor). Writes config.json, env.json, metrics.jsonl, checkpoint.msgpack and metrics.json
    into ``out``. ``stop_after_epochs`` ends the run early, as a kill would (for tests)."""
    dp = dp or data_parallel()
    dp.check_batch_size(cfg.batch_size)
    images = np.asarray(train_set.images)
    n = images.shape[0]
    if n < cfg.batch_size:
        raise ValueError(f"batch_size must be <= the number of training images ({n}), got {cfg.batch_size}")
    num_classes = len(train_set.classes)
    model, tx, step_fn = _simclr_step(cfg.arch, cfg.projection_dim, cfg.lr, cfg.weight_decay, cfg.temperature)
    state = create_state(model, tx, jax.random.PRNGKey(cfg.seed), images.shape[1:])
    loop = _Loop("pretrain", cfg, Path(out), resume=resume, progress=progress,
                 extra_meta={"projection_dim": cfg.projection_dim}, data=train_set.identity)
    state = _from_tree(loop.begin(_state_tree(state)))
    state = dp.replicate(state)
    encode = _encode(cfg.arch)
    knn_train = min(cfg.knn_train, n)
    test_images, test_labels = np.asarray(test_set.images), np.asarray(test_set.labels)
    steps = n // cfg.batch_size
    wall = time.perf_counter()
    last = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    for epoch in range(loop.start_epoch, last):
        t0 = time.perf_counter()
        losses, first = [], 0
        epoch_losses = []
        with loop.bar(steps, epoch) as bar:
            for s, idx in _shuffled_batches(cfg.seed, epoch, n, cfg.batch_size, dp):
                state, metrics = step_fn(state, dp.shard(images[idx]), step_key(cfg.seed, epoch, s))
                losses.append(metrics["loss"])
                if len(losses) == check_every or s == steps - 1:
                    loop.check_losses(losses, epoch, first)
                    epoch_losses.extend(np.asarray(jax.device_get(jnp.stack(losses))).tolist())
                    bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
                    losses, first = [], s + 1
                bar.update(1)
        train_time = time.perf_counter() - t0
        variables = {"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]}
        f_train = features(encode, variables, images[:knn_train], dp)
        f_test = features(encode, variables, test_images, dp)
        knn = knn_accuracy(
            f_train, np.asarray(train_set.labels)[:knn_train], f_test, test_labels,
            k=cfg.knn_k, num_classes=num_classes, temperature=cfg.knn_temperature,
        )
        row = {
            "epoch": epoch + 1,
            "loss": float(np.mean(epoch_losses)),
            "knn_acc": knn,
            "time_s": round(time.perf_counter() - t0, 3),
            "images_per_s": round(steps * cfg.batch_size / train_time, 2),
        }
        row.update(spectral_monitor(f_train, np.asarray(train_set.labels)[:knn_train], num_classes))
        loop.end_epoch(epoch, _state_tree(state), row)
        print(
            f"pretrain epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}  kNN acc {knn:.4f}  "
            f"({row['time_s']:.1f} s, {row['images_per_s']:.1f} images/s)",
            flush=True,
        )
    history = loop.history
    summary = {
        "kind": "pretrain",
        "epochs_done": len(history),
        "epochs": cfg.epochs,
        "last": history[-1] if history else None,
        "best_knn": max(history, key=lambda r: r["knn_acc"]) if history else None,
        "checkpoint": str(loop.path),
        "wall_s_this_session": round(time.perf_counter() - wall, 2),
    }
    return loop.finish(summary)


# ----------------------------------------------------------------------------- training on noisy labels


def encoder_from_pretrain(path: Path | str, arch: str, target: dict) -> tuple[dict, dict]:
    """The encoder's ``{"params", "batch_stats"}`` from a pre-training checkpoint, restored into the
    structure of ``target`` (same keys). Refuses a checkpoint of another architecture or job."""
    state_dict, meta = ckpt.load_raw(path)
    ckpt.check_arch(meta, arch, path)
    if meta.get("kind") != "pretrain":
        raise ValueError(f"--init {path} is a {meta.get('kind')!r} checkpoint, expected a pretrain checkpoint")
    try:
        sub = {"params": state_dict["params"]["encoder"], "batch_stats": state_dict["batch_stats"]["encoder"]}
    except KeyError as err:
        raise ValueError(f"--init {path} has no encoder weights ({err})") from err
    return ckpt.restore_into(target, sub, path), meta


def classifier(arch: str, num_classes: int) -> Classifier:
    return Classifier(make_encoder(arch), num_classes=num_classes)


def train(
    cfg: TrainConfig,
    out: Path | str,
    train_set,
    test_set,
    noisy,
    *,
    init: Path | str | None = None,
    resume: bool = False,
    progress: bool = False,
    dp: DataParallel | None = None,
    stop_after_epochs: int | None = None,
    check_every: int = 20,
    step_hook: Callable[[int, int, dict], dict] | None = None,
) -> dict:
    """Train ``cfg.arch`` on ``train_set.images`` with the labels ``noisy.labels`` (a
    :class:`experiments.cifar.noise.NoisyLabels` whose ``clean`` are ``train_set.labels``).

    ``init``: a pre-training checkpoint whose encoder starts the run, or None for a random
    initialization. ``cfg.mode == "probe"`` trains only the last layer on the features of the
    frozen encoder (evaluation-mode BatchNorm; features computed once); ``"finetune"`` trains
    everything. Writes config.json, env.json, noisy_labels, metrics.jsonl, checkpoint.msgpack
    and metrics.json into ``out``; returns the summary written to metrics.json.
    ``stop_after_epochs`` ends the run early as a kill would, and ``step_hook(epoch, step,
    metrics) -> metrics`` sees every step's metrics (both for tests).
    """
    dp = dp or data_parallel()
    dp.check_batch_size(cfg.batch_size)
    out = Path(out)
    images = np.asarray(train_set.images)
    clean = np.asarray(train_set.labels)
    labels = np.asarray(noisy.labels)
    if labels.shape != clean.shape or not np.array_equal(np.asarray(noisy.clean), clean):
        raise ValueError("noisy labels do not belong to this training set (their clean labels differ)")
    n = images.shape[0]
    if n < cfg.batch_size:
        raise ValueError(f"batch_size must be <= the number of training images ({n}), got {cfg.batch_size}")
    num_classes = len(train_set.classes)
    test_images, test_labels = np.asarray(test_set.images), np.asarray(test_set.labels)
    n_eval = n if cfg.eval_train_limit is None else min(cfg.eval_train_limit, n)

    method_key = methods.method_key(cfg)
    method = methods.from_key(method_key)
    model, tx, finetune_step = _finetune_step(
        cfg.arch, num_classes, cfg.lr, cfg.weight_decay, cfg.momentum, cfg.augment, method_key
    )
    state = create_state(model, tx, jax.random.PRNGKey(cfg.seed), images.shape[1:])
    init_meta: dict = {"init": "random"}
    if init is not None:
        enc, pre_meta = encoder_from_pretrain(
            init, cfg.arch, {"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]}
        )
        params = {**state.params, "encoder": enc["params"]}
        batch_stats = {**state.batch_stats, "encoder": enc["batch_stats"]}
        state = TrainState(step=state.step, params=params, batch_stats=batch_stats, opt_state=tx.init(params))
        init_meta = {"init": str(init), "init_epochs": pre_meta.get("epoch")}
    state = state.replace(method_state=method.init(labels, num_classes))
    extra = {"mode": cfg.mode, "method": cfg.method, "noisy_labels_sha256": noisy.sha256, **init_meta}
    loop = _Loop("train", cfg, out, resume=resume, progress=progress, extra_meta=extra, data=train_set.identity)

    encode = _encode(cfg.arch)
    if cfg.mode == "probe":
        # Only the last layer trains (its optimizer state alone); the encoder enters through features.
        state = state.replace(opt_state=tx.init(state.params["linear"]))
        state = _from_tree(loop.begin(_state_tree(state)))
        encoder_vars = {"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]}
        frozen_ref = jax.device_get(encoder_vars)  # checked against the final state below
        f_train = features(encode, encoder_vars, images, dp)
        f_test = features(encode, encoder_vars, test_images, dp)
        state = dp.replicate(state)
        _, step_fn = _probe_step(cfg.lr, cfg.weight_decay, cfg.momentum, method_key)
        inputs = f_train

        def train_outputs(st):
            return f_train, np.asarray(linear_logits(jax.device_get(st.params["linear"]), jnp.asarray(f_train)))

        def evaluate(st):
            w = jax.device_get(st.params["linear"])
            logits_test = np.asarray(linear_logits(w, jnp.asarray(f_test)))
            logits_train = np.asarray(linear_logits(w, jnp.asarray(f_train[:n_eval])))
            return logits_test, logits_train

        def run_step(st, idx, key):
            return step_fn(st, dp.shard(inputs[idx]), dp.shard(labels[idx]), key, dp.shard(idx))
    else:
        state = _from_tree(loop.begin(_state_tree(state)))
        state = dp.replicate(state)
        step_fn = finetune_step
        predict = _predict(cfg.arch, num_classes)

        def evaluate(st):
            variables = dp.replicate({"params": st.params, "batch_stats": st.batch_stats})
            logits_test = _batched(lambda x: predict(variables, x), dp, (test_images,))
            logits_train = _batched(lambda x: predict(variables, x), dp, (images[:n_eval],))
            return logits_test, logits_train

        def train_outputs(st):
            variables = {"params": st.params["encoder"], "batch_stats": st.batch_stats["encoder"]}
            h = features(encode, variables, images, dp)
            return h, np.asarray(linear_logits(jax.device_get(st.params["linear"]), jnp.asarray(h)))

        def run_step(st, idx, key):
            return step_fn(st, dp.shard(images[idx]), dp.shard(labels[idx]), key, dp.shard(idx))

    if not resume and _is_writer():
        from experiments.cifar.noise import save_noisy_labels

        save_noisy_labels(out / "noisy_labels.npz", noisy)

    wall = time.perf_counter()
    last = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    for epoch in range(loop.start_epoch, last):
        t0 = time.perf_counter()
        subset = None
        if method.epoch_start is not None:  # e.g. Crust's coreset; a function of the state, so resume is exact
            view = EpochView(
                seed=cfg.seed, labels=labels, num_classes=num_classes,
                outputs=functools.partial(train_outputs, state),
                kernel=lambda st=state: np.asarray(jax.device_get(st.params["linear"]["kernel"])),
            )
            method_state, subset = method.epoch_start(epoch, jax.device_get(state.method_state), view)
            state = state.replace(method_state=dp.replicate(method_state))
            if subset is not None and len(subset) < cfg.batch_size:
                raise ValueError(
                    f"method {cfg.method} selected {len(subset)} points at epoch {epoch + 1}, fewer than "
                    f"batch_size {cfg.batch_size}"
                )
        visited = n if subset is None else len(subset)
        steps = visited // cfg.batch_size
        losses, first, epoch_losses, epoch_accs, accs = [], 0, [], [], []
        with loop.bar(steps, epoch) as bar:
            for s, idx in _shuffled_batches(cfg.seed, epoch, n, cfg.batch_size, dp, subset):
                state, metrics = run_step(state, idx, step_key(cfg.seed, epoch, s))
                if step_hook is not None:  # tests: inject faults
                    metrics = step_hook(epoch, s, metrics)
                losses.append(metrics["loss"])
                accs.append(metrics["acc"])
                if len(losses) == check_every or s == steps - 1:
                    loop.check_losses(losses, epoch, first)
                    epoch_losses.extend(np.asarray(jax.device_get(jnp.stack(losses))).tolist())
                    epoch_accs.extend(np.asarray(jax.device_get(jnp.stack(accs))).tolist())
                    bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}")
                    losses, accs, first = [], [], s + 1
                bar.update(1)
        train_time = time.perf_counter() - t0
        logits_test, logits_train = evaluate(state)
        te = label_metrics(logits_test, test_labels)
        tr = label_metrics(logits_train, clean[:n_eval], labels[:n_eval])
        row = {
            "epoch": epoch + 1,
            "loss": float(np.mean(epoch_losses)),
            "batch_acc_noisy": float(np.mean(epoch_accs)),
            "test_acc": te["acc_clean"],
            "test_acc_top5": te["acc_clean_top5"],
            "test_loss": te["loss_clean"],
            "train_acc_clean": tr["acc_clean"],
            "train_loss_clean": tr["loss_clean"],
            "train_acc_noisy": tr["acc_noisy"],
            "train_loss_noisy": tr["loss_noisy"],
            "noisy_points_loss": tr["noisy_points_loss"],
            "noisy_points_memorized": tr["noisy_points_memorized"],
            "clean_points_loss": tr["clean_points_loss"],
            "points_trained": visited,
            "time_s": round(time.perf_counter() - t0, 3),
            "images_per_s": round(steps * cfg.batch_size / train_time, 2),
        }
        loop.end_epoch(epoch, _state_tree(state), row)
        print(
            f"train epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}  test acc {row['test_acc']:.4f}  "
            f"train acc clean {row['train_acc_clean']:.4f} noisy {row['train_acc_noisy']:.4f}  "
            f"noisy-points loss {_fmt(row['noisy_points_loss'])}  ({row['time_s']:.1f} s)",
            flush=True,
        )

    history = loop.history
    frozen = None
    if cfg.mode == "probe":  # verify, not assume, that the encoder did not move
        final = jax.device_get({"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]})
        frozen = all(
            np.array_equal(a, b)
            for a, b in zip(jax.tree_util.tree_leaves(frozen_ref), jax.tree_util.tree_leaves(final))
        )
        if not frozen:
            raise RuntimeError("linear probe: the encoder's weights changed during training")
    summary = {
        "kind": "train",
        "mode": cfg.mode,
        "method": cfg.method,
        "noise": noisy.spec if isinstance(noisy.spec, str) else str(noisy.spec),
        "noise_rate": float(noisy.rate),
        "noisy_labels_sha256": noisy.sha256,
        **init_meta,
        "encoder_frozen": frozen,
        "epochs_done": len(history),
        "epochs": cfg.epochs,
        "best": max(history, key=lambda r: r["test_acc"]) if history else None,
        "last": history[-1] if history else None,
        "checkpoint": str(loop.path),
        "wall_s_this_session": round(time.perf_counter() - wall, 2),
    }
    return loop.finish(summary)
