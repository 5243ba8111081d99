"""`clspec jacobian-fig2a`: every singular value of App. C's J(W_0) in two BatchNorm conventions (Fig. 2a-b).

For a network (ResNet-32 with a K-way linear head, as ``clspec jacobian`` builds it) at random
initialization and, with ``--checkpoint``, at a ``clspec cifar pretrain`` checkpoint's weights (the
head keeps the random draw), on n class-balanced points of a dataset (``clspec jacobian``'s draw):
the full nK x nK Gram G = J J^T of the K outputs in all parameters, in tiles of blocks of points
within ``--budget-gib`` (``theory.jacobian.gram_tiles``; J is never whole: blocks outside the held
panel are recomputed), float32 tiles by default, then all nK eigenvalues and eigenvectors of G in
float64 (LAPACK ``syevr`` on one BLAS thread), so that for every direction i

    sigma_i = sqrt(lambda_i(G)),     alignment_i = (u_i^T y)^2     (y: one-hot clean labels, row i*K + k)

with sum_i alignment_i = ||y||^2 = n. The BatchNorm conventions (``--networks INIT:BN``):

* ``running``: evaluation mode with the network's stored running statistics;
* ``batch``: each BatchNorm's input mean and biased variance over the n points (and spatial
  positions) in one training-mode forward pass of all n points (:func:`batch_statistics`), then held
  fixed as the statistics of evaluation mode, so each output stays a function of its own point (App.
  C's dz(x_i, W)/dW); ``experiments/ledger/checks/fig2a_real.py`` says why this one.

Each network's result is saved under ``OUT/partial/<network>/result.json`` when it is done (a rerun
reuses it, and reuses the Gram tiles of one that was interrupted); ``--evidence FILE`` merges the
finished networks of this run, rounded to 6 significant digits, with the command, commit, date,
machine, seconds and peak RSS of each, into FILE under the key ``n=N`` (``n=N float64`` for float64
tiles). Peak RSS is the process's at the end of that network: run one network per process for a
per-network number (``first_in_process`` says whether it was).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from experiments.analysis.jacobian import (NETWORKS, _file_tag, apply_fn, build_network, load_checkpoint,
                                           load_points, one_blas_thread)
from experiments.common.runs import _to_jsonable, atomic_write_text, atomic_writer, start_run, write_json

INITS, MODES, TILES = ("random", "pretrained"), ("running", "batch"), ("float32", "float64")
TOP = 10  # App. C's information space I: the top-10 directions
DEFAULT_OUT = Path("results/jacobian-fig2a")
FILES = {"config.json": "the settings", "env.json": "commit, versions, command",
         "partial/NETWORK/result.json": "one finished network: sigma, alignment, timing, peak RSS",
         "partial/NETWORK/tile_B_I_J.npy": "the Gram's tiles (G_IJ for blocks of B points), for resuming"}


# ----------------------------------------------------------------------------- BatchNorm statistics


def batch_statistics(module, variables: dict, x) -> dict:
    """The ``batch_stats`` collection holding, for every BatchNorm, the mean and biased variance of its
    input over all points of ``x`` (and the spatial positions) in one training-mode forward pass at
    ``variables``: evaluation mode with them normalizes exactly as training mode does on this batch."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from flax.traverse_util import flatten_dict, unflatten_dict

    def stats(variables, x):
        found = {}

        def record(next_fun, args, kwargs, context):
            if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
                if context.module.axis not in (-1, args[0].ndim - 1):
                    raise ValueError(f"BatchNorm {context.module.path} normalizes axis {context.module.axis}, not the last")
                h = jnp.asarray(args[0], jnp.float32)
                axes = tuple(range(h.ndim - 1))
                mean = jnp.mean(h, axes)
                found["/".join(context.module.path)] = (mean, jnp.maximum(jnp.mean(h * h, axes) - mean**2, 0.0))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            module.apply(variables, x, train=True, mutable=["batch_stats"])
        return found

    found = jax.device_get(jax.jit(stats)(variables, jnp.asarray(x)))
    flat = flatten_dict(variables.get("batch_stats", {}))
    layers = {"/".join(k[:-1]) for k in flat}
    if layers != set(found):
        raise ValueError(f"BatchNorm layers seen ({len(found)}) differ from the batch_stats collection's ({len(layers)})")
    out = {k: np.asarray(found["/".join(k[:-1])][0 if k[-1] == "mean" else 1], dtype=np.asarray(v).dtype)
           for k, v in flat.items()}
    return unflatten_dict(out)


def with_batch_statistics(module, variables: dict, x) -> dict:
    """``variables`` with its running statistics replaced by those of :func:`batch_statistics` on ``x``."""
    return {**variables, "batch_stats": batch_statistics(module, variables, x)}


