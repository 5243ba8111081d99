"""The check protocol: claims, the rows that evaluate them, and the one verdict rule.

A claim is one statement of the paper with an ID (``C1``, ``C2``, ...). A check
evaluates it and returns one or more :class:`Row` objects: the measured number,
the bound it is held against, their ratio and a verdict. A claim that does not
hold is a ``FAIL`` row with its numbers, never an exception.

Every PASS or FAIL comes from :func:`verdict_of` (``measured <relation> bound`` within a
round-off ``tol``): :func:`row` for an explicit bound (with ``require=`` for a condition the
claim needs besides it), :func:`explicit_row` for an explicit bound over a sweep,
:func:`order_row` for an O() claim (the bound is the claimed order, held against the ends of
the fitted slope's interval), :func:`leading_term_row` for a leading term plus an O()
remainder. A verdict set by hand is only ``INFO`` (no checkable statement, or no evidence)
or ``ERROR`` (:func:`error_row`). A check module registers its claims as ``CLAIMS`` (a tuple)
and ``C = by_id(CLAIMS)``; :func:`run_sections` and :func:`judge_sections` run and re-judge a
module built of sections; :func:`no_progress` is the default ``progress``.

ID ranges, so that independent check modules never collide:
``C1-C29`` Theorem 4.3 and its lemmas (``checks/thm43.py``),
``C30-C49`` the linear head under label noise (``checks/head.py``, ``checks/flips.py``, ``checks/contrast.py``),
``C50-C69`` trained contrastive encoders (``checks/encoders.py``; C65-C68 inside Assumption 4.1: ``checks/encoders_a41.py``),
``C70-C79`` the paper's headline numbers recomputed from its tables (``checks/tables.py``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

# The presets every check module evaluates its claims at (``run(preset, ...)``).
PRESETS = ("smoke", "cpu", "large")

# Verdicts.
PASS = "PASS"  # the measured value satisfies the bound
FAIL = "FAIL"  # it does not: a finding, reported with the numbers
INFO = "INFO"  # a measurement the paper makes no checkable statement about (fitted constants, InfoNCE)
ERROR = "ERROR"  # the check itself crashed

# Relations between a measured value and its bound.
LE = "<="  # measured <= bound
GE = ">="  # measured >= bound
NEAR = "~="  # |measured - bound| <= tol


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement of the paper: its ID, where it is stated, and what it says."""

    id: str
    source: str
    statement: str


@dataclasses.dataclass(frozen=True)
class Row:
    """One evaluated claim: what was measured, against which bound, and the verdict.

    ``setting`` says at which parameters (the worst point of a sweep, usually);
    ``note`` is a short plain-language comment for the ledger.
    """

    claim: str
    source: str
    statement: str
    measured: float
    bound: float | None
    relation: str
    verdict: str
    setting: str = ""
    note: str = ""
    tol: float = 0.0
    interval: tuple[float, float] | None = None  # an order test's bootstrap interval of the slope

    @property
    def ratio(self) -> float | None:
        """measured / bound: how tight a bound is (for <=, 1 means tight, below 1 slack); none for an
        order test, whose slope / claimed order says nothing about tightness."""
        if self.bound is None or self.bound == 0 or not math.isfinite(self.bound) or self.relation in ORDER_RELATIONS:
            return None
        return self.measured / self.bound

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ratio"] = self.ratio
        return out


def recorded_evidence(preset: str, evidence, default, claims, how: str):
    """``(path, None)`` for a check that reads a recorded run (the preset and seed do not change it), or
    ``(path, rows)`` with an INFO "skipped" row per claim when the file is missing; ``how`` says how to make it."""
    from pathlib import Path

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    path = Path(evidence) if evidence is not None else Path(default)
    if path.exists():
        return path, None
    note = f"skipped: evidence file {path} is missing; {how}"
    return path, [row(c, 0.0, None, "", verdict=INFO, setting="CPU-scale", note=note) for c in claims]


def by_id(claims) -> dict[str, Claim]:
    """A check module's claims by ID (``C = by_id(CLAIMS)``)."""
    return {c.id: c for c in claims}


def no_progress(items, desc: str = ""):
    """The ``progress`` of a check run outside `clspec verify`: the items, unchanged."""
    return items


def verdict_of(measured: float, bound: float, relation: str, tol: float = 0.0) -> str:
    """The verdict of ``measured <relation> bound`` with an absolute slack ``tol``.

    ``tol`` is for floating-point round-off only (see ``theory.tolerances``); it is
    never widened to make a row pass.
    """
    measured, bound = float(measured), float(bound)
    if not (math.isfinite(measured) and math.isfinite(bound)):
        return FAIL
    if relation == LE:
        ok = measured <= bound + tol
    elif relation == GE:
        ok = measured >= bound - tol
    elif relation == NEAR:
        ok = abs(measured - bound) <= tol
    else:
        raise ValueError(f"relation must be one of {LE!r}, {GE!r}, {NEAR!r}, got {relation!r}")
    return PASS if ok else FAIL


