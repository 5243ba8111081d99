"""The encoder checks C50-C69 that `clspec verify` runs (experiments/ledger/checks/encoders.py)."""

import json
import math
import re

import pytest

import mutations

from experiments.ledger import checks
from experiments.ledger.checks import encoders
from experiments.ledger.claims import ERROR, FAIL, INFO, PASS
from experiments.common.runs import write_json


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    rows, data = mutations.saved_run("experiments.ledger.checks.encoders", "smoke")  # one run, shared with the mutation tests
    path = tmp_path_factory.mktemp("enc") / "data.json"
    write_json(path, data)  # the data must be JSON-able
    return rows, json.loads(path.read_text())


def test_claim_ids_are_in_the_encoder_range_and_registered():
    ids = [c.id for c in encoders.CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"C(5\d|6\d)", i) for i in ids)
    assert "experiments.ledger.checks.encoders" in checks.MODULES


def test_smoke_returns_a_finite_row_for_every_claim(smoke):
    rows, _ = smoke
    assert sorted(r.claim for r in rows) == sorted(c.id for c in encoders.CLAIMS)
    for r in rows:
        assert r.verdict in (PASS, FAIL, INFO) and r.verdict != ERROR
        assert math.isfinite(r.measured), r
        if r.bound is not None:
            assert math.isfinite(r.bound)
        if r.verdict != INFO:
            assert r.bound is not None


def test_smoke_rows_report_what_was_measured(smoke):
    rows, data = smoke
    by = {r.claim: r for r in rows}
    # C50's measured value is the relative gap of the table's final population loss
    final = data["final"]["table/spectral"]["pop_loss"]
    gap = (final - data["closed_form"]["min_loss"]) / abs(data["closed_form"]["min_loss"])
    assert by["C50"].measured == pytest.approx(gap, rel=1e-12)
    # the unbiasedness rows use c/sqrt(M) with c = 4 x std
    est = data["estimators"]["independent"]
    assert by["C62"].bound == pytest.approx(4.0 * est["std"] / math.sqrt(est["M"]))
    # the closed form is at distance 0 from itself
    assert data["closed_form"]["sine"] < 1e-6


def test_plots_are_pure_functions_of_the_data(smoke, tmp_path):
    _, data = smoke
    paths = encoders.plot(data, tmp_path)
    assert len(paths) == 2
    for p in paths:
        assert p.exists() and p.stat().st_size > 10_000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="preset must be one of"):
        encoders.run("huge")
