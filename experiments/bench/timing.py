"""Timing for the benchmarks: best and median wall (and CPU) time of jobs timed in interleaved rounds,
a job's FLOPs from XLA's cost analysis, the machine's float32 matmul rate, and a PyTorch worker
process (:mod:`experiments.bench.torch_reference`) whose jobs are timed in the same rounds."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.common.profile import matmul_rate  # noqa: F401 - the benchmarks' baseline, re-exported


def block(tree):
    import jax

    return jax.block_until_ready(tree)


def time_best(fn, *args, repeats: int) -> dict:
    """Best and median wall time of ``fn(*args)`` after one warm-up call (compilation)."""
    return time_interleaved({"f": (fn, args)}, repeats)["f"]


def timer(job):
    """A zero-argument callable returning ``(wall seconds, CPU seconds of the process, all threads)``
    of one run of ``job``: a ``(fn, args)`` pair (a compiled JAX function, warmed up here) or already
    such a callable (a PyTorch worker job). On a shared machine the CPU time is the steadier measure
    of the work done; the wall time is what a user waits."""
    if callable(job):
        return job
    fn, args = job
    block(fn(*args))  # warm-up

    def run():
        t0, c0 = time.perf_counter(), time.process_time()
        block(fn(*args))
        return time.perf_counter() - t0, time.process_time() - c0

    return run


def time_interleaved(jobs: dict, repeats: int) -> dict:
    """Best and median wall time of every job (``name: (fn, args)`` or a timer callable), timed in
    rounds that run each job once, so that a busy spell of the (shared) machine hits all of them
    alike; ``"rounds_s"`` keeps every round's time, for per-round ratios."""
    timers = {name: timer(job) for name, job in jobs.items()}
    times = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, run in timers.items():
            times[name].append(run())
    out = {}
    for name, t in times.items():
        wall, cpu = [w for w, _ in t], [c for _, c in t]
        out[name] = {"best_s": min(wall), "median_s": float(np.median(wall)), "repeats": repeats,
                     "rounds_s": wall, "cpu_median_s": float(np.median(cpu)), "rounds_cpu_s": cpu}
    return out


class TorchWorker:
    """:mod:`experiments.bench.torch_reference` in a child process of ``python``; ``run(job)`` times one
    run of ``job`` there (the child times itself, so the pipe costs nothing in the measurement)."""

    def __init__(self, python: str, *, arch, batch, finetune_batch, eval_batch, image_size, stages, threads):
        script = Path(__file__).with_name("torch_reference.py")
        cmd = [python, "-u", str(script), "--arch", arch, "--batch", str(batch),
               "--finetune-batch", str(finetune_batch), "--eval-batch", str(eval_batch),
               "--image-size", str(image_size), "--threads", str(threads)]
        if not stages:
            cmd.append("--no-stages")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=env)
        try:
            self.info = self._read()
        except (RuntimeError, json.JSONDecodeError) as err:
            raise ValueError(f"--torch-python {python!r} could not run the PyTorch reference: {err}") from None
        if not self.info.get("ready"):
            raise ValueError(f"--torch-python {python!r}: the PyTorch reference did not start: {self.info}")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the PyTorch reference ({self.proc.args[0]}) stopped: {tail[0]}")
        return json.loads(line)

    def run(self, job: str) -> float:
        self.proc.stdin.write(json.dumps({"job": job}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if reply.get("job") != job:
            raise RuntimeError(f"the PyTorch reference answered {reply} to job {job!r}")
        return float(reply["s"]), float(reply["cpu_s"])

    def timer(self, job: str):
        return lambda: self.run(job)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self._stderr.close()


def compile_once(jitted, *args):
    """Compile once; the compiled function is both timed and asked for its FLOPs."""
    return jitted.lower(*args).compile()


def xla_flops(compiled) -> float | None:
    """FLOPs of a compiled function from XLA's cost analysis."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends have no cost model
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops")
    return float(flops) if flops is not None and flops > 0 else None