def row(
    claim: Claim,
    measured: float,
    bound: float | None,
    relation: str,
    *,
    tol: float = 0.0,
    setting: str = "",
    note: str = "",
    verdict: str | None = None,
    require: bool = True,
    interval: tuple[float, float] | None = None,
) -> Row:
    """Build a row judged by :func:`verdict_of`, unless an explicit ``verdict`` (``INFO``) is given.

    ``require``: a condition the claim needs besides the bound (e.g. a target above the starting
    point, so that meeting the bound shows something); when it is False the row FAILs.
    ``interval``: the measured value's interval, printed beside it (order tests).
    """
    if verdict is None:
        if bound is None:
            raise ValueError(f"claim {claim.id}: a row without a bound needs an explicit verdict")
        verdict = verdict_of(measured, bound, relation, tol) if require else FAIL
    return Row(
        claim=claim.id,
        source=claim.source,
        statement=claim.statement,
        measured=float(measured),
        bound=None if bound is None else float(bound),
        relation=relation,
        verdict=verdict,
        setting=setting,
        note=note,
        tol=float(tol),
        interval=None if interval is None else (float(interval[0]), float(interval[1])),
    )


def error_row(claim: Claim, err: BaseException) -> Row:
    return Row(
        claim=claim.id,
        source=claim.source,
        statement=claim.statement,
        measured=float("nan"),
        bound=None,
        relation="",
        verdict=ERROR,
        note=f"{type(err).__name__}: {err}".splitlines()[0][:200],
    )


# ----------------------------------------------------------------------------
# O(.) claims: the order test (theory.bounds.loglog_order)
# ----------------------------------------------------------------------------

SMALL = "x->0"  # y = O(x^q) as the small parameter x -> 0 (delta, xi, sqrt(delta) + xi, ...)
LARGE = "x->inf"  # y = O(x^q) as x -> infinity (K-bar)


def order_relation(limit: str) -> str:
    """The Rel. column of an order test: the claimed order q (the Bound column) against the slope's
    interval [lo, hi] (printed with the slope in the Measured column), within ORDER_SLACK."""
    from theory import tolerances

    return f"q <= hi + {tolerances.ORDER_SLACK:g}" if limit == SMALL else f"q >= lo - {tolerances.ORDER_SLACK:g}"


ORDER_RELATIONS = frozenset(order_relation(limit) for limit in (SMALL, LARGE))


def _group_ids(groups, n: int):
    import numpy as np

    if groups is None:
        return None, 1
    names = list(dict.fromkeys(groups))
    if len(groups) != n:
        raise ValueError(f"groups must label each of the {n} sweep points, got {len(groups)}")
    return np.asarray([names.index(g) for g in groups]), len(names)


def fit_order(x, y, *, groups=None, seed: int = 0):
    """The order fit of ``y`` against ``x`` (``theory.bounds.loglog_order``) at the project's
    level and resample count, with a key made from ``seed``; returns floats."""
    import jax

    from theory import bounds, tolerances

    ids, n_groups = _group_ids(groups, len(x))
    fit = bounds.loglog_order(x, y, key=jax.random.PRNGKey(seed), groups=ids, n_groups=n_groups,
                              n_boot=tolerances.ORDER_BOOT, level=tolerances.ORDER_LEVEL)
    return bounds.OrderFit(*(float(v) for v in fit))


