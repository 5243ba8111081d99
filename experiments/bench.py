"""`clspec bench simclr`: how fast the SimCLR pre-training step runs on this machine (issue 5, items 8-9).

Measured in one run, so the ratios do not depend on how busy the machine is at other times:

* the machine's float32 matmul rate (a jit-ed 2048 x 2048 product, best of several);
* images/s of the full pre-training step (both views through the network as one batch of 2B,
  NT-Xent, Adam update) without augmentation, with augmentation, and the augmentation alone;
* the step's FLOPs from XLA's cost analysis of the compiled step
  (``jax.jit(step).lower(...).compile().cost_analysis()["flops"]``), the achieved FLOP/s and
  their fraction of the matmul rate;
* a per-stage table (stem, stage1..., head/loss): forward+backward time and GFLOP/s of each
  part on its real input shape, FLOPs again from XLA's cost analysis;

for the convolution formulation that ``conv_impl="auto"`` selects on this backend and for plain
``lax.conv`` (the baseline), with their ratio. Timings are the best of ``--repeats`` runs (the
machine is shared; the median is recorded too).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

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
                   help="formulation to compare with lax: auto, lax, shiftdot or hybrid (default: auto)")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n^3 matmul rate; default 2048")
    p.add_argument("--no-stages", action="store_true", help="skip the per-stage table")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON file or folder; default {DEFAULT_OUT}")
    p.set_defaults(func=run_simclr)
    __import__("experiments.bench_jacobian").bench_jacobian.add_parser(sub)  # `clspec bench jacobian`
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _out_path(out: str) -> Path:
    path = Path(out)
    return path if path.suffix == ".json" else path / "simclr.json"


def _block(tree):
    import jax

    return jax.block_until_ready(tree)


def _time(fn, *args, repeats: int) -> dict:
    """Best and median wall time of ``fn(*args)`` after one warm-up call (compilation)."""
    return _time_interleaved({"f": (fn, args)}, repeats)["f"]


def _time_interleaved(jobs: dict, repeats: int) -> dict:
    """Best and median wall time of every ``name: (fn, args)`` job, timed in rounds that run each
    job once, so that a busy spell of the (shared) machine hits all of them alike."""
    for fn, args in jobs.values():
        _block(fn(*args))  # warm-up
    times = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, (fn, args) in jobs.items():
            t0 = time.perf_counter()
            _block(fn(*args))
            times[name].append(time.perf_counter() - t0)
    return {
        name: {"best_s": min(t), "median_s": float(np.median(t)), "repeats": repeats}
        for name, t in times.items()
    }


def _compile(jitted, *args):
    """Compile once; the compiled function is both timed and asked for its FLOPs."""
    return jitted.lower(*args).compile()


def _flops(compiled) -> float | None:
    """FLOPs of a compiled function from XLA's cost analysis."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends have no cost model
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops")
    return float(flops) if flops is not None and flops > 0 else None


