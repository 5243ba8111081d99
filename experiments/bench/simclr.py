"""`clspec bench simclr`: how fast the SimCLR pre-training step runs on this machine.

Measured in one run, so the ratios do not depend on how busy the machine is at other times:

* the machine's float32 matmul rate (a jit-ed 2048 x 2048 product, best of several);
* images/s of the full pre-training step (both views through the network as one batch of 2B,
  NT-Xent, Adam update) without augmentation, with augmentation, and the augmentation alone;
* the step's FLOPs from XLA's cost analysis of the compiled step
  (``jax.jit(step).lower(...).compile().cost_analysis()["flops"]``), the achieved FLOP/s and
  their fraction of the matmul rate;
* a per-stage table (stem, stage1..., head/loss): forward+backward time and GFLOP/s of each
  part on its real input shape, FLOPs again from XLA's cost analysis;

* images/s of the fine-tuning step (``--finetune-batch`` images, one view, cross-entropy, SGD with
  momentum; :func:`experiments.cifar.train_steps.make_finetune_step` without augmentation) and of the
  evaluation forward pass (``--eval-batch`` images, BatchNorm in eval mode);
* the fine-tuning step taken apart (with the per-stage table): the input scaling, forward+backward
  of every encoder part on the fine-tuning batch, pooling + linear + cross-entropy, and the SGD
  update, each compiled and timed alone, with their sum against the whole step (where the step's
  time goes, and how much the whole-program compilation saves or costs over its parts);

for the convolution formulation that ``conv_impl="auto"`` selects on this backend (or the
formulations listed in ``--conv-impl``) and for plain ``lax.conv`` (the baseline), with their ratio.
With ``--torch-python PATH`` the same steps, the evaluation pass and the per-stage parts also run in
PyTorch eager (:mod:`experiments.bench.torch_reference`, started as a worker process with
``OMP_NUM_THREADS=--torch-threads``), timed in the same rounds, and the report gives the clspec /
PyTorch speed ratio of every job: per round ``t_torch / t_clspec``, then the median and the minimum
over rounds. Every round runs each measured function of every formulation (and of PyTorch) once, so
a busy spell of the (shared) machine hits all of them alike; timings are the best and the median of
``--steps`` rounds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from experiments.bench.timing import TorchWorker, compile_once, matmul_rate, time_interleaved, xla_flops

DEFAULT_OUT = Path("results/bench/simclr.json")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks of the CIFAR pipeline on this machine")
    sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    p = sub.add_parser("simclr", help="images/s, FLOP/s and per-stage times of the SimCLR step")
    p.add_argument("--arch", default="resnet32", choices=("resnet32", "resnet18", "tiny"),
                   help="encoder (default: resnet32)")
    p.add_argument("--batch", type=int, default=128, help="images per step (2x views); default 128")
    p.add_argument("--image-size", type=int, default=32, help="image height = width; default 32")
    p.add_argument("--steps", type=int, default=3, help="timed steps per configuration; default 3")
    p.add_argument("--conv-impl", default="auto",
                   help="formulation(s) to compare with lax, comma-separated, the first is the one reported "
                        "as fast (auto, lax, shiftdot, hybrid, ...; default auto)")
    p.add_argument("--finetune-batch", type=int, default=64, help="images per fine-tuning step; default 64")
    p.add_argument("--eval-batch", type=int, default=512, help="images per evaluation forward pass; default 512")
    p.add_argument("--torch-python", default=None,
                   help="a Python with torch: time PyTorch eager in the same rounds (default: none)")
    p.add_argument("--torch-threads", type=int, default=2, help="OMP_NUM_THREADS for PyTorch; default 2")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n^3 matmul rate; default 2048")
    p.add_argument("--no-stages", action="store_true", help="skip the per-stage table")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON file or folder; default {DEFAULT_OUT}")
    p.set_defaults(func=run_simclr)
    __import__("experiments.bench.jacobian").bench.jacobian.add_parser(sub)  # `clspec bench jacobian`
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _out_path(out: str) -> Path:
    path = Path(out)
    return path if path.suffix == ".json" else path / "simclr.json"


def _part_jobs(arch, conv_impl, enc_p, enc_s, x, prefix) -> tuple[list[tuple], object]:
    """(prefix + part, compiled forward+backward, args, input shape) for every encoder part on its
    real input (BatchNorm in training mode), and the last part's output."""
    import jax
    import jax.numpy as jnp

    from experiments.cifar.models import stage_modules

    jobs = []
    for name, module in stage_modules(arch, conv_impl=conv_impl):
        p, stats = enc_p[name], enc_s[name]

        def fwd(p, x, module=module, stats=stats):
            out, _ = module.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return out

        out = fwd(p, x)
        cot = jax.random.normal(jax.random.key(7), out.shape, jnp.float32)
        argnums = (0,) if name == "stem" else (0, 1)  # the stem's input needs no gradient

        # the cotangent is an argument, not a closed-over constant XLA would fold into the program
        def fwd_bwd(p, x, cot, fwd=fwd, argnums=argnums):
            return jax.grad(lambda p, x: jnp.sum(fwd(p, x) * cot), argnums=argnums)(p, x)

        jobs.append((prefix + name, compile_once(jax.jit(fwd_bwd), p, x, cot), (p, x, cot), tuple(x.shape)))
        x = out
    return jobs, x