def order_row(
    claim: Claim,
    x,
    y,
    order: float,
    *,
    limit: str = SMALL,
    groups=None,
    label: str = "x",
    setting: str = "",
    note: str = "",
    seed: int = 0,
) -> Row:
    """A big-O claim ``y = O(x^order)`` judged by the order test over a sweep.

    ``limit=SMALL`` (x -> 0): FAIL when ``order`` lies above the bootstrap interval of the
    fitted log-log slope by more than ``theory.tolerances.ORDER_SLACK`` (y falls more slowly
    than claimed). ``limit=LARGE`` (x -> inf): FAIL when ``order`` lies that far below it (y
    grows faster than claimed). The sweep must span ``theory.tolerances.ORDER_MIN_DECADES``
    decades of ``x``; a shorter one (the two-point ``large`` preset) gives an INFO row, never a
    PASS, since it cannot fail the test. A ``y`` that is <= 0 at every point is trivially
    O(anything): the row holds max y against 0 (``<=``); a ``y > 0`` on too few decades to fit FAILs
    (no order can be shown). The row: measured = the fitted slope with its interval [lo, hi], bound =
    the claimed order q, relation ``q <= hi + slack`` (x -> 0) or ``q >= lo - slack`` (x -> inf), the
    verdict :func:`verdict_of` of exactly that.
    """
    import numpy as np

    from theory import tolerances

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pos = x[x > 0]
    span = float(np.log10(pos.max() / pos.min())) if pos.size else 0.0
    if limit not in (SMALL, LARGE):
        raise ValueError(f"limit must be {SMALL!r} or {LARGE!r}, got {limit!r}")
    rel = order_relation(limit)
    if span < tolerances.ORDER_MIN_DECADES - 1e-9:  # no power: never a PASS
        return row(claim, float("nan"), order, rel, verdict=INFO, setting=setting,
                   note=f"no order test at this preset: the sweep of {label} spans {span:.2f} decades "
                        f"(< {tolerances.ORDER_MIN_DECADES:g}) over {x.size} points" + (f"; {note}" if note else ""))
    where = f"as {label} -> {'0' if limit == SMALL else 'infinity'}"
    if not np.any((y > 0) & (x > 0)):
        return row(claim, float(np.max(y[x > 0])), 0.0, LE, setting=setting,
                   note=f"the quantity is <= 0 at all {y.size} points (trivially O({label}^{order:g})); {note}".rstrip("; "))
    fit = fit_order(x, y, groups=groups, seed=seed)
    enough = fit.decades >= tolerances.ORDER_MIN_DECADES - 1e-9 and np.isfinite(fit.lo)
    slack = tolerances.ORDER_SLACK
    end = fit.hi if limit == SMALL else fit.lo  # the end of the interval the claimed order is held against
    ok = enough and verdict_of(end, order, GE if limit == SMALL else LE, slack) == PASS
    lvl = f"{100 * tolerances.ORDER_LEVEL:g}%"
    text = (f"order test {where}: log-log slope {fit.slope:.3f}, {lvl} bootstrap interval [{fit.lo:.3f}, {fit.hi:.3f}] "
            f"over {int(fit.n_used)} points spanning {fit.decades:.2f} decades of {label}; claimed order {order:g} "
            + (f"lies within it or {'above' if limit == LARGE else 'below'} it, or within the slack {slack:g}" if ok else ("is not testable (too few decades with y > 0)" if not enough else
               ("lies above it" if limit == SMALL else "lies below it"))))
    return row(claim, fit.slope, order, rel, verdict=PASS if ok else FAIL, setting=setting,
               note=text + (f"; {note}" if note else ""), interval=(fit.lo, fit.hi))


def leading_term_row(
    claim: Claim,
    x,
    measured,
    leading,
    order: float,
    *,
    relation: str = LE,
    groups=None,
    label: str = "x",
    tol=0.0,
    setting_of=None,
    note: str = "",
    seed: int = 0,
) -> Row:
    """A bound ``measured <= leading + O(x^order)`` (or ``>= leading - O(x^order)``) over a sweep.

    The printed leading term carries the statement's explicit constant, and as ``x -> 0`` it
    must dominate its remainder. Rule, fixed before any run:

    1. in the lowest decade of the sweep (``x <= 10 min x``) the leading term must hold alone
       (``excess = measured - leading <= tol``, with the sign flipped for ``>=``);
    2. where it is exceeded elsewhere, the excess must pass the order test (:func:`order_row`)
       at ``order`` when those points span enough decades to fit.

    Setting the leading term to zero, or adding an excess half an order lower than
    ``order``, FAILs rule 1. The row shows the point of largest measured / leading (the
    tightest), so its Bound column is the explicit leading term there.
    """
    import numpy as np

    from theory import tolerances

    x = np.asarray(x, dtype=float)
    meas, lead = np.asarray(measured, dtype=float), np.asarray(leading, dtype=float)
    tol = np.broadcast_to(np.asarray(tol, dtype=float), x.shape)
    if relation not in (LE, GE):
        raise ValueError(f"relation must be {LE!r} or {GE!r}, got {relation!r}")
    excess = meas - lead if relation == LE else lead - meas
    over = excess > tol
    lowest = x <= 10.0 * x[x > 0].min()
    with np.errstate(divide="ignore", invalid="ignore"):
        tight = np.where(lead > 0, meas / lead, -np.inf if relation == LE else np.inf)
    i = int(np.argmax(tight) if relation == LE else np.argmin(tight))  # among points with a positive leading term
    setting = setting_of(i) if setting_of else ""
    head = f"leading term exceeded at {int(over.sum())}/{x.size} points, {int((over & lowest).sum())} in the lowest decade of {label}"
    if np.any(over & lowest):
        return row(claim, meas[i], lead[i], relation, verdict=FAIL, setting=setting,
                   note=f"{head}: the explicit leading term does not dominate its remainder as {label} -> 0" +
                        (f"; {note}" if note else ""))
    verdict, extra = PASS, ""
    if np.any(over):
        pts = x[over]
        if pts.size >= 3 and np.log10(pts.max() / pts.min()) >= tolerances.ORDER_MIN_DECADES:
            sub = order_row(claim, x[over], excess[over], order, groups=None if groups is None else
                            [g for g, o in zip(groups, over) if o], label=label, seed=seed)
            verdict, extra = sub.verdict, "; the excess: " + sub.note
        else:
            extra = f"; the excess over it lies only above the lowest decade (too few decades to fit an order)"
    return row(claim, meas[i], lead[i], relation, verdict=verdict, setting=setting,
               note=head + extra + (f"; {note}" if note else ""))


