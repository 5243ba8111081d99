"""Claims, the rows that evaluate them, and the verdict rules.

A claim is one statement of the paper with an ID (``C1``, ``C2``, ...). A check
evaluates it and returns one or more :class:`Row` objects: the measured number,
the bound it is held against, their ratio and a verdict. A claim that does not
hold is a ``FAIL`` row with its numbers, never an exception.

ID ranges, so that independent check modules never collide:
``C1-C29`` Theorem 4.3 and its lemmas (``checks/thm43.py``),
``C30-C49`` the linear head under label noise (``checks/head.py``),
``C50-C69`` trained contrastive encoders (``checks/encoders.py``),
``C70-C79`` the paper's headline numbers recomputed from its tables (``checks/tables.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

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

    @property
    def ratio(self) -> float | None:
        """measured / bound: how tight a bound is (for <=, 1 means tight, below 1 slack)."""
        if self.bound is None or self.bound == 0 or not math.isfinite(self.bound):
            return None
        return self.measured / self.bound

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ratio"] = self.ratio
        return out


def judge(measured: float, bound: float, relation: str, tol: float = 0.0) -> str:
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
) -> Row:
    """Build a row, judging it unless an explicit ``verdict`` (e.g. ``INFO``) is given."""
    if verdict is None:
        if bound is None:
            raise ValueError(f"claim {claim.id}: a row without a bound needs an explicit verdict")
        verdict = judge(measured, bound, relation, tol)
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
