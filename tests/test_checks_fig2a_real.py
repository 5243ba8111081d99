"""checks/fig2a_real (C98-C99): rows from the full-spectrum evidence, INFO without it, the figures from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.ledger.checks import fig2a_real as fr
from experiments.ledger.claims import INFO, PASS
from test_mutations_fig2a_real import synthetic_evidence


def test_without_evidence_or_its_n1000_run_every_row_is_info_skipped(tmp_path):
    rows, data = fr.run("smoke", evidence=tmp_path / "missing.json")
    assert [r.claim for r in rows] == ["C98", "C98", "C99"] and data["runs"] is None
    assert all(r.verdict == INFO and r.note.startswith("skipped") for r in rows)
    ev = synthetic_evidence(n=100)
    rows = fr.judge({"runs": ev["runs"]})
    assert all(r.verdict == INFO and "no n=1000 run" in r.note for r in rows)


def test_a_missing_network_skips_only_its_convention():
    ev = synthetic_evidence()
    del ev["runs"]["n=1000"]["networks"]["pretrained/batch"]
    rows = fr.judge({"runs": ev["runs"]})
    assert rows[0].verdict == PASS and "running" in rows[0].setting
    assert rows[1].verdict == INFO and "pretrained/batch" in rows[1].note


def test_c98_measures_the_tail_fraction_and_c99_names_the_convention_nearest_the_axis(tmp_path):
    ev = synthetic_evidence()
    nets = ev["runs"]["n=1000"]["networks"]
    s = np.asarray(nets["pretrained/running"]["sigma"])
    rows = fr.judge({"runs": ev["runs"]})
    assert rows[0].measured == pytest.approx(np.sum(s[10:] ** 2) / np.sum(s**2))
    assert rows[0].bound == pytest.approx(fr.tail_fraction(nets["random/running"]["sigma"]))
    assert "BatchNorm batch" in rows[2].note and rows[2].measured == pytest.approx(2000.0)  # 4x the axis vs 400x
    path = tmp_path / "ev.json"
    path.write_text(json.dumps(ev))
    assert [r.verdict for r in fr.run("cpu", evidence=path)[0]] == [r.verdict for r in rows]


def test_other_n_and_the_float64_tile_comparison_are_reported_in_the_notes():
    ev = synthetic_evidence()
    small = synthetic_evidence(n=20)["runs"]["n=20"]
    ev["runs"]["n=20"] = small
    ev["runs"]["n=20 float64"] = json.loads(json.dumps(small))
    ev["runs"]["n=20 float64"]["config"]["tiles"] = "float64"
    s = np.asarray(ev["runs"]["n=20 float64"]["networks"]["random/running"]["sigma"])
    ev["runs"]["n=20 float64"]["networks"]["random/running"]["sigma"] = (s * (1 + 1e-4)).tolist()
    note = fr.judge({"runs": ev["runs"]})[0].note
    assert "n=20: sigma_1" in note and "float32 vs float64 tiles" in note and "1.0e-04" in note


def test_the_figures_are_drawn_from_the_evidence(tmp_path):
    ev = synthetic_evidence(n=100)
    paths = fr.plot({"runs": ev["runs"]}, tmp_path)
    assert [p.name for p in paths] == ["fig2a_real_hist.png", "fig2a_real_alignment.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert fr.plot({"runs": None}, tmp_path) == []


def test_the_committed_evidence_is_judged_from_its_own_arrays():
    ev = fr.load()
    if ev is None or fr.MAIN not in ev.get("runs", {}):
        pytest.skip("no committed n = 1,000 evidence")
    rows = fr.judge({"runs": ev["runs"]})
    nets = ev["runs"][fr.MAIN]["networks"]
    for r, mode in zip(rows[:2], fr.MODES):
        if f"pretrained/{mode}" in nets and f"random/{mode}" in nets:
            assert r.verdict != INFO
            assert r.measured == pytest.approx(fr.tail_fraction(nets[f"pretrained/{mode}"]["sigma"]))
    for r in nets.values():
        assert len(r["sigma"]) == 10_000 and abs(sum(r["alignment_sq"]) - 1000) < 0.1
