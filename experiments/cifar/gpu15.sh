#!/usr/bin/env bash
# One-GPU, 15-minute run of the paper's central CIFAR-10 comparison at 80% symmetric noise:
# SimCLR pre-training of ResNet-32 on all 50,000 images, then CL+E2E, CL+ELR and ELR from random
# init (the paper's Table 1: 72.0 / 77.7 / 69.5 after 1000 + 120 epochs), everything under OUT.
#
#   bash experiments/cifar/gpu15.sh [OUT]        # default OUT: results/gpu15-$(date +%Y%m%d-%H%M)
#
# Status: NOT YET RUN. No GPU was lent to the session that wrote it (issue 11), so the sizes below
# are estimates, not measurements: ResNet-32 is ~0.07 GFLOP per 32x32 image forward, so an H200
# does a SimCLR epoch (2 views, batch 512) in well under 10 s and a fine-tuning epoch at batch 64
# (782 small steps) in a few seconds, where per-step overhead dominates. PRETRAIN_EPOCHS and
# TRAIN_EPOCHS keep the total near 15 minutes under that estimate; time the first epoch of each
# stage (metrics.jsonl has time_s) and re-size before trusting the budget.
#
# Every stage is resumable: run the script again with the same OUT and finished runs are skipped,
# a killed run continues from its last checkpoint with identical results.
set -euo pipefail

OUT=${1:-results/gpu15-$(date -u +%Y%m%d-%H%M)}
DATA=${DATA:-../shared/data/cifar10-jpg.tar.gz}   # or a CIFAR-10 python folder / .tar.gz
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-60}            # the paper: 1000
TRAIN_EPOCHS=${TRAIN_EPOCHS:-20}                  # the paper: ~120
SEED=${SEED:-0}
CLSPEC=${CLSPEC:-python -m experiments.cli}

python - <<'PY'
import jax
devices = jax.devices()
print("devices:", devices)
if devices[0].platform != "gpu":
    raise SystemExit("gpu15.sh: no GPU visible to JAX (install jax[cuda12]); refusing to run the GPU budget on CPU")
PY

mkdir -p "$OUT"
echo "gpu15: data $DATA, pretrain $PRETRAIN_EPOCHS epochs, train $TRAIN_EPOCHS epochs -> $OUT" | tee "$OUT/README.txt"

stage() {  # stage NAME DIR ARGS...: run or resume one job, skipping it when finished
  local name=$1 dir=$2; shift 2
  if [[ -f "$dir/metrics.json" ]] && python -c "import json,sys; s=json.load(open('$dir/metrics.json')); sys.exit(s['epochs_done']!=s['epochs'])"; then
    echo "$name: done"; return
  fi
  local resume=(); [[ -f "$dir/checkpoint.msgpack" ]] && resume=(--resume)
  local t0=$SECONDS
  $CLSPEC cifar "$@" --data "$DATA" --out "$dir" --seed "$SEED" --no-progress "${resume[@]}"
  echo "$name: $((SECONDS - t0)) s" | tee -a "$OUT/README.txt"
}

stage pretrain "$OUT/pretrain" pretrain --preset gpu15 --epochs "$PRETRAIN_EPOCHS"
COMMON=(train --preset gpu15 --mode finetune --noise sym:0.8 --epochs "$TRAIN_EPOCHS")
stage cl-e2e  "$OUT/cl-e2e"     "${COMMON[@]}" --method ce  --init "$OUT/pretrain"
stage cl-elr  "$OUT/cl-elr"     "${COMMON[@]}" --method elr --init "$OUT/pretrain"
stage elr     "$OUT/random-elr" "${COMMON[@]}" --method elr --init random

$CLSPEC cifar figures "$OUT/cl-e2e" "$OUT/cl-elr" "$OUT/random-elr" --out "$OUT/figures" || true
python - "$OUT" <<'PY' | tee -a "$OUT/README.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("run         last-epoch test acc   best epoch (selected on test)   paper (Table 1, C10 sym 80%)")
for name, paper in (("cl-e2e", 72.0), ("cl-elr", 77.7), ("random-elr", 69.5)):
    s = json.loads((out / name / "metrics.json").read_text())
    print(f"{name:11s} {100 * s['last']['test_acc']:6.2f}                {100 * s['best']['test_acc']:6.2f} "
          f"(epoch {s['best']['epoch']})               {paper}")
PY