# ----------------------------------------------------------------------------- one network


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_spectrum(apply, params, x, labels, K: int, *, tiles: str = "float32", budget_bytes: int, block=None,
                  partial: Path | None = None, progress: bool = False, label: str = "") -> dict:
    """All nK singular values of J, the label alignment (u_i^T y)^2 of each left singular vector, Table 4's
    numbers at the top 10, and where the time went (see the module docstring)."""
    import jax.numpy as jnp
    import scipy.linalg
    from tqdm import tqdm

    from theory import jacobian as jac

    if tiles not in TILES:
        raise ValueError(f"tiles must be one of {TILES}, got {tiles!r}")
    t0 = time.perf_counter()
    xj = jnp.asarray(x)
    model = jac.make_model(apply, params, xj[:2])
    if model.K != K:
        raise ValueError(f"the network has {model.K} outputs, the dataset {K} classes")
    jac.check_outputs(model, xj, block=100)
    acc = jnp.float64 if tiles == "float64" else None
    plan = jac.plan_blocks(model, xj, len(x), budget_bytes=budget_bytes, block=block, accumulate=acc)
    plan_s = time.perf_counter() - t0
    order = jac.tile_order(plan.num_blocks, plan.panel)
    name = lambda i, j: f"tile_{plan.block}_{i}_{j}.npy"  # noqa: E731
    done = {}
    if partial is not None:
        partial.mkdir(parents=True, exist_ok=True)
        done = {(i, j): np.load(partial / name(i, j)) for i, j in order if (partial / name(i, j)).exists()}
    resumed = len(done)
    bar = tqdm(total=len(order), initial=resumed, desc=f"{label}: Gram tiles", disable=not progress, file=sys.stderr)
    stats: list = []
    for (i, j), tile in jac.gram_tiles(model, xj, plan, accumulate=acc, skip=frozenset(done), stats=stats):
        if partial is not None:
            with atomic_writer(partial / name(i, j)) as f:
                np.save(f, tile)
        done[(i, j)] = tile
        bar.update()
    bar.close()
    tile_stats = stats[0] if stats else jac.TileStats(0.0, 0.0, 0.0, 0)
    t1 = time.perf_counter()
    G = jac.assemble(done, len(x), K, plan.block).astype(np.float64)
    del done
    y = np.asarray(jac.flatten_labels(labels, K), dtype=np.float64)
    trace, gram_fro, gy = float(np.trace(G)), float(np.linalg.norm(G)), float(np.linalg.norm(G @ y))
    with one_blas_thread():
        # G.T: the same (symmetric) buffer in Fortran order, so LAPACK overwrites it instead of copying it
        lam, U = scipy.linalg.eigh(G.T, overwrite_a=True, check_finite=False, driver="evr")
    del G
    lam, U = lam[::-1], U[:, ::-1]
    coef = U.T @ y
    pi_N = float(np.linalg.norm(y - U[:, :TOP] @ coef[:TOP]))
    del U
    eigh_s = time.perf_counter() - t1
    sigma = np.sqrt(np.clip(lam, 0.0, None))
    s2 = sigma**2
    return dict(
        label=label, n=len(x), K=K, P=model.P, tiles=tiles, plan=plan._asdict(), tiles_resumed=resumed,
        sigma=sigma, alignment_sq=coef**2, lambda_min=float(lam[-1]), trace=trace, gram_fro=gram_fro,
        pi_I=float(np.sqrt(np.sum(coef[:TOP] ** 2))), pi_N=pi_N, y_norm_sq=float(y @ y), ratio=gy / gram_fro,
        tail_fraction=float(np.sum(s2[TOP:]) / np.sum(s2)),
        seconds=dict(plan=plan_s, jacobian=tile_stats.jacobian_s, contract=tile_stats.contract_s,
                     blocks_computed=tile_stats.blocks_computed, assemble_eigh=eigh_s,
                     total=time.perf_counter() - t0),
    )


