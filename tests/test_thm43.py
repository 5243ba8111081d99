"""The Theorem 4.3 check module (experiments/ledger/checks/thm43.py): its judge turns violated bounds into FAIL
rows with numbers and keeps judging every other claim. (Theory-level property tests: tests/test_bounds.py;
one mutation per PASS-able row: tests/test_mutations_thm43.py.)"""

import mutations
from experiments.ledger.checks import thm43
from theory import bounds

MODULE = "experiments.ledger.checks.thm43"


def test_judge_turns_a_lower_order_measurement_into_a_fail_row():
    """A tail sum of 50 delta'^0.25 above Cor. A.6's leading term fails C9; C7 still passes."""
    _, data = mutations.saved_run(MODULE)
    for pt in data["sweeps"]["delta"]:
        pt["tail_sum"] = float(bounds.cor_a6_global_leading(pt["p"], pt["n_sub"], pt["delta_r"])
                               + 50 * bounds.delta_prime(pt["delta_r"]) ** 0.25)
    rows = mutations.by_key(thm43.judge(data))
    assert rows["C9"].verdict == "FAIL" and rows["C7"].verdict == "PASS"


def test_a_violated_bound_fails_its_row_and_every_other_row_is_still_judged(monkeypatch):
    """Lemma A.4's bound 10% lower: C5 FAILs with its numbers, no row is an ERROR."""
    rows, data = mutations.saved_run(MODULE)
    mutations.scale_bound(monkeypatch, bounds, "block_eig_sq_sum_upper", 0.9)
    after = thm43.judge(data)
    assert [r.claim for r in after] == [r.claim for r in rows]
    c5 = mutations.by_key(after)["C5"]
    assert c5.verdict == "FAIL" and c5.measured > c5.bound > 0
    assert all(r.verdict != "ERROR" for r in after)


def test_a_crashing_judge_errors_only_its_own_claims(monkeypatch):
    rows, data = mutations.saved_run(MODULE)

    def boom(*a, **k):
        raise RuntimeError("injected")

    monkeypatch.setattr(bounds, "perron_entry_bounds", boom)
    after = thm43.judge(data)
    errored = {r.claim for r in after if r.verdict == "ERROR"}
    assert errored == {"C22", "C23", "C24"}
    assert {r.claim for r in after} == {r.claim for r in rows}