def _stage_jobs(arch, conv_impl, params, batch_stats, views, temperature) -> list[tuple]:
    """(part, compiled forward+backward, args, input shape) for every part of the SimCLR step."""
    import jax
    import jax.numpy as jnp

    from experiments.cifar.models import ProjectionHead
    from theory.losses import nt_xent

    jobs, x = _part_jobs(arch, conv_impl, params["encoder"], batch_stats["encoder"], views, "")
    head = ProjectionHead()
    b = x.shape[0] // 2

    def head_loss(p, h):
        z = head.apply({"params": p}, jnp.mean(h, axis=(1, 2)))
        return nt_xent(z[:b], z[b:], temperature)

    f = compile_once(jax.jit(jax.grad(head_loss, argnums=(0, 1))), params["head"], x)
    jobs.append(("head/loss", f, (params["head"], x), tuple(x.shape)))
    return jobs


def _finetune_part_jobs(arch, conv_impl, state, tx, images, labels) -> list[tuple]:
    """The fine-tuning step taken apart: (``ft:`` + part, compiled function, args, input shape) for
    the input scaling, every encoder part (forward + backward, BatchNorm in training mode), the
    pooling + linear layer + cross-entropy (forward + backward) and the SGD update alone."""
    import jax
    import jax.numpy as jnp
    import optax

    from experiments.cifar.augment import normalize
    from experiments.cifar.train_steps import linear_logits

    scale = compile_once(jax.jit(normalize), images)
    jobs = [("ft:input", scale, (images,), tuple(images.shape))]
    part_jobs, h = _part_jobs(arch, conv_impl, state.params["encoder"], state.batch_stats["encoder"],
                              normalize(images), "ft:")
    jobs += part_jobs

    def head_loss(p, h):
        logits = linear_logits(p, jnp.mean(h, axis=(1, 2)))
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    linear = state.params["linear"]
    jobs.append(("ft:head/loss", compile_once(jax.jit(jax.grad(head_loss, argnums=(0, 1))), linear, h),
                 (linear, h), tuple(h.shape)))
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), state.params)

    def update(params, opt_state, grads):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    args = (state.params, state.opt_state, grads)
    jobs.append(("ft:update", compile_once(jax.jit(update), *args), args, (int(sum(
        p.size for p in jax.tree.leaves(state.params))),)))
    return jobs


