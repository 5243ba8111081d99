"""The epoch loop both training jobs share: resume, checkpoints, NaN checks, metrics files, progress.

A run is resumable and exact: the data order of epoch e is ``permutation(seed, e)`` and the random
key of step s of epoch e is ``fold_in(fold_in(key(seed), e), s)``, pure functions of (seed, epoch,
step). A checkpoint after every epoch holds the state, the finished epoch count and the metrics so
far, so a killed run resumed from its last checkpoint ends with the same numbers as one that ran
through. A non-finite loss stops the run with :class:`NonFiniteLoss` naming the epoch and step; the
checkpoint of the last good epoch stays in place.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from experiments.cifar import checkpoint as ckpt
from experiments.cifar.parallel import DataParallel
from experiments.cifar.steps import TrainState
from experiments.common import runs
from experiments.common.runs import atomic_write_text, start_run, write_json

METRICS_JSONL = "metrics.jsonl"
METRICS_JSON = "metrics.json"
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


def keep_path(out: Path | str, epoch: int) -> Path:
    """Where :meth:`_Loop.keep` puts the checkpoint after ``epoch`` epochs."""
    return Path(out) / f"epoch-{epoch:03d}" / ckpt.CHECKPOINT


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
        runs.mark_started()  # from here on an error is the run's, not its arguments'
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

    def keep(self, epoch: int, state_tree: dict) -> None:
        """A copy of the checkpoint after ``epoch`` epochs (0: the initialization) in
        ``out/epoch-EEE/checkpoint.msgpack``, for analyses over the course of training. Written
        atomically like the running checkpoint; an existing copy (a resumed run) is left as it is."""
        path = keep_path(self.out, epoch)
        if path.exists() or not _is_writer():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"kind": self.kind, "arch": self.cfg.arch, "epoch": epoch, "seed": self.cfg.seed,
                "history": self.history[:epoch], "config": dataclasses.asdict(self.cfg), "data": self.data,
                "changes": self.changes, **self.extra_meta}
        ckpt.save(path, state_tree, meta)
        ckpt.previous_path(path).unlink(missing_ok=True)

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
