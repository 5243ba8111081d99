"""experiments/ledger/checks/spectrum_real.py (C80-C89): rows from evidence, skipped without it, and every
PASS-able row FAILs when the evidence is perturbed the way the claim forbids."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from experiments.ledger.checks import MODULES, spectrum_real
from experiments.ledger.claims import FAIL, INFO, PASS
from experiments.common.runs import _to_jsonable


@pytest.fixture(scope="module")
def evidence():
    """clspec spectrum's analysis on synthetic stand-ins: CL = separated class clusters, random init =
    Gaussian of the same shape, raw = wider Gaussian; sym 0.4 noise (below Thm 4.5's threshold for K = 4)."""
    from experiments.analysis.spectrum_numbers import BETAS, Settings, analyse_all

    rng = np.random.default_rng(0)
    K, n_per, d = 4, 30, 12
    y = np.repeat(np.arange(K), n_per)
    yt = np.repeat(np.arange(K), 10)
    centres = 3 * rng.standard_normal((K, d))
    reps = {
        spectrum_real.CL: {"train": centres[y] + 0.3 * rng.standard_normal((len(y), d)),
                           "test": centres[yt] + 0.3 * rng.standard_normal((len(yt), d))},
        spectrum_real.RANDOM: {"train": rng.standard_normal((len(y), d)), "test": rng.standard_normal((len(yt), d))},
        spectrum_real.RAW: {"train": rng.standard_normal((len(y), 200)), "test": rng.standard_normal((len(yt), 200))},
    }
    st = Settings(noise="sym:0.4", noise_seed=0, beta=1e-3, betas=BETAS, alphas=(0.0, 0.4), k=None, seed=0)
    res = analyse_all(reps, {"train": y, "test": yt, "num_classes": K}, st)
    res.update(commit="0" * 40, date="today")
    return json.loads(json.dumps(_to_jsonable(res)))


def _by(rows):
    return {r.claim: r for r in rows}


def test_registered_ids_in_range_and_missing_evidence_is_skipped(tmp_path):
    assert "experiments.ledger.checks.spectrum_real" in MODULES
    ids = [c.id for c in spectrum_real.CLAIMS]
    assert len(set(ids)) == len(ids) and all(80 <= int(i[1:]) <= 89 for i in ids)
    rows, data = spectrum_real.run("smoke", evidence=tmp_path / "none.json")
    assert {r.claim for r in rows} == set(ids) and data == {}
    assert all(r.verdict == INFO and "skipped" in r.note and "CPU-scale" in r.setting for r in rows)
    with pytest.raises(ValueError, match="preset"):
        spectrum_real.run("huge")


def test_rows_on_structured_evidence_pass(evidence, tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(evidence))
    rows, data = spectrum_real.run("cpu", evidence=path)
    by = _by(rows)
    assert set(by) == {c.id for c in spectrum_real.CLAIMS}
    for cid in ("C80", "C81", "C83", "C84", "C85", "C86", "C87"):
        assert by[cid].verdict == PASS, (cid, by[cid].measured, by[cid].bound, by[cid].note)
    assert by["C82"].verdict in (PASS, FAIL) and by["C89"].verdict == INFO
    assert all(math.isfinite(r.measured) for r in rows if r.verdict != INFO)
    paths = spectrum_real.plot(json.loads(json.dumps(_to_jsonable(data))), tmp_path)
    assert len(paths) == 1 and paths[0].read_bytes()[:4] == b"\x89PNG"


def test_judge_re_judges_the_saved_data_as_the_evidence_itself():
    """``judge(data)`` on a run's saved data gives the rows of the committed evidence file, row for row."""
    rows, data = spectrum_real.run("cpu")
    saved = json.loads(json.dumps(_to_jsonable(data)))
    again = spectrum_real.judge(saved)
    direct = spectrum_real.rows_from_evidence(json.loads(spectrum_real.EVIDENCE.read_text()))
    assert [r.as_dict() for r in again] == [r.as_dict() for r in direct] == [r.as_dict() for r in rows]


def _perturbed(evidence, edit):
    e = copy.deepcopy(evidence)
    edit(e["representations"])
    return _by(spectrum_real.rows_from_evidence(e))


def test_perturbed_evidence_fails(evidence):
    CL, RND, RAW = spectrum_real.CL, spectrum_real.RANDOM, spectrum_real.RAW

    def set_(name, key, value):
        return lambda reps: reps[name].__setitem__(key, value)

    def head(name, value):
        return lambda reps: reps[name]["head"].__setitem__("train_recovery", value)

    cl = evidence["representations"][CL]
    cases = {
        "C80": set_(RND, "alignment_K", cl["alignment_K"] + 1e-6),
        "C81": set_(RAW, "alignment_K", cl["alignment_K"] + 1e-6),
        "C82": set_(CL, "prominent", evidence["num_classes"] - 1),
        "C83": lambda reps: reps[CL]["split_noise"].__setitem__(
            "information_fraction", reps[CL]["split_clean"]["information_fraction"] + 1e-6),
        "C84": head(CL, 1.0 - 1.0 / evidence["n_train"]),
        "C85": head(RND, cl["head"]["train_recovery"] + 1e-6),
        "C86": head(RAW, cl["head"]["train_recovery"] + 1e-6),
        "C87": lambda reps: reps[CL]["beta_path"][0].__setitem__(
            "noisy_memorized", reps[RAW]["beta_path"][0]["noisy_memorized"] + 1e-6),
    }
    for cid, edit in cases.items():
        assert _perturbed(evidence, edit)[cid].verdict == FAIL, cid
    # the threshold row is INFO (no claim) when the noise rate is above the threshold
    e = copy.deepcopy(evidence)
    e["representations"][CL]["head"]["threshold"] = 0.1
    assert _by(spectrum_real.rows_from_evidence(e))["C84"].verdict == INFO