def _finetune_and_eval_jobs(arch, conv_impl, finetune_batch, eval_batch, image_size, encoder_variables,
                            parts: bool = False) -> tuple[dict, list]:
    """The compiled fine-tuning step (no augmentation) and evaluation forward pass, with their args;
    with ``parts``, also :func:`_finetune_part_jobs` (``"ft:<part>"``) and their list."""
    import jax
    import jax.numpy as jnp

    from experiments.cifar.configs import TrainConfig
    from experiments.cifar.models import Classifier, make_encoder
    from experiments.cifar.steps import create_state
    from experiments.cifar.evaluate import make_encode
    from experiments.cifar.train_steps import make_finetune_step, train_optimizer

    model = Classifier(make_encoder(arch, conv_impl=conv_impl), 10)
    tx = train_optimizer(TrainConfig())
    state = create_state(model, tx, jax.random.key(2), (image_size, image_size, 3))
    rng = np.random.default_rng(1)
    images = jnp.asarray(rng.integers(0, 256, (finetune_batch, image_size, image_size, 3), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, 10, finetune_batch), jnp.int32)
    ft_args = (state, images, labels, jax.random.key(3))
    finetune = make_finetune_step(model, tx, augment=False).lower(*ft_args).compile()
    eval_images = jnp.asarray(rng.integers(0, 256, (eval_batch, image_size, image_size, 3), dtype=np.uint8))
    encode = make_encode(make_encoder(arch, conv_impl=conv_impl))
    ev_args = (encoder_variables, eval_images)
    jobs = {"finetune_step": (finetune, ft_args), "eval_forward": (encode.lower(*ev_args).compile(), ev_args)}
    part_list = _finetune_part_jobs(arch, conv_impl, state, tx, images, labels) if parts else []
    return jobs, part_list


def prepare_impl(arch, conv_impl, batch, image_size, stages, temperature=0.5, finetune_batch=64,
                 eval_batch=512) -> dict:
    """Compile everything measured for one convolution formulation: ``{"jobs": {name: (fn, args)},
    "flops": {name: FLOPs}, "stages": [(part, input shape)]}``."""
    import jax
    import jax.numpy as jnp

    from experiments.cifar.models import ProjectionHead, SimCLRModel, make_encoder
    from experiments.cifar.steps import create_state, make_simclr_step, simclr_optimizer, simclr_views

    model = SimCLRModel(make_encoder(arch, conv_impl=conv_impl), ProjectionHead())
    tx = simclr_optimizer()
    state = create_state(model, tx, jax.random.key(0), (image_size, image_size, 3))
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (batch, image_size, image_size, 3), dtype=np.uint8))
    key = jax.random.key(1)
    step_args = (state, images, key)
    plain = compile_once(jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=False)), *step_args)
    augmented = compile_once(jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=True)), *step_args)
    views_fn = compile_once(jax.jit(lambda k, im: simclr_views(k, im, True)), key, images)
    jobs = {
        "step_no_aug": (plain, step_args),
        "step_aug": (augmented, step_args),
        "augment_only": (views_fn, (key, images)),
    }
    enc_vars = {"params": state.params["encoder"], "batch_stats": state.batch_stats["encoder"]}
    ft_jobs, ft_parts = _finetune_and_eval_jobs(arch, conv_impl, finetune_batch, eval_batch, image_size,
                                                enc_vars, parts=stages)
    jobs.update(ft_jobs)
    flops = {name: xla_flops(jobs[name][0]) for name in ("step_no_aug", "finetune_step", "eval_forward")}
    ft_info = []
    for part, f, args, shape in ft_parts:
        jobs[part] = (f, args)
        flops[part] = xla_flops(f)
        ft_info.append((part, shape))
    stage_info = []
    if stages:
        views = simclr_views(key, images, augment=False)
        for part, f, args, shape in _stage_jobs(arch, conv_impl, state.params, state.batch_stats, views, temperature):
            jobs[f"stage:{part}"] = (f, args)
            flops[f"stage:{part}"] = xla_flops(f)
            stage_info.append((part, shape))
    return {"jobs": jobs, "flops": flops, "stages": stage_info, "finetune_parts": ft_info}


