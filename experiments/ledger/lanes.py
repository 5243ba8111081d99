"""Run the check modules of `clspec verify` in parallel lanes, one process each, results in module order.

Most of a first run's time is XLA compiling (one compilation per new shape), which runs on one
core; two processes keep two cores busy. A lane is a worker process (``spawn``: JAX is not safe to
fork) that runs its modules one after the other, with float64 on, one BLAS thread and the
compilation cache of :func:`experiments.common.profile.settings`, exactly as the single-process run
does. Modules that share compiled programs inside a process (the trained encoders: ``encoders``,
``encoders_a41`` and ``jacobian`` train with the same compiled step) stay in one lane, so the
sharing is kept. Every module is a pure function of (preset, seed): the rows and data do not
depend on the lane, the order or the number of lanes (tested).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ProcessPoolExecutor
from types import ModuleType

from experiments.common import profile
from experiments.ledger.claims import error_row

# Modules that must share a process, and the rough relative cost of each module (a first run on a
# 2-core Xeon) that the greedy assignment balances. A module missing here costs 1.
SHARED = (("encoders", "encoders_a41", "jacobian"),)
COST = {"thm43": 26.0, "head": 15.0, "flips": 7.5, "contrast": 8.5, "encoders": 50.0, "encoders_a41": 6.4,
        "jacobian": 18.5, "fig2a_real": 0.5}


def default_jobs() -> int:
    """Two lanes where there are two cores or more (the checks gain little past two: see ``COST``)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


@dataclasses.dataclass
class Result:
    """What one check module gave: its rows, its data for the figures, its profile, and the error if it crashed."""

    rows: list
    data: dict
    profile: dict
    seconds: float
    error: str | None = None


def short(module: ModuleType | str) -> str:
    return (module if isinstance(module, str) else module.__name__).rsplit(".", 1)[-1]


def run_module(module: ModuleType, preset: str, seed: int, progress) -> Result:
    """Run one check module: a crash is an ERROR row for each of its claims (re-raised under CLSPEC_DEBUG), and a
    claim the module gave no row for is an ERROR row too."""
    recorder = profile.Recorder()
    data, error = {}, None
    try:
        with recorder:
            rows, data = module.run(preset, seed=seed, progress=progress)
        seen = {r.claim for r in rows}
        rows = rows + [error_row(c, RuntimeError("the check returned no row for this claim"))
                       for c in module.CLAIMS if c.id not in seen]
    except KeyboardInterrupt:
        raise
    except Exception as err:  # a crashing check is an ERROR row, not a crash of the job
        if os.environ.get("CLSPEC_DEBUG"):
            raise
        rows = [error_row(c, err) for c in module.CLAIMS]
        error = f"{short(module)}: {type(err).__name__}: {err}"
    summary = recorder.summary()
    return Result(rows, data, summary, summary["wall_s"], error)


def assign(names: list[str], jobs: int) -> list[list[str]]:
    """Lanes of module names: the groups of ``SHARED`` kept whole, the heaviest first to the lightest lane."""
    units, taken = [], set()
    for group in SHARED:
        members = [n for n in names if n in group]
        if members:
            units.append(members)
            taken.update(members)
    units += [[n] for n in names if n not in taken]
    units.sort(key=lambda u: -sum(COST.get(n, 1.0) for n in u))
    lanes: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(units))))]
    for unit in units:
        min(lanes, key=lambda lane: sum(COST.get(n, 1.0) for n in lane)).extend(unit)
    order = {n: i for i, n in enumerate(names)}
    return [sorted(lane, key=order.get) for lane in lanes]


_SETTINGS = None


def _worker_init() -> None:
    global _SETTINGS
    from experiments.common.precision import use_float64

    use_float64()
    _SETTINGS = profile.settings()  # CLSPEC_XLA_CACHE reaches the worker through its environment
    _SETTINGS.__enter__()  # for the life of the worker, as the single-process run holds it for the whole run


def _worker_run(module_name: str, preset: str, seed: int) -> Result:
    import importlib

    return run_module(importlib.import_module(module_name), preset, seed, lambda it, **kw: it)


def run_all(modules: list[ModuleType], preset: str, seed: int, jobs: int, progress, on_start=None):
    """Yield ``(module, Result)`` in the order of ``modules``, running them in ``jobs`` lanes.

    One lane (or one module) runs here, in this process, with ``progress``; more lanes run in worker
    processes without progress bars, and a module's result is yielded as soon as it and every module
    before it are done, so the caller can draw its figures while the lanes go on.
    """
    if jobs <= 1 or len(modules) <= 1:
        for module in modules:
            if on_start:
                on_start(module)
            yield module, run_module(module, preset, seed, progress)
        return
    import multiprocessing

    by_name = {short(m): m for m in modules}
    lanes = assign(list(by_name), jobs)
    context = multiprocessing.get_context("spawn")
    pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_worker_init) for _ in lanes]
    try:
        futures: dict[str, Future] = {}
        for pool, lane in zip(pools, lanes):
            for name in lane:  # a one-worker pool runs its lane's modules in the order submitted
                futures[name] = pool.submit(_worker_run, by_name[name].__name__, preset, seed)
        if on_start:
            for lane in lanes:
                on_start(by_name[lane[0]])
        for module in modules:
            yield module, futures[short(module)].result()
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
