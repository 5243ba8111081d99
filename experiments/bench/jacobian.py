"""`clspec bench jacobian`: time and peak memory of the Jacobian tools on this machine (App. C's Jacobian analysis).

In one run, interleaved in rounds (each round runs every job once, so a busy spell of the shared
machine hits all of them alike), each job in its own process so its peak resident memory is its own:

* ``matmul``: the float32 matmul rate (:func:`experiments.bench.timing.matmul_rate`, 2048^3);
* ``gram``: the full output-space Gram J J^T in blocks (:func:`theory.jacobian.gram_tiles`) and
  all nK singular values (float64 ``eigh``, one OpenBLAS thread: see ``_run_job``): first call (compilation included) and a second call,
  the time split into Jacobian blocks, tile products and ``eigh``, and the achieved FLOP/s of the
  tile products as a fraction of the matmul rate of the same run;
* ``topk``: the matrix-free top-k (Lanczos on v -> J J^T v, residuals by k more products);
* ``dense``: ``jax.jacrev`` of the whole batch, J J^T and ``eigh`` (only at n <= --dense-max-n);
* ``nt``: neural-tangents 0.6.5 (``../shared/bench/ntk_nt_bench.py``, ``trace_axes=()``) with the
  Python given by ``--nt-python`` (an old-JAX venv), implementations ``--nt-impls``.

The networks: ``resnet32`` (the CIFAR ResNet-32 + 10-way head, BatchNorm in evaluation mode,
as in the neural-tangents script) and ``mlp`` (3072-256-256-10). Points: CIFAR-10 test images
from ``--data`` when it exists, else Gaussian images (the cost does not depend on the values).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from experiments.common.precision import use_float64
from experiments.common.runs import REPO_ROOT, environment, write_json

DEFAULT_OUT = Path("results/bench/jacobian.json")
NT_SCRIPT = REPO_ROOT.parent / "shared" / "bench" / "ntk_nt_bench.py"
NT_IMPLS = {1: "JACOBIAN_CONTRACTION", 2: "NTK_VECTOR_PRODUCTS", 3: "STRUCTURED_DERIVATIVES"}


def add_parser(sub) -> None:
    p = sub.add_parser("jacobian", help="time/memory of the blocked Gram, matrix-free top-k, jacrev, neural-tangents")
    p.add_argument("--archs", default="mlp,resnet32", help="networks, comma-separated; default mlp,resnet32")
    p.add_argument("--n", default="100,200", help="ResNet-32 point counts, comma-separated; default 100,200")
    p.add_argument("--mlp-n", default="50,200", help="MLP point counts; default 50,200")
    p.add_argument("--k", type=int, default=10, help="top-k of the matrix-free path; default 10")
    p.add_argument("--budget-gib", type=float, default=6.0, help="memory budget of the Gram path; default 6")
    p.add_argument("--block", type=int, help="points per Gram block (default: the largest the budget allows)")
    p.add_argument("--conv-impl", default="auto", help="convolution formulation (auto, lax, shiftdot, hybrid, cols); default auto: cols on CPU for the Jacobian, lax elsewhere")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds; default 1")
    p.add_argument("--calls", type=int, choices=(1, 2), default=2,
                   help="calls per job: 2 = first (with compilation) and a second, timed one; 1 = first only "
                        "(compared first call to first call); default 2")
    p.add_argument("--dense-max-n", type=int, default=50, help="dense jacrev baseline up to this n (mlp); "
                   "ResNet-32 up to n/10 of it; default 50")
    p.add_argument("--no-topk", action="store_true", help="skip the matrix-free path")
    p.add_argument("--topk-max-n", type=int, default=100, help="ResNet-32 matrix-free path up to this n; default 100")
    p.add_argument("--nt-python", help="a Python with neural-tangents 0.6.5 (e.g. /work/venvs/nt/bin/python); "
                   "default: no neural-tangents jobs")
    p.add_argument("--nt-impls", default="1,3", help="neural-tangents implementations (1, 2, 3); default 1,3")
    p.add_argument("--nt-max-n", type=int, default=200, help="neural-tangents up to this n; default 200")
    p.add_argument("--data", help="CIFAR-10 for the points (default ../shared/data/cifar10-jpg.tar.gz if present)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON file; default {DEFAULT_OUT}")
    p.add_argument("--timeout-s", type=float, default=1800, help="per-job time limit; default 1800")
    p.set_defaults(func=run_bench)


def _ints(text: str, name: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from err
    if not vals or min(vals) < 1:
        raise ValueError(f"{name} must be positive integers, got {text!r}")
    return vals


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- worker (one job)


def _points(arch: str, n: int, data: str | None):
    from experiments.cifar.configs import default_data

    data = data or default_data()
    if data and Path(data).exists():
        from experiments.analysis.jacobian import load_points

        x, labels, _, _ = load_points(data, "test", n, 0)
        return x, labels, "cifar10-test"
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, n), "gaussian"


def _model(job):
    import jax.numpy as jnp

    from experiments.analysis.jacobian import apply_fn, build_network
    from theory import jacobian as jac

    x, labels, source = _points(job["arch"], job["n"], job.get("data"))
    impl = job.get("conv_impl", "auto")
    module, variables = build_network(job["arch"], K=10, seed=0, conv_impl=impl)
    model = jac.make_model(apply_fn(module, variables), variables["params"], jnp.asarray(x[:2]))
    return model, jnp.asarray(x), labels, source


def _gram_once(model, x, budget, block):
    import jax.numpy as jnp

    from theory import jacobian as jac

    t0 = time.perf_counter()
    plan = jac.plan_blocks(model, x, len(x), budget_bytes=budget, block=block)
    t_plan = time.perf_counter() - t0
    stats = []
    tiles = dict(jac.gram_tiles(model, x, plan, stats=stats))
    G = jac.assemble(tiles, len(x), model.K, plan.block)
    del tiles
    t1 = time.perf_counter()
    sigma = np.linalg.eigvalsh(G.astype(np.float64))
    t_eigh = time.perf_counter() - t1
    total = time.perf_counter() - t0
    s = stats[0]
    del jnp
    full_flop = 2.0 * (len(x) * model.K) ** 2 * model.P  # the whole J J^T product, every tile counted
    return dict(
        total_s=total, plan_s=t_plan, jacobian_s=s.jacobian_s, contract_s=s.contract_s, eigh_s=t_eigh,
        other_s=total - t_plan - s.jacobian_s - s.contract_s - t_eigh,
        contract_flop=s.contract_flop, contract_gflops=s.contract_flop / s.contract_s / 1e9,
        full_product_flop=full_flop, full_product_gflops=full_flop / s.contract_s / 1e9,
        blocks_computed=s.blocks_computed, plan=plan._asdict(),
        gram_trace=float(np.trace(G, dtype=np.float64)), gram_fro=float(np.linalg.norm(G.astype(np.float64))),
        num_singular_values=int(len(sigma)), sigma_max=float(np.sqrt(max(sigma[-1], 0.0))),
    )


def _worker(job: dict) -> dict:
    import jax

    kind = job["kind"]
    if kind == "matmul":
        from experiments.bench.timing import matmul_rate

        return matmul_rate(2048, repeats=5)
    if kind == "gram":
        model, x, _, source = _model(job)
        first = _gram_once(model, x, int(job["budget_gib"] * 2**30), job.get("block"))
        second = _gram_once(model, x, int(job["budget_gib"] * 2**30), job.get("block")) if job.get("calls", 2) > 1 else None
        return dict(first_call=first, second_call=second or first, points=source, P=model.P,
                    calls=job.get("calls", 2))
    if kind == "topk":
        from theory import jacobian_lanczos as lz

        use_float64()
        model, x, _, source = _model(job)
        t0 = time.perf_counter()
        mv = lz.gram_matvec(model, x, min(len(x), 100))
        lam, V, res = lz.lanczos(mv, len(x) * model.K, job["k"], key=jax.random.PRNGKey(0))
        total = time.perf_counter() - t0
        return dict(total_s=total, top_sigma=np.sqrt(np.clip(lam, 0, None)).tolist(),
                    relative_residuals=(res / lam[0]).tolist(), points=source, P=model.P)
    if kind == "dense":
        model, x, _, source = _model(job)
        t0 = time.perf_counter()
        J = jax.jit(jax.jacrev(lambda t: model.f(t, x)))(model.theta).reshape(len(x) * model.K, model.P)
        G = np.asarray(J @ J.T)
        del J
        sigma = np.linalg.eigvalsh(G.astype(np.float64))
        return dict(total_s=time.perf_counter() - t0, gram_trace=float(np.trace(G, dtype=np.float64)),
                    num_singular_values=int(len(sigma)), points=source, P=model.P)
    raise ValueError(f"unknown job kind {kind!r}")


def worker_main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    t0 = time.perf_counter()
    out = _worker(job)
    out.update(job=job, wall_s=time.perf_counter() - t0, peak_rss_mib=_peak_mib())
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# ----------------------------------------------------------------------------- driver


def _run_job(job: dict, args) -> dict:
    env = dict(os.environ)
    if job["kind"] == "nt":
        cmd = [args.nt_python, str(NT_SCRIPT), "--n", str(job["n"]), "--impl", str(job["impl"]),
               "--repeats", str(args.calls - 1)]
        cwd = str(NT_SCRIPT.parent)
        env.pop("PYTHONPATH", None)
    else:
        cmd = [sys.executable, "-m", "experiments.bench.jacobian", "--worker", json.dumps(job)]
        cwd = str(REPO_ROOT)
        # numpy's eigh right after XLA's tile products: XLA's Eigen threads are still spinning and
        # two-threaded OpenBLAS then took 6.5 s instead of 0.05 s for n = 100 (2 shared cores);
        # one OpenBLAS thread: 0.05 s (nK = 1,000) and 0.35 s (nK = 2,000), every time
        env["OPENBLAS_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        return dict(job=job, error=f"timed out after {args.timeout_s} s")
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ") or l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(job=job, error=f"exit {proc.returncode}: {tail[:300]}", process_wall_s=wall)
    res = json.loads(lines[-1].removeprefix("RESULT "))
    res.update(job=job, process_wall_s=wall)
    return res


def _jobs(args) -> list[dict]:
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    ns = _ints(args.n, "--n")
    impls = _ints(args.nt_impls, "--nt-impls")
    for a in archs:
        if a not in ("mlp", "resnet32"):
            raise ValueError(f"--archs must name mlp or resnet32, got {a!r}")
    mlp_ns = _ints(args.mlp_n, "--mlp-n")
    # The comparisons that matter first (the machine may be busy for longer than planned):
    # ResNet-32 Gram beside neural-tangents at each n, then the matrix-free and dense jobs, then the MLP.
    jobs = [dict(kind="matmul")]
    later = []
    for arch in archs:
        for n in (ns if arch == "resnet32" else mlp_ns):
            base = dict(arch=arch, n=n, data=args.data, conv_impl=args.conv_impl)
            first = jobs if arch == "resnet32" else later
            first.append(dict(kind="gram", budget_gib=args.budget_gib, block=args.block, calls=args.calls, **base))
            if arch == "resnet32" and args.nt_python and n <= args.nt_max_n:
                # JACOBIAN_CONTRACTION holds J whole (3.7 GB at n = 200): only up to n = 100
                first += [dict(kind="nt", impl=i, arch=arch, n=n) for i in impls if i != 1 or n <= 100]
            if not args.no_topk and (arch == "mlp" or n <= args.topk_max_n):
                later.append(dict(kind="topk", k=args.k, **base))
            if n <= (args.dense_max_n if arch == "mlp" else max(1, args.dense_max_n // 10)):
                later.append(dict(kind="dense", **base))
    return jobs + later + [dict(kind="matmul")]


def _key(job):
    return (job["kind"], job.get("arch"), job.get("n"), job.get("impl"))


def _seconds(r: dict) -> float | None:
    """The steady-state time of a result (second call for ours, neural-tangents' median)."""
    if "error" in r:
        return None
    if r["job"]["kind"] == "gram":
        return r["second_call"]["total_s"]
    if r["job"]["kind"] == "nt":
        return r.get("median_s") or r.get("first_call_incl_compile_s")
    if r["job"]["kind"] == "matmul":
        return r.get("best_s")
    return r.get("total_s")


def summarize(results: list[dict]) -> dict:
    """Best time per job over rounds, ratios against dense jacrev and neural-tangents' best."""
    best: dict = {}
    for r in results:
        k = _key(r["job"])
        s = _seconds(r)
        if s is not None and (k not in best or s < _seconds(best[k])):
            best[k] = r
    rate = max((r["gflops"] for k, r in best.items() if k[0] == "matmul"), default=None)
    rows = []
    for (kind, arch, n, impl), r in sorted(best.items(), key=lambda kv: (str(kv[0][1]), kv[0][2] or 0, kv[0][0])):
        if kind == "matmul":
            continue
        row = dict(kind=kind, arch=arch, n=n, impl=NT_IMPLS.get(impl) if impl else None, seconds=_seconds(r),
                   peak_rss_mib=r.get("peak_rss_mib"))
        if kind == "gram":
            sc = r["second_call"]
            full = sc.get("full_product_gflops")
            row.update(first_call_s=r["first_call"]["total_s"], plan_s=sc["plan_s"], jacobian_s=sc["jacobian_s"],
                       contract_s=sc["contract_s"], eigh_s=sc["eigh_s"], other_s=sc.get("other_s"),
                       contract_gflops=sc["contract_gflops"],
                       contract_fraction_of_matmul=(sc["contract_gflops"] / rate) if rate else None,
                       full_product_fraction_of_matmul=(full / rate) if rate and full else None,
                       num_singular_values=sc["num_singular_values"], plan=sc["plan"])
            dense = best.get(("dense", arch, n, None))
            if dense:
                row["speedup_vs_dense"] = _seconds(dense) / row["seconds"]
            nts = [v for k, v in best.items() if k[0] == "nt" and k[1] == arch and k[2] == n]
            if nts:
                nt_best = min(nts, key=_seconds)
                row["nt_best_impl"] = nt_best.get("impl_name")
                row["nt_best_s"] = _seconds(nt_best)
                row["speedup_vs_nt_best"] = _seconds(nt_best) / row["seconds"]
                row["speedup_vs_nt_first_call"] = nt_best.get("first_call_incl_compile_s") / row["first_call_s"]
        if kind == "nt":
            row["first_call_s"] = r.get("first_call_incl_compile_s")
        if kind == "topk":
            row["max_relative_residual"] = max(r["relative_residuals"])
        rows.append(row)
    return dict(matmul_gflops=rate, rows=rows)


def _print_summary(summary: dict) -> None:
    print(f"float32 matmul rate (2048^3, best of 5, this run): {summary['matmul_gflops']:.1f} GFLOP/s")
    print(f"{'job':<30} {'n':>5} {'time s':>9} {'1st call s':>10} {'peak MiB':>9}  notes")
    for r in summary["rows"]:
        name = f"{r['kind']} {r['arch']}" + (f" {r['impl']}" if r.get("impl") else "")
        notes = []
        if r["kind"] == "gram":
            notes.append(f"compile+plan {r['plan_s']:.1f}s + rows {r['jacobian_s']:.1f}s + tiles {r['contract_s']:.1f}s "
                         f"+ eigh {r['eigh_s']:.1f}s + rest {r['other_s'] or 0:.1f}s")
            notes.append(f"tiles {r['contract_gflops']:.1f} GFLOP/s = {r['contract_fraction_of_matmul']:.2f} x matmul "
                         f"(the upper-triangle FLOP done; the full 2(nK)^2 P product over the tile time: "
                         f"{r['full_product_fraction_of_matmul'] or 0:.2f} x)")
            if "speedup_vs_dense" in r:
                notes.append(f"{r['speedup_vs_dense']:.2f}x vs dense jacrev")
            if "speedup_vs_nt_best" in r:
                notes.append(f"{r['speedup_vs_nt_best']:.2f}x vs NT best ({r['nt_best_impl']}, {r['nt_best_s']:.1f}s); "
                             f"first calls {r['speedup_vs_nt_first_call']:.2f}x")
        if r["kind"] == "topk":
            notes.append(f"max residual / lambda_1 = {r['max_relative_residual']:.1e}")
        first = r.get("first_call_s")
        print(f"{name:<30} {r['n']:>5} {r['seconds']:>9.2f} {first if first is None else round(first, 2)!s:>10} "
              f"{r['peak_rss_mib'] or 0:>9.0f}  {'; '.join(notes)}")


def run_bench(args) -> int:
    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    if args.nt_python and not Path(args.nt_python).exists():
        raise FileNotFoundError(f"--nt-python {args.nt_python} does not exist")
    if args.nt_python and not NT_SCRIPT.exists():
        raise FileNotFoundError(f"the neural-tangents script {NT_SCRIPT} does not exist")
    jobs = _jobs(args)
    out = Path(args.out)
    results = []
    t0 = time.perf_counter()
    for rnd in range(args.rounds):
        for job in jobs:
            print(f"round {rnd + 1}/{args.rounds}: {job['kind']} {job.get('arch', '')} n={job.get('n', '')} "
                  f"{NT_IMPLS.get(job.get('impl'), '')} ({time.perf_counter() - t0:.0f} s so far)",
                  file=sys.stderr, flush=True)
            r = _run_job(job, args)
            r["round"] = rnd
            if "error" in r:
                print(f"  failed: {r['error']}", file=sys.stderr)
            results.append(r)
            # written after every job, so a run stopped early keeps what it measured
            write_json(out, dict(partial=True, results=results, command=" ".join(sys.argv)))
    summary = summarize(results)
    load = os.getloadavg()
    report = dict(summary=summary, results=results, env=environment(), loadavg_at_end=load,
                  shared_machine_note="measured on a machine shared with other jobs: compare ratios within this run",
                  command=" ".join(sys.argv), cpus=os.cpu_count())
    write_json(out, report)
    _print_summary(summary)
    print(f"load average at the end (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    print("usage: clspec bench jacobian --help", file=sys.stderr)
    sys.exit(2)
