"""C98-C99: Fig. 2a on the real network, every singular value of J(W_0), CPU-scale.

Reads the committed evidence ``experiments/ledger/evidence/fig2a_cpu.json``, written by
``clspec jacobian-fig2a`` (:data:`COMMAND`): ResNet-32 with a 10-way linear head, J the Jacobian of
the K = 10 logits in all parameters (encoder and head; App. C's J(W_0), rows i*K + k), at
n = 1,000 class-balanced CIFAR-10 test points: **all nK = 10,000 singular values** (the full
10,000 x 10,000 Gram J J^T in float32 tiles, then a float64 eigh), for random initialization and
for the ``cpu``-preset SimCLR checkpoint (16 epochs on 8,000 images; the head keeps the random
initialization's draw), each in two BatchNorm conventions:

* ``running``: evaluation mode with the network's stored running statistics (at random
  initialization mean 0, variance 1, so every BatchNorm is the identity up to 1/sqrt(1 + eps));
* ``batch``: the mean and (biased) variance of each BatchNorm input over the n points (and the
  spatial positions) in one training-mode forward pass of all n points at W_0, **held fixed** in J
  (not differentiated through). Why this one: App. C writes J's rows as dz(x_i, W)/dW, the output
  of a point as a function of that point and the weights; statistics differentiated through would
  make every row depend on all n points, with cross terms the definition has none of. No code of
  the paper is public; a freshly built PyTorch network is in training mode, which normalizes with
  batch statistics, and fixed statistics of the n points are that normalization with App. C's
  per-point structure. (Differentiating through them would also cost a vjp over all n points per
  row of J, about n = 1,000 times the per-point computation.)

Claims, with the measures fixed here before any of these spectra was computed (2026-12-03 14:15 UTC):

* C98 (App. C: pre-training "greatly shrinks the small singular values", Fig. 2a): the fraction of
  ||J||_F^2 = sum_i sigma_i^2 beyond the top 10 singular directions (App. C's information space I,
  10 directions), tail = sum_{i > 10} sigma_i^2 / sum_i sigma_i^2, of the pre-trained network is at
  most that of random initialization, both in the same BatchNorm convention: one row per convention
  (C98.1 running, C98.2 batch), the relation ``<=`` with no slack. Scale-free on purpose: the
  conventions change ||J|| by orders of magnitude, and "small" is relative to the top directions.
  Reported beside it, not judged: the count of sigma_i / sigma_1 < 1e-2, the median sigma_i / sigma_1
  and the raw tail energy sum_{i > 10} sigma_i^2.
* C99 (Fig. 2a's axis, 0 to about 500): which convention puts the singular values on the paper's
  axis: sigma_1 of each network in each convention and the fraction of sigma_i <= 500. INFO: the axis
  is read off a figure, not a stated number; the note names the convention whose larger sigma_1 of
  the two networks is nearest 500 (log ratio).

Rows are judged at n = 1,000 (the paper's n) only; the n = 100 / 200 runs of the evidence (the
scaling, and a float32-vs-float64 tile comparison) are printed in the notes. Without the evidence,
or without a network in it, the rows are INFO "skipped" with the reason. These are CPU-scale (16
SimCLR epochs on 8,000 images, not 1000 epochs on 50,000): a FAIL is a finding about a briefly
pre-trained encoder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from experiments.ledger.claims import INFO, LE, Claim, by_id, no_progress, row

EVIDENCE = Path(__file__).resolve().parent.parent / "evidence" / "fig2a_cpu.json"
COMMAND = ("clspec jacobian-fig2a --n 1000 --checkpoint /work/runs/pretrain-cpu-keep/epoch-016/checkpoint.msgpack "
           "--evidence experiments/ledger/evidence/fig2a_cpu.json")
TOP = 10  # App. C's information space: the top-10 singular directions
MODES = ("running", "batch")
INITS = ("random", "pretrained")
AXIS = 500.0  # the right end of the paper's Fig. 2a x axis (read off the figure)
SMALL = 1e-2  # reported: the count of sigma_i / sigma_1 below this
MAIN = "n=1000"

CLAIMS = (
    Claim("C98", "Sec. 4.2, App. C (Fig. 2a), CPU-scale",
          "CIFAR-10, ResNet-32, n = 1,000 test points, all 10,000 singular values of J(W_0): pre-training shrinks the "
          "small singular values: the fraction of ||J||_F^2 beyond the top 10 directions of the pre-trained network "
          "(cpu preset) <= random init's, same BatchNorm convention (one row per convention: running, batch)"),
    Claim("C99", "App. C Fig. 2a (x axis 0 to ~500), CPU-scale",
          "Which BatchNorm convention (running statistics, or the batch statistics of the n points held fixed) puts "
          "ResNet-32's singular values at n = 1,000 on the paper's axis: sigma_1 and the fraction <= 500 per network"),
)
C = by_id(CLAIMS)
