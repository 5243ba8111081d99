"""Mutation tests of the Theorem 4.3 rows (C1-C27): each PASS-able row FAILs when its claim is broken.

The saved measurements of one run (smoke preset by default, the cpu preset's real sweeps under
``-m slow``) are mutated the way the claim forbids and re-judged by ``thm43.judge``:

- explicit bounds: one graph's measured value moved just past its bound;
- leading term + O(delta'^q) (C7-C9, C11.2): the leading term dropped (the explicit constant
  is part of the verdict), and an excess over it of half an order lower than q;
- O() claims (C12, C15, C17, C18, C25, C26): a term half an order lower than claimed
  (``mutations.half_order_term``); the K-bar orders (C15.2, C26.2): a term half an order higher.
"""

from __future__ import annotations

import numpy as np
import pytest

import mutations
from mutations import Mutation
from experiments.ledger.checks import thm43
from theory import bounds

MODULE = "experiments.ledger.checks.thm43"


def _rows(data):
    return thm43.judge(data)


def _first_pos(data, kind="delta"):
    return next(pt for pt in data["sweeps"][kind] if pt["delta_r"] > 0)


def _past_bound(key, field, bound_of, factor=1.0 + 1e-6, kind="delta", index=0):
    """One graph's measured ``field`` (a scalar or entry ``index`` of a per-block list) set to
    ``factor`` times its bound."""
    def apply(data, mp):
        pt = next(pt for pt in data["sweeps"][kind] if pt["delta_r"] > 0 and pt.get("xi_r", 0) >= 0
                  and (kind == "delta" or pt["xi_r"] > 0))
        value = factor * bound_of(pt)
        if isinstance(pt[field], list):
            pt[field][index] = value
        else:
            pt[field] = value
        return _rows(data)
    return Mutation(key, f"one graph's {field} set to {factor:g} x its bound", apply)


def _drop_leading(key, name, value=0.0):
    def apply(data, mp):
        mp.setattr(bounds, name, lambda *a, **k: value + 0.0 * np.asarray(a[-1], dtype=float))
        return _rows(data)
    return Mutation(key, f"the leading term bounds.{name} replaced by {value:g}", apply)


def _excess_half_order(key, field, leading_of, order, relation="<="):
    """The measured value set to the leading term plus (minus, for >=) an excess of order q - 1/2."""
    def apply(data, mp):
        pts = [pt for pt in data["sweeps"]["delta"] if pt["delta_r"] > 0]
        dp = np.array([float(bounds.delta_prime(pt["delta_r"])) for pt in pts])
        lead = np.array([leading_of(pt) for pt in pts])
        meas = np.array([max(pt[field]) if isinstance(pt[field], list) else pt[field] for pt in pts])
        gap = np.abs(meas - lead)
        term = mutations.half_order_term(dp, gap, order, groups=[pt["partition"] for pt in pts]) - gap
        new = np.maximum(meas, lead) + term if relation == "<=" else np.minimum(meas, lead) - term
        for pt, v in zip(pts, new):
            pt[field] = [float(v)] * len(pt[field]) if isinstance(pt[field], list) else float(v)
        return _rows(data)
    return Mutation(key, f"{field} = leading term {'+' if relation == '<=' else '-'} an excess of order delta'^{order - 0.5:g}",
                    apply)


def _half_order(key, kind, x_of, field, order, limit="x->0", y_of=None, set_y=None):
    """A term half an order lower (higher for x -> inf) than claimed added to the measured quantity."""
    def apply(data, mp):
        pts = [pt for pt in data["sweeps"][kind] if kind in ("nsub", "path") or pt["xi_r"] > 0]
        x = np.array([x_of(pt) for pt in pts])
        y = np.array([(y_of or (lambda pt: pt[field]))(pt) for pt in pts])
        groups = None if kind == "nsub" else [pt["partition"] for pt in pts]  # the K-bar sweep is one group
        new = mutations.half_order_term(x, y, order, limit=limit, groups=groups)
        for pt, v in zip(pts, new):
            (set_y or (lambda pt, v: pt.__setitem__(field, float(v))))(pt, v)
        return _rows(data)
    return Mutation(key, f"{field} plus a term half an order {'lower' if limit == 'x->0' else 'higher'} than claimed", apply)


def _set(key, what, fn):
    def apply(data, mp):
        fn(data)
        return _rows(data)
    return Mutation(key, what, apply)


def _top_below_weyl(data):
    pt = next(pt for pt in data["sweeps"]["xi"] if pt["xi_r"] > 0)
    pt["top_min"] = 1.0 - pt["E_2"] - 1e-6


def _top_err(data):
    data["sweeps"]["delta"][0]["top_err"] = 1e-6


def _align_identity(data):
    pt = data["sweeps"]["delta"][0]
    pt["align_tilde"] += 1e-6 * pt["n"]


def _loss_above_optimum(data):
    data["loss"]["at_min"] = data["loss"]["optimum"] + 1e-6 * abs(data["loss"]["optimum"])


def _loss_lowered(data):
    data["loss"]["min_excess"] = -1e-6 * abs(data["loss"]["optimum"])


def _bias_above(data):
    pt = next(pt for pt in data["sweeps"]["xi"] if pt.get("bias") and pt["xi_r"] > 0)
    pt["bias"][0][1] = pt["bias"][0][2] + 1e-6


def _sq(pt):
    return np.sqrt(pt["delta_r"])


def _drop(pt):
    return pt["align_bar"] - pt["align_tilde"]


def _set_drop(pt, v):
    pt["align_tilde"] = pt["align_bar"] - float(v)