def _assemble(prepared: dict, timed: dict, batch: int, finetune_batch: int, eval_batch: int) -> dict:
    """The JSON record of one formulation from its compiled jobs and their timings."""
    r = {}
    images = {"step_no_aug": batch, "step_aug": batch, "augment_only": batch, "finetune_step": finetune_batch,
              "eval_forward": eval_batch}
    for name, n in images.items():
        r[name] = {**timed[name], "images_per_s": n / timed[name]["best_s"],
                   "images_per_s_median": n / timed[name]["median_s"]}
    for name in ("finetune_step", "eval_forward"):
        fl = prepared["flops"][name]
        r[name]["gflops_per_s"] = None if fl is None else fl / timed[name]["best_s"] / 1e9
    r["augment_only"]["fraction_of_aug_step"] = timed["augment_only"]["best_s"] / timed["step_aug"]["best_s"]
    flops = prepared["flops"]["step_no_aug"]
    r["step_gflop"] = None if flops is None else flops / 1e9
    r["step_gflops_per_s"] = None if flops is None else flops / timed["step_no_aug"]["best_s"] / 1e9
    if prepared["stages"]:
        rows = []
        for part, shape in prepared["stages"]:
            t, fl = timed[f"stage:{part}"], prepared["flops"][f"stage:{part}"]
            rows.append({
                "part": part,
                "input_shape": list(shape),
                "fwd_bwd_ms": 1e3 * t["best_s"],
                "fwd_bwd_median_ms": 1e3 * t["median_s"],
                "fwd_bwd_cpu_median_ms": 1e3 * t["cpu_median_s"],
                "gflop": None if fl is None else fl / 1e9,
                "gflops_per_s": None if fl is None else fl / t["best_s"] / 1e9,
            })
        r["stages"] = rows
    if prepared.get("finetune_parts"):
        rows = []
        for part, shape in prepared["finetune_parts"]:
            t, fl = timed[part], prepared["flops"][part]
            rows.append({
                "part": part[len("ft:"):],
                "input_shape": list(shape),
                "ms": 1e3 * t["best_s"],
                "median_ms": 1e3 * t["median_s"],
                "cpu_median_ms": 1e3 * t["cpu_median_s"],
                "gflop": fl / 1e9 if fl else None,
            })
        step = timed["finetune_step"]
        r["finetune_parts"] = {
            "rows": rows,
            "sum_of_parts_median_ms": sum(row["median_ms"] for row in rows),
            "step_median_ms": 1e3 * step["median_s"],
            "what": "the fine-tuning step taken apart, each part compiled and timed alone on its real input: "
                    "input scaling, forward + backward of every encoder part (BatchNorm in training mode), "
                    "pooling + linear + cross-entropy (forward + backward), the SGD update alone",
        }
    return r


TORCH_JOBS = ("step_no_aug", "finetune_step", "eval_forward")


def _ratios_over_torch(mine: dict, torch_timed: dict) -> dict:
    """Per job timed on both sides: the clspec / PyTorch speed ratio of every round
    (``t_torch / t_clspec``, same round), its median and minimum; the same for CPU time."""
    out = {}
    for name, t in torch_timed.items():
        if name not in mine:
            continue
        per_round = [tt / tc for tt, tc in zip(t["rounds_s"], mine[name]["rounds_s"])]
        cpu = [tt / tc for tt, tc in zip(t["rounds_cpu_s"], mine[name]["rounds_cpu_s"])]
        out[name] = {"median": float(np.median(per_round)), "min": min(per_round), "rounds": per_round,
                     "cpu_median": float(np.median(cpu)), "cpu_min": min(cpu), "cpu_rounds": cpu}
    return out


def _validate(args) -> list[str]:
    """Check every argument before work starts; the formulations to time (the first is the fast one)."""
    from experiments.cifar.conv import resolve_impl
    from experiments.cifar.models import ARCHS

    if args.arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {args.arch!r}")
    for name in ("batch", "finetune_batch", "eval_batch"):
        if getattr(args, name) < 2:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 2, got {getattr(args, name)}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.matmul_size < 16:
        raise ValueError(f"--matmul-size must be >= 16, got {args.matmul_size}")
    if args.image_size < 8:
        raise ValueError(f"--image-size must be >= 8, got {args.image_size}")
    from experiments.common.runs import check_writable_file

    check_writable_file(_out_path(args.out), "--out")  # before the benchmark, whose result would be lost
    from experiments.cifar.conv import resolve_impl

    if args.torch_threads < 1:
        raise ValueError(f"--torch-threads must be >= 1, got {args.torch_threads}")
    if args.torch_python is not None and not (Path(args.torch_python).is_file()
                                               and os.access(args.torch_python, os.X_OK)):
        raise OSError(f"--torch-python must be an executable Python, got {args.torch_python!r}")
    impls = []
    for name in args.conv_impl.split(","):
        impl = resolve_impl(name.strip())
        if impl not in impls:
            impls.append(impl)
    return impls + ([] if "lax" in impls else ["lax"])


