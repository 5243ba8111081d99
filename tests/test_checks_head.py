"""End-to-end smoke runs of the linear-head checks (experiments/ledger/checks/head.py: C30-C36, C48, C49;
experiments/ledger/checks/flips.py: C37-C41; experiments/ledger/checks/contrast.py: C42-C47): every claim gets a row with a finite measured value, the
rows are a pure function of the saved data (``judge``), the data is JSON-able, figures are written."""

import json
import math

import pytest

import mutations

from experiments.ledger.checks import MODULES, contrast, flips, head
from experiments.ledger.claims import FAIL, INFO, PASS
from experiments.common.runs import _to_jsonable


@pytest.fixture(scope="module", params=["head", "flips", "contrast"])
def smoke(request):
    module = {"head": head, "flips": flips, "contrast": contrast}[request.param]
    rows, data = mutations.saved_run(module.__name__, "smoke")  # shared with the mutation tests
    return module, rows, data


def test_modules_are_registered_and_ids_in_range():
    assert all(f"experiments.ledger.checks.{m}" in MODULES for m in ("head", "flips", "contrast"))
    ids = [c.id for m in (head, flips, contrast) for c in m.CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(30 <= int(i[1:]) <= 49 for i in ids)


def test_smoke_rows_cover_every_claim_with_finite_numbers(smoke):
    module, rows, data = smoke
    assert {r.claim for r in rows} == {c.id for c in module.CLAIMS}
    for r in rows:
        assert r.verdict in (PASS, FAIL, INFO), (r.claim, r.verdict, r.note)
        assert math.isfinite(r.measured), r.claim
        assert r.bound is None or not math.isnan(r.bound), r.claim
    json.dumps(_to_jsonable(data))  # metrics.json can hold it


def test_rows_are_a_pure_function_of_the_saved_data(smoke):
    module, rows, data = smoke
    again = module.judge(json.loads(json.dumps(_to_jsonable(data))))
    assert [(r.claim, r.measured, r.bound, r.verdict) for r in again] == [(r.claim, r.measured, r.bound, r.verdict) for r in rows]


def test_smoke_theorem_rows_hold(smoke):
    """Exact identities, explicit bounds and Theorem 4.5 in its regime hold at the smoke preset too."""
    module, rows, _ = smoke
    expect = {"head": ("C30", "C31", "C32", "C33", "C35"), "flips": ("C37", "C38"),
              "contrast": ("C44",)}[module.__name__.rsplit(".", 1)[-1]]
    for r in rows:
        if r.claim in expect:
            assert r.verdict == PASS, (r.claim, r.measured, r.bound, r.note)


def test_plot_is_a_function_of_the_data(smoke, tmp_path):
    module, _, data = smoke
    paths = module.plot(json.loads(json.dumps(_to_jsonable(data))), tmp_path)
    assert len(paths) == {head: 2, flips: 2, contrast: 2}[module]
    for p in paths:
        assert p.exists() and p.stat().st_size > 10_000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_preset():
    for module in (head, flips, contrast):
        with pytest.raises(ValueError, match="preset must be one of"):
            module.run("huge")


def test_progress_wraps_the_sections_not_a_string():
    """`clspec verify` passes an iterable wrapper; a module must wrap its sections with it (a
    string would open one progress bar per character)."""
    seen = []

    def wrap(it, desc=None):
        seen.append((desc, list(it)))
        return seen[-1][1]

    calls = []
    sections = ((lambda cfg, seed: calls.append("m") or {"x": 1}, lambda d, cfg: [], ()),)
    head.run_sections("head", head.PRESETS, sections, head.C, "smoke", 0, wrap)
    assert seen == [("head", list(sections))] and calls == ["m"]