MUTATIONS = [
    _set("C1", "one graph's top-K-bar eigenvalue 1e-6 away from 1", _top_err),
    _past_bound("C2", "col_ratio", lambda pt: bounds.column_ratio_bound(pt["delta_r"])),
    _past_bound("C3", "perron_ratio", lambda pt: bounds.perron_ratio_bound(pt["delta_r"])),
    _past_bound("C4", "l1_sq", lambda pt: bounds.perron_l1_sq_lower(pt["sizes"][0], pt["delta_r"]), factor=1 - 1e-6),
    _past_bound("C5", "eig_sq_sum", lambda pt: bounds.block_eig_sq_sum_upper(pt["sizes"][0], pt["delta_r"])),
    _past_bound("C6", "eig2", lambda pt: bounds.block_eig_upper(pt["sizes"][0], pt["delta_r"]), factor=1 + 1e-4),
    _drop_leading("C7", "eq12_leading"),
    _excess_half_order("C7", "tail_sq", lambda pt: float(bounds.eq12_leading(pt["delta_r"])), 2),
    _drop_leading("C8", "cor_a6_block_leading"),
    _excess_half_order("C8", "block_tail_sum",
                       lambda pt: float(bounds.cor_a6_block_leading(max(pt["p_k"]), pt["delta_r"])), 1),
    _drop_leading("C9", "cor_a6_global_leading"),
    _excess_half_order("C9", "tail_sum", lambda pt: float(bounds.cor_a6_global_leading(pt["p"], pt["n_sub"], pt["delta_r"])), 1),
    _set("C10", "||V_I V_I^T Y||^2 moved 1e-6 n off the Perron l1 sum", _align_identity),
    _past_bound("C11.1", "align", lambda pt: bounds.alignment_lower_exact(pt["sizes"], pt["delta_r"]) - 1e-6, factor=1.0),
    _drop_leading("C11.2", "alignment_lower_leading", value=1.0),
    _excess_half_order("C11.2", "align", lambda pt: bounds.alignment_lower_leading(pt["sizes"], pt["delta_r"]), 2,
                       relation=">="),
    _half_order("C12", "path", lambda pt: _sq(pt) + pt["xi_r"], "tail_sv_sum", 1),
    _past_bound("C13", "h_ratio", lambda pt: pt["xi_r"], factor=1.01, kind="xi"),
    _past_bound("C14", "H_fro", lambda pt: bounds.offblock_fro_upper(pt["n_sub"], pt["xi_r"]), factor=1.01, kind="xi"),
    _half_order("C15.1", "xi", lambda pt: bounds.perturbation_scale(pt["n_sub"], pt["xi_r"]), "E_fro", 1),
    _set("C16", "one graph's smallest top eigenvalue 1e-6 below 1 - ||E||_2 (Weyl)", _top_below_weyl),
    _half_order("C17", "path", lambda pt: _sq(pt) + bounds.perturbation_scale(pt["n_sub"], pt["xi_r"]), "tail_sum", 1),
    _half_order("C18", "xi", lambda pt: bounds.alignment_drop_scale(pt["n"], pt["n_sub"], pt["xi_r"]), "drop", 1,
                y_of=_drop, set_y=_set_drop),
    _half_order("C15.2", "nsub", lambda pt: pt["n_sub"], "E_fro", 2.5, limit="x->inf"),
    _half_order("C25", "path", _sq, "eig2", 1, y_of=lambda pt: max(pt["eig2"]),
                set_y=lambda pt, v: pt.__setitem__("eig2", [float(v)] * len(pt["eig2"]))),
    _half_order("C26.1", "xi", lambda pt: bounds.within_block_change_scale(pt["n"], pt["n_sub"], pt["delta_r"], pt["xi_r"]),
                "within_max", 1),
    _half_order("C26.2", "nsub", lambda pt: pt["n_sub"], "within_max", 2.0, limit="x->inf"),
    _set("C27", "one (graph, beta) point's bias^2 1e-6 above the App. B.2 bound", _bias_above),
    _past_bound("C22", "perron_min", lambda pt: bounds.perron_entry_bounds(min(pt["sizes"]), max(pt["sizes"]), pt["delta_r"])[0],
                factor=1 - 1e-6),
    _past_bound("C23", "perron_max", lambda pt: bounds.perron_entry_bounds(min(pt["sizes"]), max(pt["sizes"]), pt["delta_r"])[1]),
    _past_bound("C24", "perron_max", lambda pt: pt["perron_min"][0]
                * bounds.perron_entry_bounds(min(pt["sizes"]), max(pt["sizes"]), pt["delta_r"])[2]),
    _set("C19", "the loss at f_min 1e-6 above the optimum", _loss_above_optimum),
    _set("C20", "a perturbation that lowers the loss", _loss_lowered),
]


@pytest.mark.parametrize("preset", ["smoke", pytest.param("cpu", marks=pytest.mark.slow)])
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: f"{m.key}: {m.what}")
def test_mutation_fails_the_row(mutation, preset, monkeypatch):
    rows, data = mutations.saved_run(MODULE, preset)
    assert mutations.by_key(rows)[mutation.key].verdict == "PASS", "the unmutated row must PASS"
    mutated = mutations.by_key(mutation.apply(data, monkeypatch))
    r = mutated[mutation.key]
    assert r.verdict == mutation.expect, (r.measured, r.bound, r.note)


@pytest.mark.parametrize("preset", ["smoke", pytest.param("cpu", marks=pytest.mark.slow)])
def test_unmutated_judge_reproduces_the_run(preset):
    """Re-judging the saved data (what every mutation does) gives the run's own rows."""
    rows, data = mutations.saved_run(MODULE, preset)
    assert [r.as_dict() for r in _rows(data)] == [r.as_dict() for r in rows]
