"""Headline numbers of the paper's text recomputed from its own tables (claims C70-C79).

The tables are transcribed from the paper (Tables 1, 3 and 4; ../shared/PAPER.md section 4).
Each claim is a sentence of the text that summarizes them; the check recomputes it.
Numbers are printed to 0.1 (Table 1), 0.01 (Table 3) and 0.001 (Table 4), so a
recomputed figure may differ from the text by the rounding of the values it combines.
``judge(data)`` reads every number from ``data`` (the tables and the text's figures), so a
mutation test can move a cell and see the row FAIL.
"""

from __future__ import annotations

import copy

import numpy as np

from experiments.ledger.claims import GE, NEAR, Claim, by_id, no_progress, row
from theory.tolerances import TABLE4_DIFF, TABLE4_SUM_SQ, TABLE_GAIN_MEAN, TABLE_TOP1_GAIN_MEAN

CLAIMS = (
    Claim("C70", "Abstract / Sec. 5", "At 80% symmetric noise, CL pre-training improves Crust, Mixup and ELR on CIFAR-10 by 27.18% on average."),
    Claim("C71", "Abstract / Sec. 5", "At 80% symmetric noise, CL pre-training improves Crust, Mixup and ELR on CIFAR-100 by 15.58% on average."),
    Claim("C72", "Sec. 5", "At 80% noise, CL boosts Crust by up to 44.1, Mixup by up to 34.1 and ELR by up to 8.2 points (CIFAR-10)."),
    Claim("C73", "Sec. 5 / Table 3", "On mini-WebVision, CL improves Mixup and ELR by 4.11 (WebVision) and 3.20 (ImageNet) top-1 on average."),
    Claim("C74", "Sec. 5 / Table 1", "At 80% symmetric noise, CL+E2E alone beats every non-CL method on both CIFAR-10 and CIFAR-100."),
    Claim("C75", "Table 4", "The projections of the labels on the top-10 and the remaining Jacobian singular space split ||y||^2 = n = 1000."),
    Claim("C76", "Sec. 5 / Table 3", "On mini-WebVision, CL alone (E2E) beats every non-CL method except ELR and Crust."),
    Claim("C77", "Sec. 5 / Table 3", "The exceptions of C76: ELR and Crust each beat CL+E2E on mini-WebVision."),
    Claim("C78", "App. C / Table 4", "CL pre-training leaves the label projection on the top-10 Jacobian space slightly larger: "
          "||Pi_I(y)|| orders SimCLR 1000 ep >= SimCLR 100 ep >= random init."),
    Claim("C79", "App. C / Table 4", "The alignment ||J J^T y|| / ||J J^T||_F orders SimCLR 1000 ep >= SimCLR 100 ep >= random init."),
)
C = by_id(CLAIMS)

# Table 1, symmetric 80% (mean test accuracy over 3 runs): (CIFAR-10, CIFAR-100); None where the paper has "-".
SYM80 = {
    "F-correction": (34.8, None), "Decoupling": (36.9, None), "Co-teaching": (16.2, None),
    "MentorNet": (28.9, None), "D2L": (10.0, None), "INCV": (52.3, None), "T-Revision": (36.2, None),
    "L_DMI": (20.9, None), "Crust": (33.8, 18.5), "Mixup": (40.7, 15.1), "ELR": (69.5, 23.4),
    "CL+E2E": (72.0, 36.7), "CL+Crust": (77.9, 34.8), "CL+Mixup": (74.8, 30.3), "CL+ELR": (77.7, 35.9),
}
# Table 3 (mini-WebVision): WebVision val top-1, top-5, ImageNet val top-1, top-5.
TABLE3_METRICS = ("WebVision top-1", "WebVision top-5", "ImageNet top-1", "ImageNet top-5")
TABLE3 = {
    "F-correction": (61.12, 82.68, 57.36, 82.36), "Decoupling": (62.54, 84.74, 58.26, 82.26),
    "Co-teaching": (63.58, 85.20, 61.48, 84.70), "MentorNet": (63.00, 81.40, 57.80, 79.92),
    "D2L": (62.68, 84.00, 57.80, 81.36), "INCV": (65.24, 85.34, 61.60, 84.98), "Crust": (72.40, 89.56, 67.36, 87.84),
    "Mixup": (71.38, 87.36, 68.34, 88.44), "ELR": (76.26, 91.26, 68.71, 87.84), "CL+E2E": (71.84, 88.84, 68.48, 89.32),
    "CL+Mixup": (76.34, 90.52, 72.25, 89.72), "CL+ELR": (79.52, 93.80, 71.20, 90.80),
}
# Table 4: ||Pi_I(y)||, ||Pi_N(y)||, ||J J^T y|| / ||J J^T||_F, ordered from the most to the least pre-trained.
TABLE4 = {"SimCLR 1000 ep": (10.063, 29.979, 3.184), "SimCLR 100 ep": (10.036, 29.988, 3.175),
          "random init": (10.014, 29.995, 3.055)}
