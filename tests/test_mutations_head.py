"""Mutation tests of the Eq. 13 / Theorem 4.4 rows (experiments/ledger/checks/head.py: C30-C36, C48, C49).

The saved measurements of one run (smoke preset by default, the cpu preset's real sweeps under
``-m slow``) are mutated the way the claim forbids and re-judged by ``head.judge``:

- identities (C30-C32): one setting's discrepancy moved just past its band / round-off;
- explicit bounds (C33, C35): the bound halved (``mutations.scale_bound``), and for C33 its delta
  term dropped (the explicit constant is part of the verdict);
- O() claims (C34, C36, C48): the excess replaced by (C34) or added to (C36, C48) a term half an
  order lower than claimed, sized like the measured excess at the top of each sub-sweep
  (``mutations.half_order_term``), on the sweep actually run;
- C49 (Thm 4.4's regime remark, a FAIL at the cpu preset): the variance tripled must FAIL it; with
  the bias (beta/(1+beta))^2 removed from the error (the term the remark leaves out) it must PASS.

A row that PASSes must FAIL under each of its ``FAIL`` mutations; a row that FAILs as a finding
must PASS under its ``PASS`` (repair) mutation, which shows the FAIL is not structural.
"""

from __future__ import annotations

import numpy as np
import pytest

import mutations
from experiments.ledger.checks import head
from mutations import Mutation
from theory import bounds

MODULE = "experiments.ledger.checks.head"


def _rows(data):
    return head.judge(data)


def setter(judge):
    """``_set(key, what, fn, expect)``: a mutation that changes the data in place with ``fn`` and re-judges."""
    def _set(key, what, fn, expect="FAIL"):
        def apply(data, mp):
            fn(data)
            return judge(data)
        return Mutation(key, what, apply, expect)
    return _set


_set = setter(_rows)


def _scaled(key, name, factor):
    def apply(data, mp):
        mutations.scale_bound(mp, bounds, name, factor)
        return _rows(data)
    return Mutation(key, f"bounds.{name} scaled by {factor:g}", apply)


def _drop_linear(data, mp):
    original = bounds.bias_bound_eq15
    mp.setattr(bounds, "bias_bound_eq15", lambda *a, **k: (original(*a, **k)[0], 0.0 * original(*a, **k)[1]))
    return _rows(data)


def _mc_past_band(data):
    q = data["eq13"][0]
    q["err"] = 1.01 * q["band"]


def _exact_off(data):
    data["eq13"][0]["exact"] = data["eq13"][0]["formula"] + 1e-8


def _pred_off(data):
    data["eq13"][0]["pred_diff"] = 1e-8


def _betas(data):
    return np.asarray(data["config"]["betas"], dtype=float)


def _half_order(key, kind, x_of, lead_of, order, replace=False, shift=-0.5, expect="FAIL"):
    """Per (p, beta) sub-sweep, the excess of ``bias2`` (kind "bias") or ``variance`` over its
    explicit terms plus (or, ``replace``, replaced by) a term half an order lower than claimed
    (``shift=+0.5`` with ``expect="PASS"``: a term half an order higher, a repair)."""
    field = "bias2" if kind == "bias" else "variance"

    def apply(data, mp):
        pts = data["thm44_grid" if replace else "thm44_xi"]
        pts = [q for q in pts if q.get("delta", 1) > 0]
        betas, n, nb = _betas(data), data["thm44_curve"]["n"], data["config"]["n_sub"]
        for p in sorted({q["p"] for q in pts}):
            sub = [q for q in pts if q["p"] == p]
            x = np.asarray([x_of(q) for q in sub])
            for j, beta in enumerate(betas):
                lead = np.asarray([lead_of(q, beta, n, nb) for q in sub])
                meas = np.asarray([q[field][j] for q in sub])
                excess = meas - lead
                if replace:  # the remainder becomes a term of order q - 1/2 sized like the bias excess at the top
                    top = np.argmax(x)
                    scale = abs(meas[top] - float(bounds.bias_bound_eq15(beta, x[top], n, nb)[0]))
                    new = lead + scale * (x / x[top]) ** (order - 0.5)
                elif shift < 0:
                    new = lead + mutations.half_order_term(x, excess, order)
                else:
                    top = np.argmax(x)
                    new = lead + np.maximum(excess, 0) + abs(excess[top]) * (x / x[top]) ** (order + shift)
                for q, v in zip(sub, new):
                    q[field] = np.asarray(q[field], dtype=float).copy()
                    q[field][j] = v
        return _rows(data)
    return Mutation(key, f"{field}'s excess {'replaced by' if replace else 'plus'} a term of order {order + shift:g}", apply,
                    expect)


