"""PyTorch eager reference for `clspec bench simclr --torch-python PATH` (a measuring tool).

Run by any Python that has torch (torch is not a dependency of clspec); the benchmark starts it as
a worker process and interleaves its timings with clspec's, so a busy spell of the shared machine
hits both. It builds the same networks as :mod:`experiments.cifar.models` (the ResNet-32 CIFAR
variant of He et al. 2016 with option-A shortcuts, the CIFAR ResNet-18 with 1x1 conv + BN
shortcuts; bias-free 3x3 convolutions with padding 1; BatchNorm momentum 0.1, eps 1e-5; SimCLR's
2-layer projection head with biases to 64; a 10-way linear classifier), NCHW float32, and times:

* ``step_no_aug``: the SimCLR step: 2B views as one batch (BatchNorm in train mode), NT-Xent at
  temperature 0.5, backward, ``torch.optim.Adam(lr=3e-4, weight_decay=1e-6)``;
* ``finetune_step``: the fine-tuning step: B_ft images, one view, classifier, cross-entropy,
  ``torch.optim.SGD(lr=5e-3, momentum=0.9, weight_decay=1e-3)``;
* ``eval_forward``: the encoder on B_eval images, BatchNorm in eval mode, ``torch.inference_mode``;
* ``stage:<part>``: forward + backward of each part (stem, stage1, ...) on its real input shape
  with a fixed random cotangent, gradients for the parameters and (except the stem) the input;
  ``stage:head/loss``: pooling, head and NT-Xent, forward + backward;
* ``ft:<part>``: the fine-tuning step taken apart the same way on the B_ft images (``ft:input``:
  the input scaling; ``ft:stem`` ... the encoder parts; ``ft:head/loss``: pooling, linear layer
  and cross-entropy; ``ft:update``: the SGD step alone).

Protocol (one JSON object per line): the worker prints ``{"ready": true, ...}`` once built and warmed
up, then for every input line ``{"job": NAME}`` runs that job once and prints
``{"job": NAME, "s": WALL_SECONDS, "cpu_s": CPU_SECONDS_OF_ALL_THREADS}``; it exits at end of input.

    OMP_NUM_THREADS=2 PYTHON experiments/bench/torch_reference.py --arch resnet32 --batch 128
"""

