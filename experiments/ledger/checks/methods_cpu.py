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

The quantity, fixed before the runs: a row compares the mean over seeds of the **last-epoch** test
accuracy of the two cells; the best epoch (selected on the test set, as the paper's tables are) is
reported beside it in the note, not judged. Without the evidence file, or with a cell missing from
it, the row is INFO with the reason; a cell with one seed gives no verdict either (INFO).

**The test (2026-12-03, issue 21 item 2; it replaces the 2-standard-error rule).** Each row is
Welch's two-sample t-test of the difference of the two cells' means, with the Welch-Satterthwaite
degrees of freedom and its t quantile (``experiments.common.seedstats``), two-sided; the nine rows
C100-C108 are one family, Holm's step-down adjustment is applied across all nine (a row without a
test enters with p = 1), and a row is *resolved* when its Holm-adjusted p is <= ``ALPHA`` = 0.05
(the family-wise error over the nine rows is then at most 5%). A resolved row is PASS when the
difference is > 0 (the claim's direction) and FAIL when it is < 0 (a resolved reversal), both by
``claims.verdict_of(difference, 0, >=)``; an unresolved row is INFO "unresolved". Each row prints
the difference, its standard error, df, t, the raw and the Holm-adjusted p and the (unadjusted) 95%
Welch confidence interval of the difference. C104 (CL+E2E beats *every* non-CL method) is tested
against each of the three non-CL cells: where it is ahead of all three, its p is the largest of the
three (an intersection-union test, valid without a correction for the three) and the row shows the
comparison that gives it; otherwise its p is 3 x the smallest p among the cells it is not ahead of
(Bonferroni over the three) and the row shows that comparison, so it can FAIL.

The rule before it (2026-12-01: a sign was judged where |difference| >= 2 Welch standard errors, a
normal quantile at n = 3 per cell, about 2.3 Welch df, and no correction for the nine rows) made
C101 (ELR sym, +3.6 at 2.2 SE, Welch p ~ 0.14), C102 (Mixup sym) and C107 (Mixup asym) PASS on the
3-seed evidence; under this test none of the nine is resolved.

**Stage 2.** The 3-seed evidence (``table1_cpu.json``, made with a pre-trained checkpoint that no longer
exists) is the pilot: ``experiments/ledger/table1_power.py`` sizes, from its per-cell standard
deviations, a second grid on the re-made checkpoint with fresh seeds (``table1_cpu_stage2.json``;
the design and its rule are in that module's docstring). When that file exists, the nine rows are
judged on it alone (the pilot's runs are not pooled with it, and a row whose cells it lacks is INFO
"not in stage 2"); the pilot is then only reported.

**Looks at stage 2** (rule written on 2026-12-03 at 17:45 UTC, when 1 of the 60 stage-2 runs had
finished (Mixup, random init, sym 0.8, seed 3: the last line of its log, 11.5% test accuracy, was seen
while watching the job's progress) and before any stage-2 comparison was computed or collected).
Stage 2 was sized at 3 hours by the pilot's 2.9 minutes a run; this session's machine takes longer a
run, and the job shares the machine with other work, so its evidence may be collected before its 15
seeds have finished; what ends a session's share of the runs is the session's clock, never the
results. At most ``STAGE2_LOOKS`` = 2 looks are planned: an interim one at the end of the session that
started the runs, and the final one when all 15 seeds have finished. Each look is judged at
family-wise level ``ALPHA / STAGE2_LOOKS`` = 0.025 (Bonferroni over the two looks, Holm over the nine
rows within a look), so that the chance of any false verdict over both looks stays at most 0.05. A
look keeps only whole seed blocks (a seed whose runs of every cell of the file have finished;
:func:`whole_seed_blocks`), so every cell has the same n, and the row says which look it is and its n
against the planned 15.

History of the evidence. The asym rows C105-C108 were added while the 8-epoch grid was running and
before any of its results existed (2026-12-01 16:30 UTC). A third seed (``--seeds 3``) was decided on
2026-12-01 at 22:49 UTC, after the 2-seed grid with the re-sized encoder had been collected and read and
before any seed-2 run started; the 2-seed numbers are kept in ``experiments/ledger/evidence/README.md``.

Claim IDs C100-C109 (C80-C89: checks/spectrum_real).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from experiments.common.seedstats import Welch, holm, welch
from experiments.ledger.claims import GE, INFO, LE, PASS, Claim, by_id, no_progress, row, verdict_of

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "table1_cpu.json"
STAGE2 = EVIDENCE.with_name("table1_cpu_stage2.json")
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
NON_CL = ("elr", "mixup", "crust")  # C104's comparison cells, from random init
ALPHA = 0.05  # two-sided, family-wise over the nine rows (Holm)
STAGE2_LOOKS = 2  # interim + final (module docstring): each look at ALPHA / STAGE2_LOOKS
STAGE2_SEEDS = 15  # the planned seeds per cell (experiments/ledger/table1_power.py)
LEVEL = 0.95  # the confidence interval printed with each row (not adjusted)


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
    sha = checkpoints(evidence)
    return (f"{SCALE}; {s['arch']}, {evidence.get('train_images')} images, {s['epochs']} epochs{pre}, {noise}, "
            f"last epoch" + (f", checkpoint sha256 {', '.join(h[:12] for h in sha)}" if sha else ""))


def checkpoints(evidence: dict) -> list[str]:
    """The sha256 of every pre-training checkpoint file the evidence's CL-init runs started from (recorded
    per run since 2026-12-03; the pilot has none)."""
    return sorted({r["init_sha256"] for r in evidence["runs"] if r.get("init_sha256")})


def comparisons(evidence: dict) -> list[dict]:
    """The nine rows' tests, in claim order: per row ``claim``, ``noise``, ``better`` (a cell: method,
    init), ``worse`` (the cell the row shows), ``test`` (its :class:`Welch`, or None), ``p`` (the row's
    p-value, 1 without a test), ``tests`` (every comparison: C104 has three) and ``skip`` (why there is
    no test, or None)."""
    out = [_compare(cid, evidence, SYM, (m, "pretrained"), [(m, "random")]) for cid, m in PAIRS[SYM]]
    out.append(_compare("C104", evidence, SYM, ("ce", "pretrained"), [(m, "random") for m in NON_CL]))
    out += [_compare(cid, evidence, ASYM, (m, "pretrained"), [(m, "random")]) for cid, m in PAIRS[ASYM]]
    return out


def _compare(cid: str, evidence: dict, noise: str, better: tuple[str, str], worse: list[tuple[str, str]]) -> dict:
    """One row's test (see the module docstring; C104: intersection-union over ``worse``, or Bonferroni)."""
    hi = cell_values(evidence, *better, noise)
    los = {w: cell_values(evidence, *w, noise) for w in worse}
    base = {"claim": cid, "noise": noise, "better": better, "worse": None, "test": None, "p": 1.0, "tests": {},
            "skip": None, "diff": math.nan, "ahead_of_all": None}
    missing = [f"{m}/{i}" for (m, i), v in [(better, hi), *los.items()] if not v]
    if missing:
        return {**base, "skip": f"the evidence has no finished runs of {', '.join(missing)}"}
    if min(len(hi), *(len(v) for v in los.values())) < 2:
        w, lo = max(los.items(), key=lambda kv: np.mean(kv[1]))
        return {**base, "worse": w, "diff": float(np.mean(hi) - np.mean(lo)), "skip": "a cell has one seed only"}
    tests = {w: welch(hi, lo, level=LEVEL) for w, lo in los.items()}
    ahead = all(t.diff > 0 for t in tests.values())
    if len(tests) == 1:
        (w, t), = tests.items()
        p = t.p
    elif ahead:  # ahead of all: the least resolved of them decides
        w = max(tests, key=lambda k: tests[k].p)
        p = tests[w].p
    else:  # behind (or level with) one at least: the most resolved of those, Bonferroni over all
        behind = [k for k, t in tests.items() if t.diff <= 0]
        w = min(behind, key=lambda k: tests[k].p)
        p = min(1.0, len(tests) * tests[w].p)
    return {**base, "worse": w, "test": tests[w], "p": float(p), "tests": tests, "diff": tests[w].diff,
            "ahead_of_all": ahead}


def _welch_text(t: Welch) -> str:
    return (f"difference {t.diff:+.2f} points, {100 * LEVEL:g}% CI [{t.lo:+.2f}, {t.hi:+.2f}], SE {t.se:.2f}, "
            f"df {t.df:.1f}, t {t.t:+.2f}, p {t.p:.3g}")


def whole_seed_blocks(evidence: dict) -> tuple[dict, list[int]]:
    """``evidence`` with only the seeds whose runs of every cell (method, init, noise) in it have finished,
    and the seeds dropped (a look at stage 2 judges whole seed blocks only: module docstring)."""
    cells = {(r["method"], r["init"], r["noise"]) for r in evidence["runs"]}
    seeds = {r["seed"] for r in evidence["runs"]}
    whole = {s for s in seeds
             if all(any(r["seed"] == s and (r["method"], r["init"], r["noise"]) == c for r in evidence["runs"])
                    for c in cells)}
    return {**evidence, "runs": [r for r in evidence["runs"] if r["seed"] in whole]}, sorted(seeds - whole)


def _row(cmp: dict, p_holm: float, evidence: dict, source: str, alpha: float = ALPHA):
    claim, noise, better, worse = C[cmp["claim"]], cmp["noise"], cmp["better"], cmp["worse"]
    if cmp["skip"] and worse is None:
        return row(claim, math.nan, None, GE, verdict=INFO, note=f"skipped: {cmp['skip']} ({source})")
    hi, lo = cell_values(evidence, *better, noise), cell_values(evidence, *worse, noise)
    cells = f"test acc % (last epoch): {better[0]}/{better[1]} {_pm(hi)} vs {worse[0]}/{worse[1]} {_pm(lo)}"
    best_diff = np.mean(cell_values(evidence, *better, noise, key="best_test_acc")) - np.mean(
        cell_values(evidence, *worse, noise, key="best_test_acc"))
    tail = f"best epoch (selected on test): difference {best_diff:+.1f}; {source}"
    if cmp["skip"]:
        return row(claim, cmp["diff"], 0.0, GE, setting=_setting(evidence, noise), verdict=INFO,
                   note=f"unresolved: {cmp['skip']}; {cells}; {tail}")
    t = cmp["test"]
    resolved = verdict_of(p_holm, alpha, LE) == PASS
    head = (f"{'resolved' if resolved else 'unresolved'}: Holm-adjusted p {p_holm:.3g} "
            f"{'<=' if resolved else '>'} {alpha:g} (over the {len(CLAIMS)} rows C100-C108)")
    welch_note = f"Welch t-test: {_welch_text(t)}"
    if len(cmp["tests"]) > 1:
        each = ", ".join(f"{m}/{i} {u.diff:+.2f} (p {u.p:.3g})" for (m, i), u in cmp["tests"].items())
        rule = ("ahead of all three: the row's p is the largest (intersection-union test)" if cmp["ahead_of_all"]
                else f"not ahead of all three: the row's p is {len(cmp['tests'])} x the smallest p among those it "
                     f"is not ahead of (Bonferroni), {cmp['p']:.3g}")
        welch_note += f"; against each non-CL cell: {each}; {rule}"
    return row(claim, t.diff, 0.0, GE, setting=_setting(evidence, noise), verdict=None if resolved else INFO,
               note=f"{head}; {welch_note}; {cells}; {tail}")


def judged(data: dict) -> tuple[dict | None, str]:
    """The evidence the rows are judged on (stage 2 where it exists, else the pilot) and its name."""
    if data.get("stage2") is not None:
        return data["stage2"], f"stage 2 evidence {STAGE2.name}"
    return data.get("evidence"), f"evidence {EVIDENCE.name}"


def judge(data: dict) -> list:
    """The rows from a run's ``data["evidence"]`` (the pilot evidence file's content, or None without
    one) or, where present, ``data["stage2"]`` (judged alone)."""
    evidence, source = judged(data)
    if evidence is None:
        return [row(c, math.nan, None, GE, verdict=INFO,
                    note=f"skipped: no evidence file {EVIDENCE.name} (run the command in the module docstring)")
                for c in CLAIMS]
    if len(checkpoints(evidence)) > 1:  # one CL init per evidence set (table1_power's design rule)
        return [row(c, math.nan, None, GE, verdict=INFO, note=f"skipped: the {source}'s CL-init runs started from "
                    f"{len(checkpoints(evidence))} different checkpoints") for c in CLAIMS]
    alpha = ALPHA
    if data.get("stage2") is not None:
        evidence, dropped = whole_seed_blocks(evidence)
        n = len({r["seed"] for r in evidence["runs"]})
        look = "final look" if n >= STAGE2_SEEDS else "interim look"
        alpha = ALPHA / STAGE2_LOOKS
        source += (f", {look} at n = {n} of {STAGE2_SEEDS} seeds per cell, alpha {ALPHA:g}/{STAGE2_LOOKS}"
                   + (f"; seeds {', '.join(map(str, dropped))} left out (not every cell finished)" if dropped else ""))
    cmps = comparisons(evidence)
    if data.get("stage2") is not None:
        for c in cmps:
            if c["skip"] and c["worse"] is None:
                c["skip"] = f"not in stage 2 ({c['skip']})"
    adjusted = holm([c["p"] for c in cmps])
    return [_row(c, float(a), evidence, source, alpha) for c, a in zip(cmps, adjusted)]


def run(preset: str, *, seed: int = 0, progress=no_progress):
    """Reads the committed evidence (the same at every preset: the runs take hours of CPU)."""
    data = {"evidence": load(), "stage2": load(STAGE2)}
    data["notes"] = [f"C100-C108: Welch t-tests, Holm over the nine rows, two-sided alpha {ALPHA:g}; judged on "
                     f"{judged(data)[1]}" + (f" (the pilot {EVIDENCE.name} sized it and gives no verdict)"
                                             if data["stage2"] is not None else "")]
    return judge(data), data


def plot(data: dict, outdir: Path) -> list[Path]:
    return []