# ----------------------------------------------------------------------------- the command


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "jacobian-fig2a", help="every singular value of the initial Jacobian, BatchNorm running vs batch statistics "
        "(App. C Fig. 2a-b)",
        description="All nK singular values of J(W_0) (the full nK x nK Gram in tiles, then eigh) and the label "
        "alignment (u_i^T y)^2 of each direction, for random init and a pre-trained checkpoint, with BatchNorm running "
        "statistics or the batch statistics of the n points held fixed. Resumable: a finished network is reused.")
    p.add_argument("--network", choices=NETWORKS, default="resnet32", help="network; default resnet32")
    p.add_argument("--checkpoint", help="clspec cifar pretrain checkpoint (file or run folder) for the 'pretrained' "
                   "networks; default none")
    p.add_argument("--networks", help="comma-separated INIT:BN, INIT in random|pretrained, BN in running|batch; "
                   "default all four with --checkpoint, else random:running,random:batch")
    p.add_argument("--data", help="dataset clspec cifar reads; default ../shared/data/cifar10-jpg.tar.gz")
    p.add_argument("--split", default="test", help="split the n points come from; default test")
    p.add_argument("--n", type=int, default=1000, help="points (class-balanced draw); default 1000")
    p.add_argument("--tiles", choices=TILES, default="float32", help="Gram tile precision; default float32")
    p.add_argument("--budget-gib", type=float, default=4.0, help="memory budget of the Gram tiles; default 4")
    p.add_argument("--block", type=int, help="points per block; default min(50, ceil(n/2)), smaller if the budget needs")
    p.add_argument("--conv-impl", default="auto", help="convolution formulation; default auto (cols on CPU)")
    p.add_argument("--seed", type=int, default=0, help="initialization and point draw; default 0")
    p.add_argument("--out", help=f"results folder; default {DEFAULT_OUT}/<network>-n<n>[-float64]")
    p.add_argument("--evidence", help="merge the finished networks into this JSON file (e.g. "
                   "experiments/ledger/evidence/fig2a_cpu.json); default none")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars; default: bars")
    p.set_defaults(func=run)


def parse_networks(spec: str | None, has_checkpoint: bool) -> list[tuple[str, str]]:
    """``[(init, bn), ...]`` from ``--networks``; ValueError naming the bad entry."""
    if spec is None:
        return [(i, m) for i in (INITS if has_checkpoint else INITS[:1]) for m in MODES]
    out = []
    for item in spec.split(","):
        init, _, bn = item.strip().partition(":")
        if init not in INITS or bn not in MODES:
            raise ValueError(f"--networks entry {item!r} must be INIT:BN with INIT in {INITS} and BN in {MODES}")
        if init == "pretrained" and not has_checkpoint:
            raise ValueError(f"--networks entry {item!r} needs --checkpoint")
        if (init, bn) not in out:
            out.append((init, bn))
    return out


def _validate(args) -> list[tuple[str, str]]:
    if args.n < 2:
        raise ValueError(f"--n must be >= 2, got {args.n}")
    if args.budget_gib <= 0:
        raise ValueError(f"--budget-gib must be positive, got {args.budget_gib}")
    if args.block is not None and args.block < 1:
        raise ValueError(f"--block must be >= 1, got {args.block}")
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint} does not exist")
    return parse_networks(args.networks, args.checkpoint is not None)