import argparse
import json
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SPECS = {
    "resnet32": dict(stem=16, stages=((16, 5, 1), (32, 5, 2), (64, 5, 2)), shortcut="A"),
    "resnet18": dict(stem=64, stages=((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)), shortcut="B"),
    "tiny": dict(stem=8, stages=((16, 1, 2),), shortcut="A"),
}


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout)
        self.stride, self.cin, self.cout, self.kind = stride, cin, cout, shortcut
        self.proj = None
        if (stride != 1 or cin != cout) and shortcut == "B":
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.stride != 1 or self.cin != self.cout:
            if self.proj is not None:
                s = self.proj(x)
            else:  # option A: subsample, zero-pad channels (extra // 2 before, the rest after)
                s = x[:, :, :: self.stride, :: self.stride]
                extra = self.cout - self.cin
                s = F.pad(s, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        else:
            s = x
        return F.relu(y + s)


class Stem(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        self.bn = _bn(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def encoder_parts(arch):
    """[(name, module)] for stem, stage1, ...; the encoder is their composition + average pooling."""
    spec = SPECS[arch]
    parts, cin = [("stem", Stem(spec["stem"]))], spec["stem"]
    for i, (c, blocks, stride) in enumerate(spec["stages"]):
        layers = []
        for j in range(blocks):
            layers.append(BasicBlock(cin, c, stride if j == 0 else 1, spec["shortcut"]))
            cin = c
        parts.append((f"stage{i + 1}", nn.Sequential(*layers)))
    return parts, cin


class Encoder(nn.Module):
    def __init__(self, arch):
        super().__init__()
        parts, self.dim = encoder_parts(arch)
        self.parts = nn.ModuleDict(dict(parts))

    def forward(self, x):
        for m in self.parts.values():
            x = m(x)
        return x.mean(dim=(2, 3))


class SimCLR(nn.Module):
    def __init__(self, arch, out_dim=64):
        super().__init__()
        self.encoder = Encoder(arch)
        d = self.encoder.dim
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, out_dim))

    def forward(self, x):
        return self.head(self.encoder(x))


class Classifier(nn.Module):
    def __init__(self, arch, num_classes=10):
        super().__init__()
        self.encoder = Encoder(arch)
        self.linear = nn.Linear(self.encoder.dim, num_classes)

    def forward(self, x):
        return self.linear(self.encoder(x))


def nt_xent(z, temperature=0.5):
    """NT-Xent of 2B projections, rows [0, B) view 1 and [B, 2B) view 2 (theory.losses.nt_xent)."""
    n2 = z.shape[0]
    n = n2 // 2
    z = F.normalize(z, dim=1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(n2, dtype=torch.bool), float("-inf"))
    partner = torch.cat([torch.arange(n, n2), torch.arange(0, n)])
    return F.cross_entropy(logits, partner)


def _part_jobs(jobs, prefix, parts, x, g):
    """Add ``prefix + name``: forward + backward of each encoder part on its real input, with a fixed
    random cotangent (gradients for the parameters and, except the stem, the input); return a copy
    of the last part's output."""
    for name, module in parts.items():
        with torch.no_grad():
            out = module(x)
        cot = torch.randn(out.shape, generator=g)
        inp = x.clone().requires_grad_(name != "stem")

        def fwd_bwd(module=module, inp=inp, cot=cot):
            module.zero_grad(set_to_none=True)
            inp.grad = None
            (module(inp) * cot).sum().backward()

        jobs[prefix + name] = fwd_bwd
        x = out
    return x.clone()


def build_jobs(arch, batch, finetune_batch, eval_batch, image_size, stages):
    """{name: zero-argument callable running the job once} and the parameter counts."""
    g = torch.Generator().manual_seed(0)
    jobs = {}
    simclr = SimCLR(arch).train()
    adam = torch.optim.Adam(simclr.parameters(), lr=3e-4, weight_decay=1e-6)
    views = torch.rand(2 * batch, 3, image_size, image_size, generator=g)

    def simclr_step():
        adam.zero_grad(set_to_none=True)
        loss = nt_xent(simclr(views))
        loss.backward()
        adam.step()
        return loss.item()

    jobs["step_no_aug"] = simclr_step

    clf = Classifier(arch).train()
    sgd = torch.optim.SGD(clf.parameters(), lr=5e-3, momentum=0.9, weight_decay=1e-3)
    x_ft = torch.rand(finetune_batch, 3, image_size, image_size, generator=g)
    y_ft = torch.randint(0, 10, (finetune_batch,), generator=g)

    def finetune_step():
        sgd.zero_grad(set_to_none=True)
        loss = F.cross_entropy(clf(x_ft), y_ft)
        loss.backward()
        sgd.step()
        return loss.item()

    jobs["finetune_step"] = finetune_step

    enc_eval = Encoder(arch).eval()
    x_eval = torch.rand(eval_batch, 3, image_size, image_size, generator=g)

    def eval_forward():
        with torch.inference_mode():
            return enc_eval(x_eval).sum().item()

    jobs["eval_forward"] = eval_forward

    if stages:
        h = _part_jobs(jobs, "stage:", simclr.encoder.parts, views, g).requires_grad_(True)

        def head_loss():
            simclr.head.zero_grad(set_to_none=True)
            h.grad = None
            nt_xent(simclr.head(h.mean(dim=(2, 3)))).backward()

        jobs["stage:head/loss"] = head_loss

        # the fine-tuning step taken apart, as experiments/bench/simclr.py's _finetune_part_jobs
        jobs["ft:input"] = lambda: x_ft.mul(1.0)  # the input scaling (JAX: uint8 / 255)
        h_ft = _part_jobs(jobs, "ft:", clf.encoder.parts, x_ft, g).requires_grad_(True)

        def ft_head_loss():
            clf.linear.zero_grad(set_to_none=True)
            h_ft.grad = None
            F.cross_entropy(clf.linear(h_ft.mean(dim=(2, 3))), y_ft).backward()

        jobs["ft:head/loss"] = ft_head_loss
        clf_u = Classifier(arch).train()
        sgd_u = torch.optim.SGD(clf_u.parameters(), lr=5e-3, momentum=0.9, weight_decay=1e-3)
        for prm in clf_u.parameters():
            prm.grad = torch.full_like(prm, 1e-3)
        jobs["ft:update"] = sgd_u.step
    counts = {
        "params_simclr": sum(p.numel() for p in simclr.parameters()),
        "params_classifier": sum(p.numel() for p in clf.parameters()),
    }
    return jobs, counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet32", choices=sorted(SPECS))
    ap.add_argument("--batch", type=int, default=128, help="SimCLR images per step (2x views)")
    ap.add_argument("--finetune-batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=512)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-stages", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    jobs, counts = build_jobs(a.arch, a.batch, a.finetune_batch, a.eval_batch, a.image_size, not a.no_stages)
    for fn in jobs.values():  # warm-up (oneDNN primitive creation, allocator)
        fn()
    print(json.dumps({
        "ready": True, "jobs": list(jobs), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "python": platform.python_version(), "mkldnn": torch.backends.mkldnn.is_available(), **counts,
    }), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        name = json.loads(line)["job"]
        t0, c0 = time.perf_counter(), time.process_time()
        jobs[name]()
        print(json.dumps({"job": name, "s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}), flush=True)


if __name__ == "__main__":
    main()