# The text's figures that the rows hold against the tables.
TEXT = {"avg_gain": (27.18, 15.58), "up_to": {"Crust": 44.1, "Mixup": 34.1, "ELR": 8.2},
        "webvision_avg": (4.11, 3.20), "except": ("ELR", "Crust")}

BASES = ("Crust", "Mixup", "ELR")


def gains(sym80: dict, dataset: int) -> dict:
    return {m: sym80[f"CL+{m}"][dataset] - sym80[m][dataset] for m in BASES}


def judge(data: dict) -> list:
    sym80, t3, t4, text = data["sym80"], data["table3"], data["table4"], data["text"]
    rows = []
    # mean of three gains, each a difference of two values rounded to 0.05: error <= 0.1
    for cid, ds in (("C70", 0), ("C71", 1)):
        g = gains(sym80, ds)
        rows.append(row(C[cid], text["avg_gain"][ds], float(np.mean(list(g.values()))), NEAR, tol=TABLE_GAIN_MEAN,
                        setting="CIFAR-10" if ds == 0 else "CIFAR-100",
                        note="measured = the text's figure; bound = mean of Table 1 gains " +
                             ", ".join(f"{m} {v:+.1f}" for m, v in g.items())))
    # the text's figures are the CIFAR-10 gains; on CIFAR-100 ELR gains more (+12.5) than "up to 8.2"
    best, g100, claimed = gains(sym80, 0), gains(sym80, 1), text["up_to"]
    worst = max(BASES, key=lambda m: abs(best[m] - claimed[m]))
    rows.append(row(C["C72"], claimed[worst], best[worst], NEAR, tol=TABLE_GAIN_MEAN, setting=f"CIFAR-10, largest gap at {worst}",
                    note="CIFAR-10 gains: " + ", ".join(f"{m} {best[m]:.1f}" for m in BASES) +
                         "; CIFAR-100 gains: " + ", ".join(f"{m} {g100[m]:.1f}" for m in BASES)))
    for idx, name in ((0, "WebVision"), (2, "ImageNet")):  # top-1 columns; each cell rounded to 0.005
        avg = float(np.mean([t3[f"CL+{m}"][idx] - t3[m][idx] for m in ("Mixup", "ELR")]))
        rows.append(row(C["C73"], text["webvision_avg"][idx // 2], avg, NEAR, tol=TABLE_TOP1_GAIN_MEAN, setting=name,
                        note="measured = the text's figure; bound = mean of Table 3 top-1 gains of Mixup and ELR"))
    for ds, name in ((0, "CIFAR-10"), (1, "CIFAR-100")):
        others = {k: v[ds] for k, v in sym80.items() if not k.startswith("CL+") and v[ds] is not None}
        top = max(others, key=others.get)
        rows.append(row(C["C74"], sym80["CL+E2E"][ds], others[top], GE, setting=name,
                        note=f"CL+E2E vs the best non-CL method at Sym 80% ({top})"))
    # each norm is rounded to 5e-4, so ||.||^2 carries error <= 2 * 30 * 5e-4 = 0.03 per term
    worst = max(t4, key=lambda k: abs(t4[k][0] ** 2 + t4[k][1] ** 2 - 1000.0))
    rows.append(row(C["C75"], t4[worst][0] ** 2 + t4[worst][1] ** 2, 1000.0, NEAR, tol=TABLE4_SUM_SQ, setting=worst))
    # Table 3's text claim, on each of its four columns (the text names no column)
    non_cl = [k for k in t3 if not k.startswith("CL+")]
    for j, metric in enumerate(TABLE3_METRICS):
        rest = {k: t3[k][j] for k in non_cl if k not in text["except"]}
        top = max(rest, key=rest.get)
        rows.append(row(C["C76"], t3["CL+E2E"][j], rest[top], GE, setting=metric,
                        note=f"CL+E2E vs the best non-CL method other than {' and '.join(text['except'])} ({top})"))
    for j, metric in enumerate(TABLE3_METRICS):
        weaker = min(text["except"], key=lambda k: t3[k][j])
        rows.append(row(C["C77"], t3[weaker][j], t3["CL+E2E"][j], GE, setting=metric,
                        note=f"the weaker of {' and '.join(text['except'])} ({weaker}) vs CL+E2E; a tie counts as beating"))
    # Table 4's ordering: consecutive differences of cells rounded to 5e-4 carry error <= 1e-3
    names = list(t4)
    for cid, col, label in (("C78", 0, "||Pi_I(y)||"), ("C79", 2, "||J J^T y|| / ||J J^T||_F")):
        diffs = [t4[a][col] - t4[b][col] for a, b in zip(names, names[1:])]
        i = int(np.argmin(diffs))
        rows.append(row(C[cid], diffs[i], 0.0, GE, tol=TABLE4_DIFF, setting=f"{names[i]} - {names[i + 1]}",
                        note=f"{label}: " + ", ".join(f"{k} {t4[k][col]:.3f}" for k in names)))
    return rows


def run(preset: str, *, seed: int = 0, progress=no_progress):
    data = copy.deepcopy({"sym80": SYM80, "table3": TABLE3, "table4": TABLE4, "text": TEXT})
    return judge(data), data


def plot(data: dict, outdir) -> list:
    return []
