"""Run the check modules of `clspec verify` in parallel lanes, one process each, results in module order.

Most of a first run's time is XLA compiling (one compilation per new shape), which runs on one
core; two processes keep two cores busy. The first lane runs in the main process; each other lane
is a worker process (``spawn``: JAX is not safe to fork) that runs its modules one after the other,
with float64 on, one BLAS thread and the compilation cache of
:func:`experiments.common.profile.settings`, exactly as the single-process run does. The lane that
runs a module also draws its figures, into the run's staging folder. Modules that share compiled
programs inside a process (the trained encoders: ``encoders``, ``encoders_a41`` and ``jacobian``
train with the same compiled step; ``head`` and ``flips`` reuse 18 and 44 of the compilations of the
modules before them) form one unit that runs whole in one lane, so the sharing is kept.

The units are taken from one queue, heaviest first (by ``COST``): the main process takes the first,
each worker the next, and whichever lane is free takes the next one left. So the balance follows the
machine: where compiling is slow against arithmetic the ``thm43`` unit finishes last, where it is
fast the ``encoders`` unit does, and the small modules fill in behind whichever finished first.
Every module is a pure function of (preset, seed): the rows, data and figures do not depend on the
lane, the order or the number of lanes (``tests/test_lanes.py``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor
from types import ModuleType

from experiments.common import profile
from experiments.ledger.claims import error_row

# Modules that must share a process, and the cost of each module that orders the queue (heaviest first):
# wall seconds of a first run (cold compilation cache, ``--jobs 1``, quiet 2-core AMD EPYC, 187 GFLOP/s,
# 2026-12-03), its figures included (the lane that runs a module draws its figures). A module missing
# here costs 0.5.
SHARED = (("encoders", "encoders_a41", "jacobian"), ("thm43", "head", "flips"))
COST = {"thm43": 27.0, "head": 11.7, "flips": 8.0, "contrast": 5.0, "encoders": 23.9, "encoders_a41": 2.9,
        "jacobian": 4.5, "fig2a_real": 2.4, "trend_real": 1.3, "spectrum_real": 0.8}


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
    figures: list[str] = dataclasses.field(default_factory=list)  # the PNGs it drew (paths in the staging folder)
    figure_error: str | None = None  # why its figures could not be drawn
    lane: int = 0  # 0: the main process; k: the k-th worker process
    started: float | None = None  # wall-clock times (time.time(), comparable across the processes)
    ended: float | None = None


def draw(module: ModuleType, result: Result, figures_dir) -> Result:
    """Draw ``module``'s figures from ``result.data`` into ``figures_dir`` (where the run stages them): the
    paths go to ``result.figures``; a plotting error is ``result.figure_error`` (re-raised under CLSPEC_DEBUG),
    except an OSError (a full disk), which is raised so that nothing of the run is moved in."""
    if figures_dir is None or not result.data:
        return result
    from pathlib import Path

    try:
        result.figures = [str(p) for p in module.plot(result.data, Path(figures_dir))]
    except OSError:
        raise
    except Exception as err:
        if os.environ.get("CLSPEC_DEBUG"):
            raise
        result.figure_error = f"{short(module)} figures: {type(err).__name__}: {err}"
    return result


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


def _cost(name: str) -> float:
    return COST.get(name, 0.5)


def units(names: list[str]) -> list[list[str]]:
    """The queue the lanes take from: the groups of ``SHARED`` kept whole (in module order inside), every other
    module alone, the heaviest first (ties in module order)."""
    out, taken = [], set()
    for group in SHARED:
        members = [n for n in names if n in group]
        if members:
            out.append(members)
            taken.update(members)
    out += [[n] for n in names if n not in taken]
    order = {n: i for i, n in enumerate(names)}
    return sorted(out, key=lambda u: (-sum(_cost(n) for n in u), order[u[0]]))


_SETTINGS = None


def _worker_init() -> None:
    global _SETTINGS
    from experiments.common.precision import use_float64

    use_float64()
    _SETTINGS = profile.settings()  # CLSPEC_XLA_CACHE and XLA_FLAGS reach the worker through its environment
    _SETTINGS.__enter__()  # for the life of the worker, as the single-process run holds it for the whole run


def _run_and_draw(module: ModuleType, preset: str, seed: int, progress, figures_dir) -> Result:
    """:func:`run_module` then :func:`draw`, with the wall-clock times of both (``Result.started``, ``ended``)."""
    started = time.time()
    result = draw(module, run_module(module, preset, seed, progress), figures_dir)
    result.started, result.ended = started, time.time()
    return result


def _worker_run(module_name: str, preset: str, seed: int, figures_dir) -> Result:
    import importlib

    return _run_and_draw(importlib.import_module(module_name), preset, seed, lambda it, **kw: it, figures_dir)


def run_all(modules: list[ModuleType], preset: str, seed: int, jobs: int, progress, on_start=None,
            figures_dir=None):
    """Yield ``(module, Result)`` for every module of ``modules`` as it finishes, running them in ``jobs`` lanes,
    each module's figures drawn into ``figures_dir`` (if given) by the lane that ran it (:func:`draw`).

    The lanes take the units of :func:`units` from one queue: the main process (with ``progress``) takes
    the first, each worker process (without progress bars; fed by a thread of this process) the next, and
    then whichever lane is free takes the next one left. Between two modules of its own this process
    yields what the workers have finished. The order of the yields depends on timing; the caller puts
    the results back in the order of ``modules``.
    """
    todo = collections.deque(units([short(m) for m in modules]))
    if jobs <= 1 or len(todo) <= 1:
        for module in modules:
            if on_start:
                on_start(module)
            yield module, _run_and_draw(module, preset, seed, progress, figures_dir)
        return
    import multiprocessing
    import queue as queues
    import threading

    by_name = {short(m): m for m in modules}
    lock, stop, done = threading.Lock(), threading.Event(), queues.SimpleQueue()
    context = multiprocessing.get_context("spawn")
    n_workers = min(jobs, len(todo)) - 1
    pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_worker_init) for _ in range(n_workers)]

    def take():
        with lock:
            return None if stop.is_set() or not todo else todo.popleft()

    def feed(lane: int, pool: ProcessPoolExecutor):  # a thread of this process: one worker's share of the queue
        try:
            while (unit := take()) is not None:
                futures = [(name, pool.submit(_worker_run, by_name[name].__name__, preset, seed, figures_dir))
                           for name in unit]  # a one-worker pool runs them in the order submitted
                for name, future in futures:
                    if on_start:
                        on_start(by_name[name])
                    result = future.result()
                    result.lane = lane
                    done.put((name, result))
        except BaseException as err:  # a worker that died: the main thread raises it
            done.put((None, err))

    first = take()  # the heaviest unit to this process, before a worker has started
    threads = [threading.Thread(target=feed, args=(k + 1, pool), daemon=True) for k, pool in enumerate(pools)]
    received = 0

    def finished(block: bool):
        nonlocal received
        while received < len(by_name):
            try:
                name, result = done.get(block=block)
            except queues.Empty:
                return
            if name is None:
                raise result
            received += 1
            yield by_name[name], result
            block = False

    try:
        for thread in threads:
            thread.start()
        unit = first
        while unit is not None:
            for name in unit:
                yield from finished(block=False)
                if on_start:
                    on_start(by_name[name])
                result = _run_and_draw(by_name[name], preset, seed, progress, figures_dir)
                received += 1
                yield by_name[name], result
            unit = take()
        while received < len(by_name):
            yield from finished(block=True)
    except BaseException:
        stop.set()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    # all done, every result in hand and every figure written: the idle workers are stopped rather than left to
    # tear down JAX (about a second, which the interpreter would wait for at exit)
    for pool in pools:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False)
