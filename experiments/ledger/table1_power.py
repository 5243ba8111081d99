"""How many seeds the Table 1 rows (C100-C108) need, and the stage-2 grid that follows from it.

    python -m experiments.ledger.table1_power                    # prints the table, writes the JSON
    python -m experiments.ledger.table1_power --help             # every option and its default

From the pilot evidence (``experiments/ledger/evidence/table1_cpu.json``: 3 seeds per cell, the lost
checkpoint) and the test of ``experiments/ledger/checks/methods_cpu.py`` (Welch, Holm over the nine
rows, two-sided alpha = 0.05), for each row: the observed difference of the row's comparison, the two
cells' standard deviations and n, the raw and Holm-adjusted p, and the seeds per cell at which the
Welch test has power 0.8 against a true difference of the observed size, at Holm's strictest level
alpha / 9 and at alpha (``experiments.common.seedstats.seeds_needed``: the **noncentral t
approximation** with the Welch-Satterthwaite df, the pilot's standard deviations taken as the true
ones). The observed differences of a 3-seed pilot are noisy and, for the rows picked because they are
large, biased upward, so these counts are optimistic planning numbers. C104 needs all three of its
comparisons resolved (intersection-union): its count is the largest of the three.

**The design rule** (written on 2026-12-03 at 14:10 UTC, before any number of this module had been
computed and before any stage-2 run; issue 21 item 2):

1. Stage 2 is a new grid on the re-made ``cpu`` checkpoint, with fresh seeds (``--seed-start 3``:
   seeds 3, 4, ...; the pilot used 0-2, whose noisy labels and data orders it would otherwise repeat),
   judged **on its own** (``methods_cpu.STAGE2``): the pilot's runs are not pooled with it. Reasons:
   the re-made checkpoint need not be bit-identical to the lost one (a CL-init cell pooled over two
   checkpoints is a mixture, not one population), and a test on the pooled seeds, extended because the
   pilot was unresolved, would look at the same data twice; fresh data is judged once. Every stage-2
   pre-trained run records the sha256 of its checkpoint file (``init_sha256``), and a stage-2 file whose
   runs name more than one checkpoint gives no verdict.
2. The same cells as the pilot (ResNet-32, 4,000 images, 8 epochs, ``cpu`` grid), only more seeds: a
   cheaper cell (fewer images or epochs) would be another experiment, for which the pilot's standard
   deviations, and so this power table, say nothing.
3. Budget: ``--budget-min`` (180: about 3 hours on the 2 cores) / ``--minutes-per-run`` (3.0: the
   pilot's 16 seed-2 runs took 46 min, 2.9 min a run on the quiet machine at nice 5) = 60 runs.
   A row costs its (method, noise) pairs x 2 inits x n runs (cells shared by rows counted once).
4. Rows are taken in ascending order of their seeds needed at alpha / 9 (power 0.8); the chosen set is
   the longest prefix whose cells x (the largest count among them) fit the budget; rows needing more
   than the budget allows are left out (INFO "not in stage 2"). Then n, the same for every chosen cell,
   is raised to the most seeds the budget allows for those cells (the extra power offsets the optimism
   of the counts).
5. The run order of ``clspec cifar reproduce`` is seed-major, so an interrupted stage 2 has every cell
   at nearly the same n; it is resumable (a rerun skips finished runs) and is collected with
   ``--collect --evidence experiments/ledger/evidence/table1_cpu_stage2.json`` when it has finished.
6. (Added 2026-12-03 17:45 UTC, when 1 of the 60 runs had finished and no comparison had been
   computed.) The evidence may be collected before the last seed has finished, at most once before the
   final collection: the two looks are judged at alpha / 2 each, on whole seed blocks only
   (``methods_cpu`` docstring, "Looks at stage 2").
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from pathlib import Path

from experiments.common.seedstats import detectable_difference, seeds_needed, welch_power
from experiments.ledger.checks import methods_cpu

OUT = methods_cpu.EVIDENCE.with_name("table1_power_cpu.json")
STAGE2_RESULTS = "/work/runs/table1-stage2"


def _cells(cmp: dict) -> list[tuple[str, str]]:
    """The (method, noise) pairs whose both inits a row needs (C104: CL+E2E and the three non-CL methods)."""
    methods = [cmp["better"][0]] + [w[0] for w in cmp["tests"]] if cmp["tests"] else [cmp["better"][0]]
    return [(m, cmp["noise"]) for m in dict.fromkeys(methods)]


def power_rows(evidence: dict, *, alpha: float = methods_cpu.ALPHA, power: float = 0.8, n_max: int = 1000) -> list[dict]:
    """Per row of ``methods_cpu`` on ``evidence``: its numbers and the seeds per cell it needs (module docstring)."""
    from experiments.common.seedstats import holm

    cmps = methods_cpu.comparisons(evidence)
    adjusted = holm([c["p"] for c in cmps])
    m = len(cmps)
    out = []
    for c, p_holm in zip(cmps, adjusted):
        rec = {"claim": c["claim"], "noise": c["noise"], "cells": [f"{a}/{c['noise']}" for a, _ in _cells(c)],
               "p": c["p"], "p_holm": float(p_holm), "resolved": bool(p_holm <= alpha and c["test"] is not None)}
        if c["test"] is None:
            out.append({**rec, "skip": c["skip"]})
            continue
        tests = list(c["tests"].items())
        per = []
        for (wm, wi), t in tests:
            per.append({"worse": f"{wm}/{wi}", "diff": t.diff, "sd_better": t.sd_a, "sd_worse": t.sd_b,
                        "n_better": t.n_a, "n_worse": t.n_b,
                        "power_now_at_alpha_over_m": welch_power(t.diff, t.sd_a, t.sd_b, t.n_a, t.n_b, alpha=alpha / m),
                        "n_at_alpha_over_m": seeds_needed(t.diff, t.sd_a, t.sd_b, alpha=alpha / m, power=power, n_max=n_max),
                        "n_at_alpha": seeds_needed(t.diff, t.sd_a, t.sd_b, alpha=alpha, power=power, n_max=n_max)})
        need = lambda key: None if any(q[key] is None for q in per) else max(q[key] for q in per)  # noqa: E731
        shown = per[[w for w, _ in tests].index(c["worse"])]
        out.append({**rec, "worse": shown["worse"], "diff": shown["diff"], "sd_better": shown["sd_better"],
                    "sd_worse": shown["sd_worse"], "n_better": shown["n_better"], "n_worse": shown["n_worse"],
                    "n_at_alpha_over_m": need("n_at_alpha_over_m"), "n_at_alpha": need("n_at_alpha"),
                    "comparisons": per})
    return out


def design(rows: list[dict], budget_runs: int, *, min_seeds: int = 3, alpha: float = methods_cpu.ALPHA,
           power: float = 0.8) -> dict:
    """The stage-2 grid by the rule of the module docstring: chosen rows, their (method, noise) pairs and n,
    and for each chosen row the true difference its test detects with ``power`` at that n and alpha / rows
    (from the pilot's standard deviations)."""
    ranked = sorted((r for r in rows if r.get("n_at_alpha_over_m") is not None),
                    key=lambda r: (r["n_at_alpha_over_m"], r["claim"]))
    chosen, pairs, n = [], [], 0
    for k in range(1, len(ranked) + 1):
        take = ranked[:k]
        cells = list(dict.fromkeys(c for r in take for c in r["cells"]))
        need = max(min_seeds, max(r["n_at_alpha_over_m"] for r in take))
        if 2 * len(cells) * need > budget_runs:
            break
        chosen, pairs, n = take, cells, need
    if chosen:
        n = max(n, budget_runs // (2 * len(pairs)))
    detectable = {r["claim"]: max(detectable_difference(q["sd_better"], q["sd_worse"], n, alpha=alpha / len(rows),
                                                        power=power) for q in r["comparisons"])
                  for r in chosen if r.get("comparisons")}
    return {"rows": [r["claim"] for r in chosen], "cells": pairs, "seeds_per_cell": n,
            "detectable_difference_at_alpha_over_m": detectable,
            "runs": 2 * len(pairs) * n, "budget_runs": budget_runs,
            "left_out": [r["claim"] for r in rows if r["claim"] not in {c["claim"] for c in chosen}]}


def commands(plan: dict, *, seed_start: int, results: str, data: str) -> list[str]:
    """The commands that run, and then collect, the stage-2 grid of ``plan``."""
    if not plan["rows"]:
        return []
    base = (f"python -m experiments.cli cifar reproduce --table 1 --preset cpu --cells {','.join(plan['cells'])} "
            f"--seed-start {seed_start} --seeds {plan['seeds_per_cell']} --results {results} --data {data}")
    return [f"mkdir -p {results}/cifar && ln -sfn /work/runs/pretrain-cpu-keep {results}/cifar/pretrain-cpu",
            f"nice -n 5 {base} --no-progress > {results}.log 2>&1",
            f"{base} --collect --evidence {methods_cpu.STAGE2.relative_to(methods_cpu.EVIDENCE.parents[3])}"]


def table_text(rows: list[dict], alpha: float, power: float, m: int, n_max: int = 1000) -> str:
    """The power table as printed (None counts: more than ``n_max`` seeds)."""
    _n = lambda v: f">{n_max}" if v is None else str(v)  # noqa: E731
    head = (f"{'row':5s} {'comparison':34s} {'diff':>6s} {'sd CL':>6s} {'sd vs':>6s} {'n':>3s} {'p':>7s} "
            f"{'Holm p':>7s}  seeds/cell for power {power:g}: at alpha/{m} = {alpha / m:.4f} | at alpha = {alpha:g}")
    lines = [head]
    for r in rows:
        if "skip" in r:
            lines.append(f"{r['claim']:5s} skipped: {r['skip']}")
            continue
        comp = f"{r['cells'][0].split('/')[0]}/pretrained vs {r['worse']} {r['noise']}"
        lines.append(f"{r['claim']:5s} {comp:34s} {r['diff']:+6.2f} {r['sd_better']:6.2f} {r['sd_worse']:6.2f} "
                     f"{r['n_better']:3d} {r['p']:7.3g} {r['p_holm']:7.3g}  {_n(r['n_at_alpha_over_m']):>6s} | "
                     f"{_n(r['n_at_alpha']):>6s}" + ("  (resolved)" if r["resolved"] else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.ledger.table1_power",
                                 description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--evidence", default=str(methods_cpu.EVIDENCE), help="the pilot evidence file")
    ap.add_argument("--out", default=str(OUT), help="the JSON to write (the table, the design, the commands)")
    ap.add_argument("--alpha", type=float, default=methods_cpu.ALPHA, help="two-sided family-wise level")
    ap.add_argument("--power", type=float, default=0.8, help="the power the seed counts are for")
    ap.add_argument("--n-max", type=int, default=1000, help="the largest seed count searched")
    ap.add_argument("--budget-min", type=float, default=180.0, help="CPU minutes stage 2 may take")
    ap.add_argument("--minutes-per-run", type=float, default=3.0, help="minutes of one fine-tuning run")
    ap.add_argument("--seed-start", type=int, default=3, help="stage 2's first seed (the pilot used 0-2)")
    ap.add_argument("--results", default=STAGE2_RESULTS, help="stage 2's results folder (in the commands)")
    ap.add_argument("--data", default="/work/shared/data/cifar10-jpg.tar.gz", help="dataset (in the commands)")
    args = ap.parse_args(argv)
    for name, ok, what in (("--alpha", 0 < args.alpha < 1, "in (0, 1)"), ("--power", 0 < args.power < 1, "in (0, 1)"),
                           ("--n-max", args.n_max >= 2, ">= 2"), ("--budget-min", args.budget_min > 0, "> 0"),
                           ("--minutes-per-run", args.minutes_per_run > 0, "> 0"),
                           ("--seed-start", args.seed_start >= 0, ">= 0")):
        if not ok:
            print(f"{ap.prog}: error: {name} must be {what}, got {getattr(args, name[2:].replace('-', '_'))}",
                  file=sys.stderr)
            return 2
    evidence = methods_cpu.load(args.evidence)
    if evidence is None:
        print(f"{ap.prog}: error: --evidence {args.evidence} does not exist", file=sys.stderr)
        return 2
    rows = power_rows(evidence, alpha=args.alpha, power=args.power, n_max=args.n_max)
    m = len(rows)
    budget_runs = int(math.floor(args.budget_min / args.minutes_per_run))
    plan = design(rows, budget_runs, alpha=args.alpha, power=args.power)
    cmds = commands(plan, seed_start=args.seed_start, results=args.results, data=args.data)
    print(table_text(rows, args.alpha, args.power, m, args.n_max))
    print(f"\nstage 2 (rule: module docstring): rows {', '.join(plan['rows']) or 'none'}; cells "
          f"{', '.join(plan['cells']) or '-'} x 2 inits, {plan['seeds_per_cell']} seeds each (seeds {args.seed_start}-"
          f"{args.seed_start + plan['seeds_per_cell'] - 1}): {plan['runs']} runs of the {budget_runs} the budget allows, "
          f"~{plan['runs'] * args.minutes_per_run / 60:.1f} h; left out: {', '.join(plan['left_out']) or 'none'}")
    if plan["rows"]:
        print(f"  at {plan['seeds_per_cell']} seeds per cell the test detects, with power {args.power:g} at alpha/{m}: "
              + ", ".join(f"{k} {v:.2f} points" for k, v in plan["detectable_difference_at_alpha_over_m"].items())
              + " (the pilot's standard deviations)")
    for c in cmds:
        print("  " + c)
    command = "python -m experiments.ledger.table1_power" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    out = {"command": command, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "evidence": str(args.evidence), "test": f"Welch t (Welch-Satterthwaite df), two-sided, Holm over the {m} rows",
           "power_method": "noncentral t with the Welch-Satterthwaite df, the pilot's standard deviations as the true "
                           "ones, a true difference of the observed size (an approximation)",
           "alpha": args.alpha, "power": args.power, "budget_min": args.budget_min,
           "minutes_per_run": args.minutes_per_run, "rows": rows, "design": plan, "commands": cmds}
    from experiments.common.runs import git_commit, write_json

    out["commit"] = git_commit()
    write_json(Path(args.out), out)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