def run_simclr(args) -> int:
    from experiments.common.runs import environment, write_json

    impls = _validate(args)
    fast_impl = impls[0]
    import jax

    worker = None
    if args.torch_python is not None:  # started first: a broken torch fails before any compiling
        worker = TorchWorker(args.torch_python, arch=args.arch, batch=args.batch,
                             finetune_batch=args.finetune_batch, eval_batch=args.eval_batch,
                             image_size=args.image_size, stages=not args.no_stages, threads=args.torch_threads)
    try:
        mm = matmul_rate(args.matmul_size, repeats=max(3, args.steps))
        prepared = {
            impl: prepare_impl(args.arch, impl, args.batch, args.image_size, not args.no_stages,
                               finetune_batch=args.finetune_batch, eval_batch=args.eval_batch)
            for impl in impls
        }
        all_jobs = {(impl, name): job for impl in impls for name, job in prepared[impl]["jobs"].items()}
        if worker is not None:
            all_jobs.update({("torch", name): worker.timer(name) for name in worker.info["jobs"]})
        timed = time_interleaved(all_jobs, args.steps)
    finally:
        if worker is not None:
            worker.close()
    results = {}
    for impl in impls:
        mine = {name: t for (i, name), t in timed.items() if i == impl}
        results[impl] = r = {"conv_impl": impl, **_assemble(prepared[impl], mine, args.batch,
                                                            args.finetune_batch, args.eval_batch)}
        if r["step_gflops_per_s"] is not None:
            r["fraction_of_matmul"] = r["step_gflops_per_s"] / mm["gflops"]
    fast, base = results[fast_impl], results["lax"]
    ratio = {name: fast[name]["images_per_s"] / base[name]["images_per_s"]
             for name in ("step_no_aug", "step_aug", "finetune_step", "eval_forward")}
    report = {
        "arch": args.arch,
        "batch": args.batch,
        "views_per_step": 2 * args.batch,
        "finetune_batch": args.finetune_batch,
        "eval_batch": args.eval_batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "backend": jax.default_backend(),
        "conv_impl": args.conv_impl,
        "impls": impls,
        "fast_impl": fast_impl,
        "baseline_impl": "lax",
        "flop_count": "XLA cost analysis of the compiled function (cost_analysis()['flops'])",
        "timing": "best (and median) of --steps rounds; every round runs each measured function of "
                  "every formulation (and of PyTorch) once, interleaved",
        "matmul": mm,
        "results": results,
        "ratio_fast_over_baseline": ratio,
        "env": environment(),
    }
    if worker is not None:
        torch_timed = {name: t for (i, name), t in timed.items() if i == "torch"}
        report["torch"] = {**worker.info, "threads_env": args.torch_threads, "timed": torch_timed}
        report["ratio_over_torch"] = {
            impl: _ratios_over_torch({n: t for (i, n), t in timed.items() if i == impl}, torch_timed)
            for impl in impls
        }
    out = _out_path(args.out)
    write_json(out, report)
    _print_report(report)
    print(f"wrote {out}")
    return 0


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def _print_report(rep: dict) -> None:
    mm = rep["matmul"]
    print(
        f"SimCLR step, {rep['arch']}, batch {rep['batch']} ({rep['views_per_step']} views), "
        f"{rep['image_size']}x{rep['image_size']}, backend {rep['backend']}, best of {rep['steps']} "
        f"interleaved rounds; fine-tuning batch {rep['finetune_batch']}, evaluation batch {rep['eval_batch']}"
    )
    print(f"matmul {mm['n']}^3 float32: {mm['gflops']:.1f} GFLOP/s")
    for impl, r in rep["results"].items():
        label = f"{impl} (fast)" if impl == rep["fast_impl"] and impl != "lax" else (
            f"{impl} (baseline)" if impl == "lax" else impl)
        print(
            f"  {label:18s} no aug {r['step_no_aug']['images_per_s']:7.1f} img/s | "
            f"with aug {r['step_aug']['images_per_s']:7.1f} img/s | "
            f"augmentation alone {1e3 * r['augment_only']['best_s']:.0f} ms/step "
            f"({100 * r['augment_only']['fraction_of_aug_step']:.0f}% of the aug step) | "
            f"step {_fmt(r['step_gflop'])} GFLOP at {_fmt(r['step_gflops_per_s'])} GFLOP/s = "
            f"{_fmt(None if r.get('fraction_of_matmul') is None else 100 * r['fraction_of_matmul'])}% of matmul | "
            f"fine-tune {r['finetune_step']['images_per_s']:7.1f} img/s | eval {r['eval_forward']['images_per_s']:7.1f} img/s"
        )
    ratio = rep["ratio_fast_over_baseline"]
    print(
        f"  fast / baseline: {ratio['step_no_aug']:.2f}x without augmentation, "
        f"{ratio['step_aug']:.2f}x with augmentation, {ratio['finetune_step']:.2f}x fine-tuning, "
        f"{ratio['eval_forward']:.2f}x evaluation"
    )
    impls = list(rep["results"])
    torch_t = rep.get("torch", {}).get("timed", {})
    if torch_t:
        t = rep["torch"]
        print(f"  PyTorch {t['torch']} eager, {t['threads']} threads (OMP_NUM_THREADS={t['threads_env']}): "
              + " | ".join(f"{name} {1e3 * torch_t[name]['median_s']:.0f} ms" for name in TORCH_JOBS))
        print("  clspec / PyTorch speed (t_torch / t_clspec per round; median, min over rounds):")
        for impl in impls:
            rt = rep["ratio_over_torch"][impl]
            print(f"    {impl:10s} " + " | ".join(
                f"{name} {rt[name]['median']:.2f} (min {rt[name]['min']:.2f}; CPU time {rt[name]['cpu_median']:.2f})"
                for name in TORCH_JOBS))
    if all("stages" in rep["results"][i] for i in impls):
        header = "  part        " + "".join(f"| {c + ' ms':>12s} {c + ' GF/s':>14s} " for c in impls)
        if torch_t:
            header += "| " + "torch ms".rjust(12) + " " + "".join(f"{i + '/torch':>14s}" for i in impls)
        print(header + "   (medians over rounds)")
        for k, row in enumerate(rep["results"][impls[0]]["stages"]):
            line = f"  {row['part']:11s} "
            for i in impls:
                r = rep["results"][i]["stages"][k]
                gf = None if r["gflop"] is None else r["gflop"] / (r["fwd_bwd_median_ms"] / 1e3)
                line += f"| {r['fwd_bwd_median_ms']:12.1f} {_fmt(gf):>14s} "
            name = f"stage:{row['part']}"
            if torch_t and name in torch_t:
                line += f"| {1e3 * torch_t[name]['median_s']:12.1f} " + "".join(
                    f"{rep['ratio_over_torch'][i][name]['median']:8.2f} (CPU {rep['ratio_over_torch'][i][name]['cpu_median']:.2f})"
                    for i in impls)
            print(line)
    if all("finetune_parts" in rep["results"][i] for i in impls):
        print(f"  fine-tuning step taken apart (batch {rep['finetune_batch']}; medians over rounds, ms):")
        header = "  part        " + "".join(f"| {i + ' ms':>12s} " for i in impls)
        if torch_t:
            header += "| " + "torch ms".rjust(10) + " " + "".join(f"{i + '/torch':>16s}" for i in impls)
        print(header)
        first = rep["results"][impls[0]]["finetune_parts"]
        for k, row in enumerate(first["rows"]):
            line = f"  {row['part']:11s} " + "".join(
                f"| {rep['results'][i]['finetune_parts']['rows'][k]['median_ms']:12.1f} " for i in impls)
            name = f"ft:{row['part']}"
            if torch_t and name in torch_t:
                line += f"| {1e3 * torch_t[name]['median_s']:10.1f} " + "".join(
                    f"{rep['ratio_over_torch'][i][name]['median']:16.2f}" for i in impls)
            print(line)
        total = f"  {'sum':11s} " + "".join(
            f"| {rep['results'][i]['finetune_parts']['sum_of_parts_median_ms']:12.1f} " for i in impls)
        step = f"  {'whole step':11s} " + "".join(
            f"| {rep['results'][i]['finetune_parts']['step_median_ms']:12.1f} " for i in impls)
        if torch_t:
            parts = [n for n in torch_t if n.startswith("ft:")]
            total += f"| {sum(1e3 * torch_t[n]['median_s'] for n in parts):10.1f} "
            step += f"| {1e3 * torch_t['finetune_step']['median_s']:10.1f} "
        print(total)
        print(step)
