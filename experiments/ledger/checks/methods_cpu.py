"""CPU-scale evidence for the paper's Table 1 claims at sym 80% and asym 40% noise (claims C100-C108).

The paper (Table 1, Sec. 5): contrastive pre-training improves every robust method at CIFAR-10
sym 80% (Crust 33.8 -> 77.9, Mixup 40.7 -> 74.8, ELR 69.5 -> 77.7), and CL+E2E alone (72.0)
beats every non-CL method; at asym 40% CL init also improves every method (Crust 76.7 -> 85.9,
Mixup 86.3 -> 87.5, ELR 86.6 -> 89.7; CL+E2E's 83.5 does not beat ELR there, so C104 has no asym
twin). This check judges the *direction* of those statements on the committed
evidence file ``experiments/ledger/evidence/table1_cpu.json``, written by

    clspec cifar reproduce --table 1 --preset cpu --data ../shared/data/cifar10-jpg.tar.gz \\
        --evidence experiments/ledger/evidence/table1_cpu.json

ResNet-32 with the ``cpu`` SimCLR checkpoint (16 epochs on 8,000 images, the preset as re-sized by
``experiments/cifar/sizing.py`` on 2026-12-01; the grid before it used the old 4,000 x 12 checkpoint) or a
random init, fine-tuned end to end for 8 epochs on the ``cpu`` training preset's 4,000 JPEG CIFAR-10 images
(a class-balanced draw inside the 8,000; the ``cpu`` grid of ``experiments/cifar/reproduce.py``; an earlier
grid used 1,000 images x 4 epochs) at sym 0.8 (Crust's
convention: every flipped label goes to another class) and asym 0.4, each cell over 3 seeds (``--seeds 3``; the preset runs 2, see below). These numbers are
**CPU-scale on JPEG CIFAR-10** and not comparable one-to-one with the paper's (120 epochs on 50,000
images after 1000 SimCLR epochs); only the signs of the differences are judged.

The rule, fixed before the runs: a row compares the mean over seeds of the **last-epoch** test
accuracy of the two cells (difference >= 0 passes); the best epoch (selected on the test set, as
the paper's tables are) is reported beside it in the note, not judged. Without the evidence file,
or with a cell missing from it, the row is INFO with the reason.

Added after the first evidence came in (every difference was within about one standard error):
a sign is a verdict only when it is resolved. Where both cells have n >= 2 and |difference| is
below ``RESOLVE`` = 2 standard errors of the difference, the row is INFO "unresolved" with its
numbers, not PASS; a row can only become stricter by this, never pass where it failed. Likewise
(added 2026-12-01 17:35 UTC, before the asym runs of the 8-epoch grid existed) a cell with one
seed gives no verdict: with an interrupted grid, one seed is all some cells have.

The asym rows C105-C108 were added, with the same rule, while the 8-epoch grid was running and
before any of its results existed (2026-12-01 16:30 UTC).

A third seed (``--seeds 3``) was decided on 2026-12-01 at 22:49 UTC, after the 2-seed grid with the re-sized
encoder had been collected and read (C102, C107, C108 resolved and PASS, the other six unresolved, none
FAIL) and before any seed-2 run started: with n = 2 a cell's standard deviation, and so the resolution
rule's standard error, rests on one degree of freedom. The rule is unchanged; the evidence file holds
whatever the three seeds give, and the 2-seed numbers are kept in ``experiments/ledger/evidence/README.md``.

Claim IDs C100-C109 (C80-C89: checks/spectrum_real).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from experiments.ledger.claims import GE, INFO, Claim, by_id, no_progress, row

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "table1_cpu.json"
SCALE = "CPU-scale, JPEG CIFAR-10 (not comparable one-to-one with the paper)"

CLAIMS = (
    Claim("C100", "Table 1 / Fig. 2c", "CL init beats random init for end-to-end training with cross-entropy (CL+E2E vs E2E) at sym 80%."),
    Claim("C101", "Table 1 / Sec. 5", "CL init beats random init for ELR at sym 80% (paper: 69.5 -> 77.7 on CIFAR-10)."),
    Claim("C102", "Table 1 / Sec. 5", "CL init beats random init for Mixup at sym 80% (paper: 40.7 -> 74.8 on CIFAR-10)."),
    Claim("C103", "Table 1 / Sec. 5", "CL init beats random init for Crust at sym 80% (paper: 33.8 -> 77.9 on CIFAR-10)."),
    Claim("C104", "Table 1 / Sec. 5", "At sym 80%, CL+E2E alone beats every non-CL robust method (ELR, Mixup, Crust)."),
    Claim("C105", "Table 1", "CL init beats random init for end-to-end training with cross-entropy (CL+E2E vs E2E) at asym 40%."),
    Claim("C106", "Table 1", "CL init beats random init for ELR at asym 40% (paper: 86.6 -> 89.7 on CIFAR-10)."),
    Claim("C107", "Table 1", "CL init beats random init for Mixup at asym 40% (paper: 86.3 -> 87.5 on CIFAR-10)."),
    Claim("C108", "Table 1", "CL init beats random init for Crust at asym 40% (paper: 76.7 -> 85.9 on CIFAR-10)."),
)
C = by_id(CLAIMS)

SYM, ASYM = "sym:0.8", "asym:0.4"
PAIRS = {SYM: (("C100", "ce"), ("C101", "elr"), ("C102", "mixup"), ("C103", "crust")),
         ASYM: (("C105", "ce"), ("C106", "elr"), ("C107", "mixup"), ("C108", "crust"))}
RESOLVE = 2.0  # standard errors of the difference below which a sign is not judged


def load(path: Path | str = EVIDENCE) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def cell_values(evidence: dict, method: str, init: str, noise: str, key: str = "last_test_acc") -> list[float]:
    return [r[key] for r in evidence["runs"] if r["method"] == method and r["init"] == init and r["noise"] == noise]


def _stats(v: list[float]) -> tuple[float, float, int]:
    a = np.asarray(v, float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan, int(a.size)


def _pm(v: list[float]) -> str:
    m, s, n = _stats(v)
    return f"{m:.1f} ± {s:.1f} (n={n})" if n > 1 else f"{m:.1f} (n={n})"


def _setting(evidence: dict, noise: str) -> str:
    s = evidence["settings"]
    pre = (f" (CL init: SimCLR, {evidence['pretrain_epochs']} epochs on {evidence['pretrain_images']} images)"
           if evidence.get("pretrain_images") else "")
    return (f"{SCALE}; {s['arch']}, {evidence.get('train_images')} images, {s['epochs']} epochs{pre}, {noise}, "
            f"last epoch")


def compare(claim: Claim, evidence: dict, noise: str, better: tuple[str, str], worse: list[tuple[str, str]]):
    """Row: mean last-epoch accuracy of ``better`` minus the best mean of the cells ``worse`` (>= 0),
    all under ``noise``."""
    hi = cell_values(evidence, *better, noise)
    los = {w: cell_values(evidence, *w, noise) for w in worse}
    missing = [f"{m}/{i}" for (m, i), v in [(better, hi), *los.items()] if not v]
    if missing:
        return row(claim, math.nan, None, GE, verdict=INFO,
                   note=f"skipped: the evidence has no finished runs of {', '.join(missing)}")
    (wm, wi), lo = max(los.items(), key=lambda kv: np.mean(kv[1]))
    diff = _stats(hi)[0] - _stats(lo)[0]
    best_diff = np.mean(cell_values(evidence, *better, noise, key="best_test_acc")) - np.mean(
        cell_values(evidence, wm, wi, noise, key="best_test_acc"))
    (_, s_hi, n_hi), (_, s_lo, n_lo) = _stats(hi), _stats(lo)
    se = math.sqrt(s_hi**2 / n_hi + s_lo**2 / n_lo) if min(n_hi, n_lo) > 1 else math.nan
    resolved = "n/a (n=1)" if math.isnan(se) else f"{se:.1f} (difference / se = {diff / se:+.1f})" if se > 0 else "0"
    one_seed = math.isnan(se)
    unresolved = one_seed or abs(diff) < RESOLVE * se
    why = "unresolved: a cell has one seed only; " if one_seed else "unresolved: |difference| < 2 standard errors; "
    return row(claim, diff, 0.0, GE, setting=_setting(evidence, noise), verdict=INFO if unresolved else None,
               note=(why if unresolved else "")
                    + f"test acc % (last epoch): {better[0]}/{better[1]} {_pm(hi)} vs {wm}/{wi} {_pm(lo)}; "
                    f"standard error of the difference {resolved}; "
                    f"best epoch (selected on test): difference {best_diff:+.1f}")


def judge(data: dict) -> list:
    """The rows from a run's ``data["evidence"]`` (the evidence file's content, or None without one)."""
    evidence = data.get("evidence")
    if evidence is None:
        return [row(c, math.nan, None, GE, verdict=INFO,
                    note=f"skipped: no evidence file {EVIDENCE.name} (run the command in the module docstring)")
                for c in CLAIMS]
    rows = [compare(C[cid], evidence, SYM, (m, "pretrained"), [(m, "random")]) for cid, m in PAIRS[SYM]]
    rows.append(compare(C["C104"], evidence, SYM, ("ce", "pretrained"),
                        [("elr", "random"), ("mixup", "random"), ("crust", "random")]))
    rows += [compare(C[cid], evidence, ASYM, (m, "pretrained"), [(m, "random")]) for cid, m in PAIRS[ASYM]]
    return rows


def run(preset: str, *, seed: int = 0, progress=no_progress):
    """Reads the committed evidence (the same at every preset: the runs take an hour of CPU)."""
    data = {"evidence": load()}
    return judge(data), data


def plot(data: dict, outdir: Path) -> list[Path]:
    return []