def _eq15_both(q, beta, n, nb):
    lead, lin = bounds.bias_bound_eq15(beta, q["delta_real"], n, nb)
    return float(lead + lin)


def _variance_tripled(data):
    for q in data["thm44_xi"]:
        q["variance"] = 3.0 * np.asarray(q["variance"], dtype=float)


def _bias_removed(data):
    betas = _betas(data)
    for q in data["thm44_xi"]:
        q["bias2"] = np.asarray(q["bias2"], dtype=float) - (betas / (1 + betas)) ** 2


MUTATIONS = [
    _set("C30", "one setting's Monte-Carlo error 1.01 x its 4-sigma band", _mc_past_band),
    _set("C31", "one setting's exact expectation 1e-8 off Eq. 13", _exact_off),
    _set("C32", "one setting's F W-hat 1e-8 off F* B F*^T Y-hat", _pred_off),
    _scaled("C33", "bias_bound_eq15", 0.5),
    Mutation("C33", "Eq. 15's explicit delta term dropped", _drop_linear),
    _half_order("C34", "bias", lambda q: q["delta_real"], _eq15_both, 2.0, replace=True),
    _scaled("C35", "variance_bound_a3", 0.5),
    _half_order("C36", "bias", lambda q: q["delta_real"] + q["xi_real"], lambda q, b, n, nb: (b / (1 + b)) ** 2, 1.0),
    _half_order("C48", "variance", lambda q: np.sqrt(q["delta_real"]) + q["xi_real"],
                lambda q, b, n, nb: float(bounds.variance_leading(b, 1.0, n, nb)), 1.0),
    _half_order("C48", "variance", lambda q: np.sqrt(q["delta_real"]) + q["xi_real"],
                lambda q, b, n, nb: float(bounds.variance_leading(b, 1.0, n, nb)), 1.0, shift=0.5, expect="PASS"),
    _set("C49", "the variance tripled", _variance_tripled),
    _set("C49", "the bias (beta/(1+beta))^2 removed from the error (repair)", _bias_removed, expect="PASS"),
]


def check(mutation, preset, monkeypatch, module_name=MODULE):
    """A PASS row must FAIL under a FAIL mutation; a FAIL row (a finding) must PASS under its repair."""
    rows, data = mutations.saved_run(module_name, preset)
    before = mutations.by_key(rows)[mutation.key].verdict
    if before != {"FAIL": "PASS", "PASS": "FAIL"}[mutation.expect]:
        pytest.skip(f"{mutation.key} is {before} at the {preset} preset; this mutation tests the other verdict")
    r = mutations.by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


def coverage(module_name, all_mutations, preset):
    """Each PASS-able row has a mutation that tests its present verdict (FAIL for a PASS, PASS for a FAIL);
    prints the PASS-able rows and the covered ones."""
    rows, _ = mutations.saved_run(module_name, preset)
    keys, by = mutations.passable_keys(rows), mutations.by_key(rows)
    covered = {m.key for m in all_mutations if by[m.key].verdict == {"FAIL": "PASS", "PASS": "FAIL"}[m.expect]}
    print(f"{module_name} ({preset}): PASS-able rows {keys}; covered {sorted(covered)}")
    assert sorted(covered) == sorted(keys)


@pytest.mark.parametrize("preset", ["smoke", pytest.param("cpu", marks=pytest.mark.slow)])
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, preset, monkeypatch):
    check(mutation, preset, monkeypatch)


@pytest.mark.parametrize("preset", ["smoke", pytest.param("cpu", marks=pytest.mark.slow)])
def test_every_passable_row_has_a_mutation_of_its_verdict(preset):
    coverage(MODULE, MUTATIONS, preset)


def standard_tests(module_name, all_mutations):
    """The two tests of a mutation file, at the smoke preset (and the cpu one under ``-m slow``): each mutation
    gives its verdict (:func:`check`), and every PASS-able row has one (:func:`coverage`). Assign them to
    module-level ``test_*`` names."""
    presets = ["smoke", pytest.param("cpu", marks=pytest.mark.slow)]

    @pytest.mark.parametrize("preset", presets)
    @pytest.mark.parametrize("mutation", all_mutations, ids=lambda m: f"{m.key}: {m.what}")
    def flips(mutation, preset, monkeypatch):
        check(mutation, preset, monkeypatch, module_name)

    @pytest.mark.parametrize("preset", presets)
    def covered(preset):
        coverage(module_name, all_mutations, preset)

    return flips, covered
