"""experiments.ledger.lanes: the assignment of check modules to lanes, and that two lanes (a worker process
beside the main one) give the same rows, data and figures as one, whatever order the lanes finish in."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from experiments.ledger import checks, lanes
from experiments.ledger.claims import ERROR

NAMES = [lanes.short(m) for m in checks.load()]


@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
def test_every_module_is_in_one_lane_with_its_shared_group_in_module_order(jobs):
    assigned = lanes.assign(NAMES, jobs)
    flat = [n for lane in assigned for n in lane]
    assert sorted(flat) == sorted(NAMES) and len(flat) == len(NAMES)
    assert 1 <= len(assigned) <= jobs
    for lane in assigned:
        assert lane == sorted(lane, key=NAMES.index)
    for group in lanes.SHARED:
        homes = {i for i, lane in enumerate(assigned) for n in lane if n in group}
        assert len(homes) == 1, group
    if jobs == 1:
        assert assigned == [NAMES]


def test_two_lanes_are_balanced_by_cost():
    a, b = lanes.assign(NAMES, 2)
    load = [sum(lanes._cost(n) for n in lane) for lane in (a, b)]
    load[1] += lanes.SPAWN_COST
    heaviest_unit = max(sum(lanes._cost(n) for n in g) for g in lanes.SHARED)
    assert abs(load[0] - load[1]) < heaviest_unit / 2


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