def fmt(**kw) -> str:
    """A row's setting: ``k=v`` pairs, floats to 3 significant digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())


def explicit_row(claim: Claim, points, relation: str, per_point, *, tol_of, setting_of, shown=lambda pt: True,
                 note: str = "") -> Row:
    """An explicit bound judged at every sweep point; one row for the sweep.

    ``per_point(pt) -> (measured, bound, extra)``; the row is the first failing point if there
    is one (so a violation anywhere FAILs the row), else the tightest point (the smallest
    slack) among those with ``shown(pt)``; the note counts the points within the bound.
    """
    cands = []
    for pt in points:
        measured, bound, extra = per_point(pt)
        cands.append((pt, row(claim, measured, bound, relation, tol=tol_of(measured, bound), setting=setting_of(pt, extra))))
    failing = [r for _, r in cands if r.verdict != PASS]
    pool = [r for pt, r in cands if shown(pt)] or [r for _, r in cands]
    slack = lambda r: (r.measured - r.bound) if relation == LE else (r.bound - r.measured)  # noqa: E731
    pick = failing[0] if failing else max(pool, key=slack)
    text = f"{len(cands) - len(failing)}/{len(cands)} points within the bound"
    return dataclasses.replace(pick, note=f"{text}; {note}" if note else text)


def construction_note(ratios, relation: str = LE, *, what: str = "ratio", digits: int = 3) -> str:
    """How tight a bound is beyond random graphs: ``ratios`` maps a construction (structured or
    adversarial W, e.g. ``theory.tightness``) to its ratios over a sweep; the note gives each one's
    worst (largest for ``<=``, smallest for ``>=``) and names the tightest. Non-finite ratios are skipped."""
    import numpy as np

    pick = max if relation == LE else min
    per = {k: pick(v) for k, v in ((k, [r for r in rs if np.isfinite(r)]) for k, rs in ratios.items()) if v}
    if not per:
        return ""
    return (f"{what} on constructions: " + ", ".join(f"{k} {v:.{digits}g}" for k, v in per.items())
            + f" (tightest: {pick(per, key=per.get)})")


# ----------------------------------------------------------------------------
# Check modules built of sections (checks/head.py, flips.py, contrast.py)
# ----------------------------------------------------------------------------


def run_sections(name, presets, sections, claims, preset, seed, progress):
    """Run a check module built of ``sections``, ``(measure(cfg, seed) -> data, judge(data, cfg) -> rows,
    claim IDs)`` triples, at ``preset``: ``(rows, data)``. A crashed section gives ERROR rows for its
    claims, the others still run; ``progress`` wraps the sections (the progress protocol)."""
    if preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    cfg = presets[preset]
    rows, data = [], {"config": dataclasses.asdict(cfg), "timing_s": {}}
    for measure, judge_fn, ids in progress(sections, desc=name):
        t0 = time.perf_counter()
        try:
            d = measure(cfg, seed)
            data.update(d)
            rows += judge_fn(d, cfg)
        except Exception as err:  # a crashed check is an ERROR row, not a crash of verify
            rows += [error_row(claims[i], err) for i in ids]
        data["timing_s"][measure.__name__[9:]] = round(time.perf_counter() - t0, 3)
    return rows, data


def judge_sections(presets, sections, data: dict) -> list:
    """Re-judge saved measurements (``data`` of a run): the rows, without recomputing."""
    cfg = dataclasses.replace(next(iter(presets.values())), **{k: tuple(v) if isinstance(v, list) else v
                                                              for k, v in data["config"].items()})
    return [r for _, judge_fn, _ in sections for r in judge_fn(data, cfg)]
