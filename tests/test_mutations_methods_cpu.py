"""Mutation tests of the Table 1 CPU-scale rows (experiments/ledger/checks/methods_cpu.py: C100-C10x).

The committed evidence (``experiments/ledger/evidence/table1_cpu.json``) is replaced by the grid, so the
rows are judged here on synthetic evidence of the same schema (runs with method / init / noise /
seed / last_test_acc / best_test_acc), with every cell the module reads: CL init ahead of random
init by 8-10 points over three seeds, each cell's standard deviation 0.5 (the difference is resolved
by Welch's test with Holm over the nine rows: t ~ 20-25 at df 4). The mutations are built from the
module's ``CLAIMS`` and ``PAIRS`` at run time:

- a CL-vs-random row (``PAIRS``): that method's CL-init cell lowered 5 points below its random-init
  cell, at that row's noise setting (t = -12 at df 4, raw p 2.6e-4: resolved the wrong way after
  Holm's factor of at most 9);
- C104 (CL+E2E beats every non-CL method): each non-CL cell in turn raised 5 points above CL+E2E;
- any other claim: every CL-init cell lowered 5 points below its random-init cell (the direction
  every "CL init beats ..." claim forbids); a claim of another shape needs its own mutation here.
"""

from __future__ import annotations

import pytest

from experiments.ledger.checks import methods_cpu
from experiments.ledger.claims import FAIL, PASS
from mutations import Mutation, by_key, passable_keys

MODULE = "experiments.ledger.checks.methods_cpu"
METHODS = ("ce", "elr", "mixup", "crust")
NON_CL = ("elr", "mixup", "crust")  # C104's comparison cells (random init)
DROP = 5.0  # points: 12 standard errors of a difference of two cells of three seeds with sd 0.5
SPREAD = (-0.5, 0.0, 0.5)


def pairs() -> list[tuple[str, str, str]]:
    """(claim, method, noise) of each CL-vs-random row; ``PAIRS`` is a tuple (one noise setting,
    ``NOISE``) or a dict noise -> pairs."""
    p = methods_cpu.PAIRS
    if isinstance(p, dict):
        return [(cid, m, noise) for noise, ps in p.items() for cid, m in ps]
    return [(cid, m, methods_cpu.NOISE) for cid, m in p]


SYM = "sym:0.8"
NOISES = tuple(dict.fromkeys([SYM, *(noise for _, _, noise in pairs())]))


def synthetic_evidence() -> dict:
    runs = []
    for k, noise in enumerate(NOISES):
        for j, method in enumerate(METHODS):
            for init, mean in (("random", 20.0 + j + k), ("pretrained", 30.0 + 0.5 * j + k)):
                for seed, d in enumerate(SPREAD):
                    runs.append({"method": method, "init": init, "noise": noise, "seed": seed,
                                 "last_test_acc": mean + d, "best_test_acc": mean + d + 2.0, "best_epoch": 3})
    return {"settings": {"arch": "resnet32", "epochs": 8}, "train_images": 4000, "runs": runs}


def saved():
    """``(rows, data)`` on the synthetic evidence (used instead of a run of the module)."""
    evidence = synthetic_evidence()
    return methods_cpu.judge({"evidence": evidence}), {"evidence": evidence}


def _cells(evidence, method, init, noise):
    return [r for r in evidence["runs"] if (r["method"], r["init"], r["noise"]) == (method, init, noise)]


def _mean(evidence, method, init, noise):
    v = [r["last_test_acc"] for r in _cells(evidence, method, init, noise)]
    return sum(v) / len(v)


def _shift(evidence, method, init, noise, by):
    for r in _cells(evidence, method, init, noise):
        r["last_test_acc"] += by
        r["best_test_acc"] += by


def _cl_below_random(method, noise):
    def edit(ev):
        _shift(ev, method, "pretrained", noise,
               _mean(ev, method, "random", noise) - _mean(ev, method, "pretrained", noise) - DROP)
    return edit


def _non_cl_above_e2e(method):
    def edit(ev):
        _shift(ev, method, "random", SYM, _mean(ev, "ce", "pretrained", SYM) - _mean(ev, method, "random", SYM) + DROP)
    return edit


def _every_cl_below_random(ev):
    for noise in NOISES:
        for method in METHODS:
            _cl_below_random(method, noise)(ev)


def _mutation(key, what, edit):
    def apply(data, mp):
        edit(data["evidence"])
        return methods_cpu.judge(data)
    return Mutation(key, what, apply)


def _mutations() -> list[Mutation]:
    out = [_mutation(cid, f"{m}'s CL-init cell {DROP:g} points below its random-init cell at {noise}",
                     _cl_below_random(m, noise)) for cid, m, noise in pairs()]
    if "C104" in {c.id for c in methods_cpu.CLAIMS}:
        out += [_mutation("C104", f"{m}/random {DROP:g} points above ce/pretrained at {SYM}", _non_cl_above_e2e(m))
                for m in NON_CL]
    done = {m.key for m in out}
    out += [_mutation(c.id, f"every CL-init cell {DROP:g} points below its random-init cell", _every_cl_below_random)
            for c in methods_cpu.CLAIMS if c.id not in done]
    return out


MUTATIONS = _mutations()


def test_every_claim_is_judged_and_passes_on_the_synthetic_evidence():
    rows, _ = saved()
    print(f"\n{MODULE}: claims {[c.id for c in methods_cpu.CLAIMS]}; PASS-able on the synthetic evidence "
          f"{passable_keys(rows)}")
    assert [r.claim for r in rows] == [c.id for c in methods_cpu.CLAIMS]
    assert {r.verdict for r in rows} == {PASS}, [(r.claim, r.verdict, r.note) for r in rows]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_flips_the_row(mutation, monkeypatch):
    _, data = saved()
    r = by_key(mutation.apply(data, monkeypatch))[mutation.key]
    assert r.verdict == FAIL, (r.measured, r.bound, r.note)
    assert r.measured < -(DROP - 1.0)  # resolved the wrong way, not INFO "unresolved"
