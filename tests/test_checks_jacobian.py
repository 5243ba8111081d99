"""experiments.ledger.checks.jacobian (C90-C97): the smoke run's rows, and mutation tests: each PASS-able
row FAILs when its measurement is perturbed the way the claim forbids (and passes the other way)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import mutations
from experiments.ledger.checks import jacobian as cj


@pytest.fixture(scope="module")
def smoke():
    """The smoke run, shared with tests/test_mutations_jacobian.py (one run per test session)."""
    return mutations.saved_run("experiments.ledger.checks.jacobian", "smoke", 0)


def verdicts(data):
    return {r.claim: r.verdict for r in cj.judge(data)}


def test_smoke_rows_are_complete_and_measured(smoke):
    rows, data = smoke
    assert [r.claim for r in rows] == [c.id for c in cj.CLAIMS]
    for r in rows[:5]:
        assert r.verdict in ("PASS", "FAIL") and np.isfinite(r.measured)
    for s in data["seeds"]:
        for net in s["networks"].values():
            # ||Pi_I||^2 + ||Pi_N||^2 = ||y||^2 = n for one-hot labels
            assert abs(net["pi_I"] ** 2 + net["pi_N"] ** 2 - data["n"]) < 1e-9 * data["n"]
            assert 0 < net["tail_fraction"] < 1
            fc = np.asarray(net["fit_clean"])
            assert np.all(np.diff(fc) >= -1e-12) and fc[-1] <= 1 + 1e-12  # GD only fits more


def _set(data, net, key, fn):
    d = copy.deepcopy(data)
    for s in d["seeds"]:
        s["networks"][net][key] = fn(s["networks"][net])
    return d


def test_c90_fails_when_pretraining_grows_the_tail_and_passes_when_it_shrinks(smoke):
    _, data = smoke
    grow = _set(data, "pretrained", "tail_fraction", lambda n: n["tail_fraction"] * 0 + 0.9)
    shrink = _set(data, "pretrained", "tail_fraction", lambda n: 0.0)
    assert verdicts(grow)["C90"] == "FAIL" and verdicts(shrink)["C90"] == "PASS"


def test_c91_fails_when_the_alignment_drops_by_more_than_the_slack(smoke):
    _, data = smoke
    drop = _set(data, "pretrained", "alignment_top_k", lambda n: 0.0)
    same = _set(data, "pretrained", "alignment_top_k", lambda n: n["alignment_top_k"])
    same = _set(same, "random", "alignment_top_k", lambda n: 0.0)
    assert verdicts(drop)["C91"] == "FAIL" and verdicts(same)["C91"] == "PASS"


@pytest.mark.parametrize("net, claim", [("random", "C92"), ("pretrained", "C93")])
def test_c92_c93_fail_when_the_noise_is_fitted_first(smoke, net, claim):
    _, data = smoke
    swapped = copy.deepcopy(data)
    for s in swapped["seeds"]:
        n = s["networks"][net]
        n["fit_clean"], n["fit_noise"] = n["fit_noise"], n["fit_clean"]
    assert verdicts(data)[claim] == "PASS" and verdicts(swapped)[claim] == "FAIL"


def test_c94_flips_when_the_networks_are_swapped(smoke):
    _, data = smoke
    swapped = copy.deepcopy(data)
    for s in swapped["seeds"]:
        s["networks"]["random"], s["networks"]["pretrained"] = s["networks"]["pretrained"], s["networks"]["random"]
    a, b = verdicts(data)["C94"], verdicts(swapped)["C94"]
    leads = [r.measured for r in cj.judge(data) if r.claim == "C94"][0]
    assert leads != 0 and {a, b} == {"PASS", "FAIL"}


def _evidence(pi_sum=1000.0, pre_pi=10.06, rnd_pi=10.01, pre_ratio=3.18, rnd_ratio=3.05):
    net = lambda pi, ratio, s: dict(n=1000, pi_I=pi, pi_N=np.sqrt(max(s - pi**2, 0)), pi_sum_sq=s, ratio=ratio,  # noqa: E731
                                    relative_residuals=[1e-6], gram_fro_se=0.1)
    return {"command": "clspec jacobian ...", "commit": "abc", "date": "2026-12-01",
            "metrics": {"results": {"random init": net(rnd_pi, rnd_ratio, 1000.0),
                                    "pretrain checkpoint": net(pre_pi, pre_ratio, pi_sum)}}}


def test_cpu_scale_rows_judge_the_evidence_and_fail_when_perturbed():
    ok = {r.claim: r.verdict for r in cj.evidence_rows(_evidence())}
    assert ok == {"C95": "PASS", "C96": "PASS", "C97": "PASS"}
    assert {r.claim: r.verdict for r in cj.evidence_rows(_evidence(pi_sum=1000.001))}["C95"] == "FAIL"
    assert {r.claim: r.verdict for r in cj.evidence_rows(_evidence(pre_pi=9.9))}["C96"] == "FAIL"
    assert {r.claim: r.verdict for r in cj.evidence_rows(_evidence(pre_ratio=3.0))}["C97"] == "FAIL"
    missing = cj.evidence_rows(None)
    assert [r.verdict for r in missing] == ["INFO"] * 3 and "skipped" in missing[0].note
