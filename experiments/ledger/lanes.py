"""Run the check modules of `clspec verify` in parallel lanes, one process each, results in module order.

Most of a first run's time is XLA compiling (one compilation per new shape), which runs on one
core; two processes keep two cores busy. The first lane runs in the main process; each other lane
is a worker process (``spawn``: JAX is not safe to fork) that runs its modules one after the other,
with float64 on, one BLAS thread and the compilation cache of
:func:`experiments.common.profile.settings`, exactly as the single-process run does. The lane that
runs a module also draws its figures, into the run's staging folder. Modules that share compiled
programs inside a process (the trained encoders: ``encoders``, ``encoders_a41`` and ``jacobian``
train with the same compiled step; ``head`` and ``flips`` reuse 18 and 44 of the compilations of the
modules before them) stay in one lane, so the sharing is kept. Every module is a pure function of (preset, seed): the rows, data and
figures do not depend on the lane, the order or the number of lanes (``tests/test_lanes.py``).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ProcessPoolExecutor
from types import ModuleType

from experiments.common import profile
from experiments.ledger.claims import error_row

# Modules that must share a process, and the cost of each module that the greedy assignment balances:
# wall seconds of a first run (cold compilation cache, ``--jobs 1``, quiet 2-core AMD EPYC, 187 GFLOP/s,
# 2026-12-03), its figures included (the lane that runs a module draws its figures). A module missing
# here costs 0.5.
SHARED = (("encoders", "encoders_a41", "jacobian"), ("thm43", "head", "flips"))
COST = {"thm43": 27.0, "head": 11.7, "flips": 8.0, "contrast": 5.0, "encoders": 23.9, "encoders_a41": 2.9,
        "jacobian": 4.5, "fig2a_real": 2.4, "trend_real": 1.3, "spectrum_real": 0.8}
SPAWN_COST = 4.0  # a worker lane's start, and its share of two processes competing for the cores


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


def assign(names: list[str], jobs: int) -> list[list[str]]:
    """Lanes of module names (the first is run by the main process): the groups of ``SHARED`` kept whole, the
    heaviest first to the least loaded lane."""
    units, taken = [], set()
    for group in SHARED:
        members = [n for n in names if n in group]
        if members:
            units.append(members)
            taken.update(members)
    units += [[n] for n in names if n not in taken]
    units.sort(key=lambda u: -sum(_cost(n) for n in u))
    lanes: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(units))))]
    load = [0.0] + [SPAWN_COST] * (len(lanes) - 1)  # a worker first starts a Python and imports JAX
    for unit in units:
        i = min(range(len(lanes)), key=lambda k: (load[k], k))
        lanes[i].extend(unit)
        load[i] += sum(_cost(n) for n in unit)
    order = {n: i for i, n in enumerate(names)}
    return [sorted(lane, key=order.get) for lane in lanes if lane]


_SETTINGS = None


def _worker_init() -> None:
    global _SETTINGS
    from experiments.common.precision import use_float64

    use_float64()
    _SETTINGS = profile.settings()  # CLSPEC_XLA_CACHE reaches the worker through its environment
    _SETTINGS.__enter__()  # for the life of the worker, as the single-process run holds it for the whole run


def _worker_run(module_name: str, preset: str, seed: int, figures_dir) -> Result:
    import importlib

    module = importlib.import_module(module_name)
    return draw(module, run_module(module, preset, seed, lambda it, **kw: it), figures_dir)


def run_all(modules: list[ModuleType], preset: str, seed: int, jobs: int, progress, on_start=None,
            figures_dir=None):
    """Yield ``(module, Result)`` for every module of ``modules`` as it finishes, running them in ``jobs`` lanes,
    each module's figures drawn into ``figures_dir`` (if given) by the lane that ran it (:func:`draw`).

    The first lane runs here, in this process, with ``progress``; the others run in worker processes
    without progress bars. Between two modules of its own lane (and after its last) this process yields
    what the workers have finished. The order of the yields depends on timing; the caller puts the
    results back in the order of ``modules``.
    """
    if jobs <= 1 or len(modules) <= 1:
        for module in modules:
            if on_start:
                on_start(module)
            yield module, draw(module, run_module(module, preset, seed, progress), figures_dir)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, wait

    by_name = {short(m): m for m in modules}
    here, *others = assign(list(by_name), jobs)
    context = multiprocessing.get_context("spawn")
    pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_worker_init) for _ in others]
    try:
        futures: dict[Future, str] = {}
        for pool, lane in zip(pools, others):
            for name in lane:  # a one-worker pool runs its lane's modules in the order submitted
                futures[pool.submit(_worker_run, by_name[name].__name__, preset, seed, figures_dir)] = name
            if on_start:
                on_start(by_name[lane[0]])

        def finished():
            for future in [f for f in futures if f.done()]:
                yield by_name[futures.pop(future)], future.result()

        for name in here:
            yield from finished()
            if on_start:
                on_start(by_name[name])
            yield by_name[name], draw(by_name[name], run_module(by_name[name], preset, seed, progress), figures_dir)
        while futures:
            wait(list(futures), return_when=FIRST_COMPLETED)
            yield from finished()
    except BaseException:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    # all done: the workers shut down (a second or two of tearing down JAX) while the caller writes its outputs;
    # the interpreter joins them at exit
    for pool in pools:
        pool.shutdown(wait=False)
