"""The `cpu` preset's pre-training sizing: which images x epochs give the best
SimCLR encoder for about 30 minutes of 2-core CPU, compared by k-NN accuracy.

Candidates and rule, fixed before the runs (this file was committed while the first candidate was
still running and before the other two had started):

* the old preset, 4,000 images x 12 epochs (~11 min), and three sizings of 128,000 image-passes
  each (~28 min at the quiet rate of 77.7 SimCLR images/s measured for the preset): 4,000 images x
  32 epochs (the old run resumed from epoch 12: the learning rate is constant, so resuming is the
  same run), 8,000 x 16 and 16,000 x 8; every other setting is the `cpu` preset's (ResNet-32,
  batch 128, Adam 3e-4, seed 0);
* every final encoder is evaluated the same way here, not by its own run's monitor (whose memory
  bank is the first 1,000 images of that run's own class-balanced subset): weighted k-NN (k = 20,
  t = 0.1, as the monitor) with the 4,000-image training subset of the preset as the memory bank
  (clean labels) and all 10,000 test images, so one accuracy has a binomial standard error of about
  0.5 points;
* the preset takes the candidate with the highest accuracy; one within 1 standard error of a
  cheaper candidate (fewer image-passes) does not count as better, the cheaper one is kept.

    python -m experiments.cifar.sizing RUN_DIR [RUN_DIR ...] --out experiments/ledger/evidence/pretrain_sizing_cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

BANK_IMAGES = 4_000  # the cpu preset's training subset (its class-balanced draw with seed 0)
KNN_K = 20
KNN_T = 0.1


def knn_of_checkpoint(path: Path | str, bank, test, *, arch: str = "resnet32") -> dict:
    """k-NN accuracy (module rule: k = KNN_K, t = KNN_T; ``bank`` with its clean labels as the memory bank,
    every image of ``test``) of the encoder in the pre-training checkpoint file ``path``:
    ``{"knn_acc", "knn_se", "eval_s"}`` (the binomial standard error over the test images)."""
    import jax

    from experiments.cifar.models import make_encoder
    from experiments.cifar.parallel import data_parallel
    from experiments.cifar.evaluate import features, make_encode
    from experiments.cifar.monitors import knn_accuracy
    from experiments.cifar.train import encoder_from_pretrain

    encoder = make_encoder(arch)
    target = encoder.init(jax.random.PRNGKey(0), np.zeros((2,) + bank.images.shape[1:], np.float32), train=False)
    variables, _ = encoder_from_pretrain(path, arch, dict(target))
    encode, dp = make_encode(encoder), data_parallel()
    t0 = time.perf_counter()
    f_bank = features(encode, variables, np.asarray(bank.images), dp)
    f_test = features(encode, variables, np.asarray(test.images), dp)
    acc = knn_accuracy(f_bank, np.asarray(bank.labels), f_test, np.asarray(test.labels), k=KNN_K,
                       num_classes=len(bank.classes), temperature=KNN_T)
    n = len(test.labels)
    return {"knn_acc": acc, "knn_se": math.sqrt(acc * (1 - acc) / n), "eval_s": round(time.perf_counter() - t0, 1)}


def evaluate(run_dir: Path, bank, test, *, arch: str = "resnet32") -> dict:
    """k-NN accuracy of the encoder of the pre-training run in ``run_dir`` (module rule above)."""
    from experiments.cifar import checkpoint as ckpt

    knn = knn_of_checkpoint(ckpt.checkpoint_path(run_dir), bank, test, arch=arch)
    config = json.loads((run_dir / "config.json").read_text())
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {
        "run": str(run_dir),
        "train_limit": config["train_limit"],
        "epochs": config["epochs"],
        "epochs_done": len(history),
        "image_passes": config["train_limit"] * len(history),
        "knn_acc": knn["knn_acc"],
        "knn_se": knn["knn_se"],
        "monitor_knn_last3": [row["knn_acc"] for row in history[-3:]],
        "median_images_per_s": float(np.median([row["images_per_s"] for row in history[1:]] or [np.nan])),
        "eval_s": knn["eval_s"],
    }


def choose(results: list[dict]) -> dict:
    """The module's rule: the most accurate, unless a cheaper candidate is within 1 SE of it."""
    best = max(results, key=lambda r: r["knn_acc"])
    cheaper = [r for r in results if r["image_passes"] < best["image_passes"]
               and best["knn_acc"] - r["knn_acc"] <= best["knn_se"]]
    return min(cheaper, key=lambda r: r["image_passes"]) if cheaper else best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="pre-training run folders (each with checkpoint.msgpack, config.json, metrics.jsonl)")
    ap.add_argument("--data", default=None, help="dataset (default: the shared CIFAR-10 copy)")
    ap.add_argument("--out", required=True, help="evidence JSON to write")
    args = ap.parse_args(argv)
    from experiments.cifar.configs import default_data
    from experiments.cifar.data import load_dataset
    from experiments.common.runs import environment, write_json

    runs = [Path(r) for r in args.runs]
    for r in runs:
        if not (r / "config.json").is_file():
            print(f"error: {r} is not a pre-training run folder (no config.json)", file=sys.stderr)
            return 2
    data = args.data or default_data()
    bank = load_dataset(data, "train", limit=BANK_IMAGES, seed=0)
    test = load_dataset(data, "test", limit=None, seed=0)
    results = []
    for r in runs:
        results.append(evaluate(r, bank, test))
        row = results[-1]
        print(f"{r}: {row['train_limit']} images x {row['epochs_done']} epochs: k-NN {row['knn_acc']:.4f} "
              f"+- {row['knn_se']:.4f}", flush=True)
    chosen = choose(results)
    write_json(Path(args.out), {
        "what": "k-NN accuracy (k = 20, t = 0.1) of SimCLR encoders of different sizings; bank: the 4,000-image "
                "cpu training subset with clean labels; test: all 10,000 CIFAR-10 test images",
        "rule": "highest accuracy; a candidate with fewer image-passes within 1 SE of the best is kept instead",
        "results": results,
        "chosen": {"train_limit": chosen["train_limit"], "epochs": chosen["epochs_done"], "run": chosen["run"]},
        "env": environment(),
    })
    print(f"chosen: {chosen['train_limit']} images x {chosen['epochs_done']} epochs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