def matmul_rate(n: int = 2048, repeats: int = 5) -> dict:
    """The float32 matmul rate of this machine in JAX: best time of an n x n x n product."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = _compile(jax.jit(lambda a, b: jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST)), a, b)
    t = _time(f, a, b, repeats=repeats)
    return {"n": n, "best_s": t["best_s"], "gflops": 2 * n**3 / t["best_s"] / 1e9}


def _stage_jobs(arch, conv_impl, params, batch_stats, views, temperature) -> list[tuple]:
    """(part, compiled forward+backward, args, input shape) for every part of the network."""
    import jax
    import jax.numpy as jnp

    from experiments.cifar.models import ProjectionHead, stage_modules
    from theory.losses import nt_xent

    jobs = []
    x = views
    enc_p, enc_s = params["encoder"], batch_stats["encoder"]
    for name, module in stage_modules(arch, conv_impl=conv_impl):
        p, stats = enc_p[name], enc_s[name]

        def fwd(p, x, module=module, stats=stats):
            out, _ = module.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            return out

        out = fwd(p, x)
        cot = jax.random.normal(jax.random.key(7), out.shape, jnp.float32)
        argnums = (0,) if name == "stem" else (0, 1)  # the stem's input needs no gradient

        def fwd_bwd(p, x, fwd=fwd, cot=cot, argnums=argnums):
            return jax.grad(lambda p, x: jnp.sum(fwd(p, x) * cot), argnums=argnums)(p, x)

        jobs.append((name, _compile(jax.jit(fwd_bwd), p, x), (p, x), tuple(x.shape)))
        x = out

    head = ProjectionHead()
    b = x.shape[0] // 2

    def head_loss(p, h):
        z = head.apply({"params": p}, jnp.mean(h, axis=(1, 2)))
        return nt_xent(z[:b], z[b:], temperature)

    f = _compile(jax.jit(jax.grad(head_loss, argnums=(0, 1))), params["head"], x)
    jobs.append(("head/loss", f, (params["head"], x), tuple(x.shape)))
    return jobs


def prepare_impl(arch, conv_impl, batch, image_size, stages, temperature=0.5) -> dict:
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
    plain = _compile(jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=False)), *step_args)
    augmented = _compile(jax.jit(make_simclr_step(model, tx, temperature=temperature, augment=True)), *step_args)
    views_fn = _compile(jax.jit(lambda k, im: simclr_views(k, im, True)), key, images)
    jobs = {
        "step_no_aug": (plain, step_args),
        "step_aug": (augmented, step_args),
        "augment_only": (views_fn, (key, images)),
    }
    flops = {"step_no_aug": _flops(plain)}
    stage_info = []
    if stages:
        views = simclr_views(key, images, augment=False)
        for part, f, args, shape in _stage_jobs(arch, conv_impl, state.params, state.batch_stats, views, temperature):
            jobs[f"stage:{part}"] = (f, args)
            flops[f"stage:{part}"] = _flops(f)
            stage_info.append((part, shape))
    return {"jobs": jobs, "flops": flops, "stages": stage_info}


def _assemble(prepared: dict, timed: dict, batch: int) -> dict:
    """The JSON record of one formulation from its compiled jobs and their timings."""
    r = {}
    for name in ("step_no_aug", "step_aug", "augment_only"):
        r[name] = {**timed[name], "images_per_s": batch / timed[name]["best_s"]}
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
                "gflop": None if fl is None else fl / 1e9,
                "gflops_per_s": None if fl is None else fl / t["best_s"] / 1e9,
            })
        r["stages"] = rows
    return r


def run_simclr(args) -> int:
    from experiments.cifar.models import ARCHS
    from experiments.runs import environment, write_json

    if args.arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {args.arch!r}")
    if args.batch < 2:
        raise ValueError(f"--batch must be >= 2, got {args.batch}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.matmul_size < 16:
        raise ValueError(f"--matmul-size must be >= 16, got {args.matmul_size}")
    if args.image_size < 8:
        raise ValueError(f"--image-size must be >= 8, got {args.image_size}")
    from experiments.runs import check_writable_file

    check_writable_file(_out_path(args.out), "--out")  # before the benchmark, whose result would be lost
    from experiments.cifar.conv import resolve_impl

    fast_impl = resolve_impl(args.conv_impl)
    import jax

    mm = matmul_rate(args.matmul_size, repeats=max(3, args.steps))
    impls = [fast_impl] if fast_impl == "lax" else [fast_impl, "lax"]
    prepared = {
        impl: prepare_impl(args.arch, impl, args.batch, args.image_size, not args.no_stages) for impl in impls
    }
    all_jobs = {(impl, name): job for impl in impls for name, job in prepared[impl]["jobs"].items()}
    timed = _time_interleaved(all_jobs, args.steps)
    results = {}
    for impl in impls:
        mine = {name: t for (i, name), t in timed.items() if i == impl}
        results[impl] = r = {"conv_impl": impl, **_assemble(prepared[impl], mine, args.batch)}
        if r["step_gflops_per_s"] is not None:
            r["fraction_of_matmul"] = r["step_gflops_per_s"] / mm["gflops"]
    fast, base = results[fast_impl], results["lax"]
    ratio = {
        "step_no_aug": fast["step_no_aug"]["images_per_s"] / base["step_no_aug"]["images_per_s"],
        "step_aug": fast["step_aug"]["images_per_s"] / base["step_aug"]["images_per_s"],
    }
    report = {
        "arch": args.arch,
        "batch": args.batch,
        "views_per_step": 2 * args.batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "backend": jax.default_backend(),
        "conv_impl": args.conv_impl,
        "fast_impl": fast_impl,
        "baseline_impl": "lax",
        "flop_count": "XLA cost analysis of the compiled function (cost_analysis()['flops'])",
        "timing": "best (and median) of --steps rounds; every round runs each measured function of "
                  "every formulation once, interleaved",
        "matmul": mm,
        "results": results,
        "ratio_fast_over_baseline": ratio,
        "env": environment(),
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
        f"{rep['image_size']}x{rep['image_size']}, backend {rep['backend']}, best of {rep['steps']}"
    )
    print(f"matmul {mm['n']}^3 float32: {mm['gflops']:.1f} GFLOP/s")
    for impl, r in rep["results"].items():
        label = f"{impl} (fast)" if impl == rep["fast_impl"] and impl != "lax" else f"{impl} (baseline)"
        print(
            f"  {label:18s} no aug {r['step_no_aug']['images_per_s']:7.1f} img/s | "
            f"with aug {r['step_aug']['images_per_s']:7.1f} img/s | "
            f"augmentation alone {1e3 * r['augment_only']['best_s']:.0f} ms/step "
            f"({100 * r['augment_only']['fraction_of_aug_step']:.0f}% of the aug step) | "
            f"step {_fmt(r['step_gflop'])} GFLOP at {_fmt(r['step_gflops_per_s'])} GFLOP/s = "
            f"{_fmt(None if r.get('fraction_of_matmul') is None else 100 * r['fraction_of_matmul'])}% of matmul"
        )
    ratio = rep["ratio_fast_over_baseline"]
    print(
        f"  fast / baseline: {ratio['step_no_aug']:.2f}x without augmentation, "
        f"{ratio['step_aug']:.2f}x with augmentation"
    )
    impls = list(rep["results"])
    if all("stages" in rep["results"][i] for i in impls):
        header = "  part        " + "".join(f"| {i + ' ms':>12s} {i + ' GF/s':>14s} " for i in impls)
        print(header)
        for k, row in enumerate(rep["results"][impls[0]]["stages"]):
            line = f"  {row['part']:11s} "
            for i in impls:
                r = rep["results"][i]["stages"][k]
                line += f"| {r['fwd_bwd_ms']:12.1f} {_fmt(r['gflops_per_s']):>14s} "
            print(line)