def run(args) -> int:
    from experiments.common.precision import use_float64
    from experiments.common.runs import check_writable_dir, check_writable_file, environment, git_commit, mark_started

    use_float64()  # float64 tiles if asked, and the float64 eigh; the networks stay float32
    nets = _validate(args)
    out = Path(args.out) if args.out else DEFAULT_OUT / f"{args.network}-n{args.n}{'-float64' if args.tiles == 'float64' else ''}"
    check_writable_dir(out, "--out")
    if args.evidence:
        check_writable_file(args.evidence, "--evidence")
    x, labels, K, identity = load_points(args.data, args.split, args.n, args.seed)
    module, variables = build_network(args.network, K=K, seed=args.seed, image_shape=x.shape[1:],
                                      conv_impl=args.conv_impl)
    weights = {"random": variables}
    ckpt = None
    if args.checkpoint:
        weights["pretrained"], meta = load_checkpoint(args.checkpoint, args.network, variables)
        if meta.get("kind") != "pretrain":
            raise ValueError(f"--checkpoint {args.checkpoint} is a {meta.get('kind')!r} checkpoint, expected pretrain")
        ckpt = {"path": str(args.checkpoint), "sha1": _file_tag(args.checkpoint), "epoch": meta.get("epoch"),
                "arch": meta.get("arch")}
    config = dict(network=args.network, data=identity, split=args.split, n=args.n, K=K, tiles=args.tiles,
                  budget_gib=args.budget_gib, block=args.block, conv_impl=args.conv_impl, seed=args.seed)
    if (out / "config.json").exists() and json.loads((out / "config.json").read_text()) != json.loads(json.dumps(config)):
        raise ValueError(f"--out {out} holds a run with another configuration: pass another --out")
    start_run(out, config, seed=args.seed, files=FILES)
    mark_started()
    results, first = {}, True
    for init, bn in nets:
        key = f"{init}/{bn}"
        slug = f"{init}-{bn}" if init == "random" else f"ckpt-{ckpt['sha1']}-{bn}"
        done = out / "partial" / slug / "result.json"
        if done.exists():
            results[key] = json.loads(done.read_text())
            print(f"{key}: reusing {done}", file=sys.stderr)
            continue
        t0, before = time.perf_counter(), _peak_rss_mib()
        v = weights[init] if bn == "running" else with_batch_statistics(module, weights[init], x)
        bn_s = time.perf_counter() - t0
        r = full_spectrum(apply_fn(module, v), v["params"], x, labels, K, tiles=args.tiles,
                          budget_bytes=int(args.budget_gib * 2**30), block=args.block, partial=done.parent,
                          progress=args.progress, label=key)
        r["seconds"]["batch_statistics"] = bn_s
        r["seconds"]["total"] += bn_s
        r.update(init=init, bn=bn, checkpoint=ckpt if init == "pretrained" else None, peak_rss_mib=_peak_rss_mib(),
                 peak_rss_before_mib=before, first_in_process=first, commit=git_commit(),
                 date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), loadavg=list(os.getloadavg()),
                 command=command_line(args))
        write_json(done, r)
        results[key] = json.loads(done.read_text())
        first = False
        if args.evidence:  # after every network, so that a kill loses at most the one under way
            merge_evidence(Path(args.evidence), config, results, environment(args.seed), command_line(args))
        print(f"{key}: sigma_1 {r['sigma'][0]:.5g}, tail beyond top {TOP} {r['tail_fraction']:.4f}, "
              f"{r['seconds']['total']:.0f} s, peak RSS {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    write_json(out / "metrics.json", {"config": config, "results": results})
    if args.evidence:
        merge_evidence(Path(args.evidence), config, results, environment(args.seed), command_line(args))
        print(f"evidence: {args.evidence}")
    print(format_summary(results))
    print(f"results: {out / 'metrics.json'}")
    return 0


def command_line(args) -> str:
    """The command that reproduces this run: ``clspec jacobian-fig2a`` with every setting it ran with."""
    opts = [("--network", args.network), ("--checkpoint", args.checkpoint), ("--networks", args.networks),
            ("--data", args.data), ("--split", args.split), ("--n", args.n), ("--tiles", args.tiles),
            ("--budget-gib", args.budget_gib), ("--block", args.block), ("--conv-impl", args.conv_impl),
            ("--seed", args.seed), ("--out", args.out), ("--evidence", args.evidence)]
    return " ".join(["clspec jacobian-fig2a", *(f"{k} {v}" for k, v in opts if v is not None)])


def run_key(config: dict) -> str:
    return f"n={config['n']}" + (" float64" if config["tiles"] == "float64" else "")


def _round(v):
    """Floats (and lists of them) to 6 significant digits, for the evidence file."""
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, list):
        return [_round(w) for w in v]
    if isinstance(v, dict):
        return {k: _round(w) for k, w in v.items()}
    return v


def merge_evidence(path: Path, config: dict, results: dict, env: dict, command: str) -> None:
    """Write this run's finished networks into the evidence file under :func:`run_key` (atomically); networks
    of an earlier run of the same configuration there are kept, a run of another configuration is replaced."""
    import platform

    ev = json.loads(path.read_text()) if path.exists() else {}
    runs = ev.setdefault("runs", {})
    key = run_key(config)
    old = runs.get(key, {})
    nets = dict(old.get("networks", {})) if old.get("config") == json.loads(json.dumps(config)) else {}
    nets.update({k: _round(r) for k, r in results.items()})
    runs[key] = dict(
        config=config, networks=nets, command=command,
        commit=env.get("git_commit"), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine={"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                 "platform": platform.platform(), "jax": env.get("jax"), "backend": env.get("backend")},
    )
    ev["what"] = ("clspec jacobian-fig2a: all nK singular values sigma (descending) of J(W_0) and the label alignment "
                  "(u_i^T y)^2 of each left singular vector, per network INIT/BN; see experiments/analysis/jacobian_fig2a.py")
    atomic_write_text(path, dumps_compact(ev))


def dumps_compact(obj) -> str:
    """JSON with two-space indentation, each list of numbers on one line (10,000 values are 10,000 lines
    otherwise)."""
    import re

    text = json.dumps(_to_jsonable(obj), indent=2)
    return re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def format_summary(results: dict) -> str:
    lines = [f"{'network':<22} {'sigma_1':>10} {'sigma_10':>10} {'median':>10} {'tail>10':>8} {'||Pi_I y||':>10} "
             f"{'sum (u^T y)^2':>13} {'seconds':>8} {'peak MiB':>9}"]
    for k, r in results.items():
        s = np.asarray(r["sigma"])
        lines.append(f"{k:<22} {s[0]:>10.5g} {s[min(TOP, len(s)) - 1]:>10.5g} {np.median(s):>10.4g} "
                     f"{r['tail_fraction']:>8.4f} {r['pi_I']:>10.4f} {np.sum(r['alignment_sq']):>13.4f} "
                     f"{r['seconds']['total']:>8.1f} {r['peak_rss_mib']:>9.0f}")
    return "\n".join(lines)
