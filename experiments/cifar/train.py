"""The training loops: SimCLR pre-training, and training on noisy labels (linear probe or fine-tuning).

Both loops are resumable and exact (the epoch loop of :mod:`experiments.cifar.loop`: data order
and keys are pure functions of (seed, epoch, step), a checkpoint after every epoch); a non-finite
loss stops the run with :class:`experiments.cifar.loop.NonFiniteLoss`. Steps live in
:mod:`experiments.cifar.train_steps`, evaluation in :mod:`experiments.cifar.evaluate`, the
pre-training monitors in :mod:`experiments.cifar.monitors`.

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

import functools
import hashlib
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.cifar import checkpoint as ckpt
from experiments.cifar import methods
from experiments.cifar.configs import PretrainConfig, TrainConfig
from experiments.cifar.evaluate import _batched, features, label_metrics
from experiments.cifar.loop import _fmt, _from_tree, _is_writer, _Loop, _shuffled_batches, _state_tree, step_key
from experiments.cifar.methods import EpochView
from experiments.cifar.monitors import knn_accuracy, monitor_row as spectral_monitor
from experiments.cifar.parallel import DataParallel, data_parallel
from experiments.cifar.steps import TrainState, create_state
from experiments.cifar.train_steps import _encode, _finetune_step, _predict, _probe_step, _simclr_step, linear_logits


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
    keep_epochs: tuple[int, ...] = (),
) -> dict:
    """SimCLR pre-training of ``cfg.arch`` on ``train_set.images`` (labels unused but for the k-NN
    monitor). Writes config.json, env.json, metrics.jsonl, checkpoint.msgpack and metrics.json
    into ``out``. ``stop_after_epochs`` ends the run early, as a kill would (for tests).
    ``keep_epochs`` also keeps the checkpoint after each of those epochs (0: the initialization)
    as ``out/epoch-EEE/checkpoint.msgpack``; each is the state the resumable run had then."""
    bad = [e for e in keep_epochs if not 0 <= e <= cfg.epochs]
    if bad:
        raise ValueError(f"keep_epochs must lie in 0..{cfg.epochs} (the epochs), got {bad[0]}")
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
    if 0 in keep_epochs and loop.start_epoch == 0:
        loop.keep(0, _state_tree(state))
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
        if epoch + 1 in keep_epochs:
            loop.keep(epoch + 1, _state_tree(state))
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


def _checkpoint_file(path: Path | str) -> Path:
    """The checkpoint file itself, for a file or a run folder (as ``--init`` takes either)."""
    path = Path(path)
    return ckpt.checkpoint_path(path) if path.is_dir() else path


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
        # the checkpoint file's sha256: which pre-training a run started from (and a resume on another is refused)
        init_meta = {"init": str(init), "init_epochs": pre_meta.get("epoch"),
                     "init_sha256": hashlib.sha256(_checkpoint_file(init).read_bytes()).hexdigest()}
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
