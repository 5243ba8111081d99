"""experiments.ledger.lanes: the queue of check modules the lanes take from, that a free lane takes the next
unit, and that two lanes (a worker process beside the main one) give the same rows, data and figures as one,
whatever order the lanes finish in."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap

import pytest

from experiments.ledger import checks, lanes
from experiments.ledger.claims import ERROR

NAMES = [lanes.short(m) for m in checks.load()]


def test_the_queue_holds_every_module_once_with_its_shared_group_whole_heaviest_first():
    queue = lanes.units(NAMES)
    flat = [n for unit in queue for n in unit]
    assert sorted(flat) == sorted(NAMES) and len(flat) == len(NAMES)
    for unit in queue:
        assert unit == sorted(unit, key=NAMES.index)
    for group in lanes.SHARED:
        assert [n for n in NAMES if n in group] in queue, group
    costs = [sum(lanes._cost(n) for n in unit) for unit in queue]
    assert costs == sorted(costs, reverse=True)
    assert lanes.units(["flips", "contrast"]) == [["flips"], ["contrast"]]  # a group present in part stays a unit


def _rows(results):
    return {lanes.short(m): [r.as_dict() for r in res.rows] for m, res in results}


def test_two_lanes_give_what_one_gives_rows_data_and_figures(tmp_path):
    names = ["tables", "spectrum_real", "methods_cpu", "fig2a_real", "trend_real"]
    modules = [importlib.import_module(f"experiments.ledger.checks.{n}") for n in names]
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    one_dir.mkdir()
    two_dir.mkdir()
    one = list(lanes.run_all(modules, "smoke", 0, 1, lambda it, **kw: it, figures_dir=one_dir))
    two = list(lanes.run_all(modules, "smoke", 0, 2, lambda it, **kw: it, figures_dir=two_dir))
    assert [lanes.short(m) for m, _ in one] == names  # one lane: in order
    assert sorted(lanes.short(m) for m, _ in two) == sorted(names)
    assert _rows(one) == _rows(two)
    figs_one = {p.name: p.read_bytes() for p in one_dir.iterdir()}
    figs_two = {p.name: p.read_bytes() for p in two_dir.iterdir()}
    assert figs_one and figs_one.keys() == figs_two.keys()
    assert all(figs_one[k] == figs_two[k] for k in figs_one)
    for _, res in two:
        assert all(str(two_dir) in f for f in res.figures)


BROKEN = '''
from experiments.ledger.claims import Claim, no_progress, row, GE

CLAIMS = (Claim("X1", "test", "a module that crashes"),)


def run(preset, *, seed=0, progress=no_progress):
    raise RuntimeError("boom in the worker")


def plot(data, outdir):
    return []
'''

BAD_PLOT = '''
from experiments.ledger.claims import Claim, no_progress, row, GE

CLAIMS = (Claim("X2", "test", "a module whose figures fail"),)


def run(preset, *, seed=0, progress=no_progress):
    return [row(CLAIMS[0], 1.0, 0.0, GE)], {"x": 1}


def plot(data, outdir):
    raise KeyError("no such series")
'''


def test_a_crash_or_a_figure_error_in_a_worker_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / "lanes_broken_mod.py").write_text(textwrap.dedent(BROKEN))
    (tmp_path / "lanes_badplot_mod.py").write_text(textwrap.dedent(BAD_PLOT))
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned worker gets this sys.path
    monkeypatch.delenv("CLSPEC_DEBUG", raising=False)
    modules = [importlib.import_module("lanes_broken_mod"), importlib.import_module("lanes_badplot_mod")]
    try:
        results = dict((lanes.short(m), r) for m, r in lanes.run_all(modules, "smoke", 0, 2, lambda it, **kw: it,
                                                                      figures_dir=tmp_path))
    finally:
        for name in ("lanes_broken_mod", "lanes_badplot_mod"):
            sys.modules.pop(name, None)
    broken, badplot = results["lanes_broken_mod"], results["lanes_badplot_mod"]
    assert [r.verdict for r in broken.rows] == [ERROR] and "boom in the worker" in broken.error
    assert badplot.error is None and badplot.rows[0].verdict != ERROR
    assert badplot.figure_error.startswith("lanes_badplot_mod figures: KeyError")


WAITS = '''
import os, time
from pathlib import Path
from experiments.ledger.claims import Claim, no_progress, row, GE

CLAIMS = (Claim("X3", "test", "a module that waits for another one to finish"),)


def run(preset, *, seed=0, progress=no_progress):
    flag = Path(os.environ["LANES_TEST_FLAG"])
    deadline = time.time() + 120
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.05)
    return [row(CLAIMS[0], float(flag.exists()), 1.0, GE)], {"pid": os.getpid()}


def plot(data, outdir):
    return []
'''

SETS = '''
import os
from pathlib import Path
from experiments.ledger.claims import Claim, no_progress, row, GE

CLAIMS = (Claim("X4", "test", "a module that sets the flag"),)


def run(preset, *, seed=0, progress=no_progress):
    Path(os.environ["LANES_TEST_FLAG"]).touch()
    return [row(CLAIMS[0], 1.0, 1.0, GE)], {"pid": os.getpid()}


def plot(data, outdir):
    return []
'''


def test_a_free_lane_takes_the_next_units_while_the_main_one_is_busy(tmp_path, monkeypatch):
    # the main process takes the heaviest unit (the one that waits); the two small ones behind it must go to the
    # worker, the only free lane: were they fixed to a lane in advance, the main one would wait two minutes and FAIL
    for name, text in (("lanes_waits_mod", WAITS), ("lanes_sets_a_mod", SETS), ("lanes_sets_b_mod", SETS)):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LANES_TEST_FLAG", str(tmp_path / "flag"))
    monkeypatch.setitem(lanes.COST, "lanes_waits_mod", 100.0)
    try:
        modules = [importlib.import_module(n) for n in ("lanes_sets_a_mod", "lanes_waits_mod", "lanes_sets_b_mod")]
        results = {lanes.short(m): r for m, r in lanes.run_all(modules, "smoke", 0, 2, lambda it, **kw: it)}
    finally:
        for name in ("lanes_waits_mod", "lanes_sets_a_mod", "lanes_sets_b_mod"):
            sys.modules.pop(name, None)
    waits = results["lanes_waits_mod"]
    assert waits.lane == 0 and waits.data["pid"] == os.getpid() and waits.rows[0].measured == 1.0
    for name in ("lanes_sets_a_mod", "lanes_sets_b_mod"):
        assert results[name].lane == 1 and results[name].data["pid"] != os.getpid()
    assert all(r.started <= r.ended for r in results.values())
