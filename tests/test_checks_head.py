"""End-to-end smoke run of the linear-head checks (experiments/checks/head.py): every claim
C30-C47 gets a row with a finite measured value, the data is JSON-able, figures are written."""

import json
import math

import pytest

from experiments.checks import MODULES, head
from experiments.claims import FAIL, INFO, PASS
from experiments.runs import _to_jsonable


@pytest.fixture(scope="module")
def smoke():
    return head.run("smoke", seed=0)


def test_module_is_registered_and_ids_in_range():
    assert "experiments.checks.head" in MODULES
    ids = [c.id for c in head.CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(30 <= int(i[1:]) <= 49 for i in ids)


def test_smoke_rows_cover_every_claim_with_finite_numbers(smoke):
    rows, data = smoke
    assert {r.claim for r in rows} == {c.id for c in head.CLAIMS}
    for r in rows:
        assert r.verdict in (PASS, FAIL, INFO), (r.claim, r.verdict, r.note)
        assert math.isfinite(r.measured), r.claim
        assert r.bound is None or not math.isnan(r.bound), r.claim
    json.dumps(_to_jsonable(data))  # metrics.json can hold it


def test_smoke_theorem_rows_hold(smoke):
    """At delta = 0 the theorems are exact statements; the smoke preset must confirm them."""
    rows, _ = smoke
    by = {r.claim: r for r in rows}
    for cid in ("C30", "C31", "C32", "C33", "C35", "C37", "C38", "C44"):
        assert by[cid].verdict == PASS, (cid, by[cid].measured, by[cid].bound, by[cid].note)


def test_plot_is_a_function_of_the_data(smoke, tmp_path):
    _, data = smoke
    paths = head.plot(json.loads(json.dumps(_to_jsonable(data))), tmp_path)
    assert len(paths) == 4
    for p in paths:
        assert p.exists() and p.stat().st_size > 10_000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_preset():
    with pytest.raises(ValueError, match="preset must be one of"):
        head.run("huge")
