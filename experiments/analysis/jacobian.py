"""`clspec jacobian`: App. C's Jacobian analysis of a CIFAR network (Fig. 2a-b, Table 4).

For a network (the ResNet-32 CIFAR variant or an MLP, with a K-way linear head, BatchNorm in
evaluation mode) at random initialization and, with ``--checkpoint``, at the weights of a
``clspec cifar pretrain`` (encoder; the head keeps the random initialization's draw) or
``clspec cifar train`` checkpoint, on n points of a dataset:

* ``--method gram``: the full nK x nK Gram J J^T (float64 accumulation), all nK singular values,
  numerical rank and density summaries (Fig. 2a histogram, Fig. 2b |u_i^T y| against sigma_i);
* ``--method lanczos``: the matrix-free top-k (Lanczos on v -> J J^T v) with residuals, ||J J^T||_F
  by deflated Hutchinson; ``auto`` picks gram when nK <= 4,000;

and Table 4's ||Pi_I(y)||, ||Pi_N(y)||, ||J J^T y|| / ||J J^T||_F (top-k information space,
y the one-hot clean labels) beside the paper's numbers. ||Pi_I||^2 + ||Pi_N||^2 = n is printed.

Resumable: Gram tiles and Lanczos states are saved under ``OUT/partial/`` as they are computed;
rerunning the same command skips what is there (a changed configuration is refused).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from experiments.common.precision import use_float64
from experiments.common.runs import REPO_ROOT, atomic_writer, start_run, write_json

NETWORKS = ("resnet32", "mlp", "tiny")  # tiny: the 2-layer test ResNet of experiments.cifar.models
METHODS = ("auto", "gram", "lanczos")
DEFAULT_OUT = Path("results/jacobian")
GRAM_MAX_DIM = 4000

# App. C Table 4 (ResNet-32, 1,000 random CIFAR-10 points, top-10 singular directions).
PAPER_TABLE4 = {
    "SimCLR 1000 ep": {"pi_I": 10.063, "pi_N": 29.979, "ratio": 3.184},
    "SimCLR 100 ep": {"pi_I": 10.036, "pi_N": 29.988, "ratio": 3.175},
    "random init": {"pi_I": 10.014, "pi_N": 29.995, "ratio": 3.055},
}


# ----------------------------------------------------------------------------- networks


def _mlp_module(K: int):
    import flax.linen as nn
    import jax.numpy as jnp

    class MLP(nn.Module):
        """Flatten, two ReLU layers of 256 units, a linear head to K outputs."""

        @nn.compact
        def __call__(self, x, train: bool = False):
            h = x.reshape(x.shape[0], -1)
            for i in range(2):
                h = nn.relu(nn.Dense(256, param_dtype=jnp.float32, name=f"fc{i + 1}")(h))
            return nn.Dense(K, param_dtype=jnp.float32, name="linear")(h)

    return MLP()


def jacobian_conv_impl(conv_impl: str) -> str:
    """The convolution formulation for Jacobian work: ``"auto"`` is ``"cols"`` on CPU.

    The rows of J are per-point kernel gradients, K of them per forward pass. Measured for one
    25-point block of ResNet-32 (K = 10, jax 0.10.2, 2 cores, interleaved in one process,
    best of 3 wall seconds): lax 4.04, hybrid 3.52, shiftdot 2.42 (1.45x over hybrid, the training
    default; hybrid leaves the 16-channel stage to XLA's convolution). A profile of the shiftdot
    block then showed a third of its time in assembling each layer's k*k per-tap gradients into
    the kernel (JAX transposes each tap's indexing into a zero-padded whole kernel and sums the
    k*k of them): ``"cols"`` takes the kernel gradient of a layer as one product with the im2col
    windows of the point instead. Same machine later (2026-12-01 19:50 UTC, quiet, one process per
    measurement): a 50-point block lowered in 0.54 s instead of 0.91, compiled in 3.34 s instead of
    3.37 and ran in 2.17 s instead of 2.49 (25 points: 0.59 / 3.34 / 1.10 s against 0.98 / 3.90 /
    1.34). Elsewhere ``"auto"`` is ``"lax"``.
    """
    from experiments.cifar.conv import resolve_impl

    if conv_impl == "auto":
        return "cols" if resolve_impl("auto") != "lax" else "lax"
    return resolve_impl(conv_impl)


def build_network(network: str, *, K: int, seed: int, image_shape=(32, 32, 3), conv_impl: str = "auto"):
    """``(module, variables)``: ``network`` with a K-way head at the random initialization of ``seed``
    (convolutions in :func:`jacobian_conv_impl`'s formulation; the function does not depend on it)."""
    import jax
    import jax.numpy as jnp

    conv_impl = jacobian_conv_impl(conv_impl)
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    if network == "mlp":
        module = _mlp_module(K)
    else:
        from experiments.cifar.models import Classifier, make_encoder

        module = Classifier(make_encoder(network, conv_impl=conv_impl), num_classes=K)
    x0 = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
    variables = module.init(jax.random.PRNGKey(seed), x0, train=False)
    return module, jax.device_get(dict(variables))


def apply_fn(module, variables):
    """``apply(params, x) -> (n, K)`` with BatchNorm statistics held fixed (evaluation mode)."""
    rest = {k: v for k, v in variables.items() if k != "params"}

    def apply(params, x):
        return module.apply({"params": params, **rest}, x, train=False)

    return apply


def load_checkpoint(path: str | Path, network: str, variables: dict) -> tuple[dict, dict]:
    """The variables of ``network`` with a checkpoint's weights: a pretrain checkpoint gives the
    encoder (the head keeps ``variables``' draw), a train checkpoint the whole classifier."""
    from experiments.cifar import checkpoint as ckpt

    state, meta = ckpt.load_raw(path)
    if network == "mlp":
        raise ValueError(f"--checkpoint {path}: clspec cifar checkpoints hold a ResNet, not network 'mlp'")
    ckpt.check_arch(meta, network, path)
    kind = meta.get("kind")
    if kind == "pretrain":
        try:
            sub = {"params": state["params"]["encoder"], "batch_stats": state["batch_stats"]["encoder"]}
        except (KeyError, TypeError) as err:
            raise ValueError(f"--checkpoint {path} has no encoder weights ({err})") from err
        target = {"params": variables["params"]["encoder"], "batch_stats": variables["batch_stats"]["encoder"]}
        enc = ckpt.restore_into(target, sub, path)
        out = {
            "params": {**variables["params"], "encoder": enc["params"]},
            "batch_stats": {**variables["batch_stats"], "encoder": enc["batch_stats"]},
        }
    elif kind == "train":
        target = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
        try:
            sub = {"params": state["params"], "batch_stats": state["batch_stats"]}
        except (KeyError, TypeError) as err:
            raise ValueError(f"--checkpoint {path} has no classifier weights ({err})") from err
        out = ckpt.restore_into(target, sub, path)
        if np.shape(out["params"]["linear"]["kernel"])[-1] != np.shape(variables["params"]["linear"]["kernel"])[-1]:
            raise ValueError(f"--checkpoint {path} has a head of another width than K")
    else:
        raise ValueError(f"--checkpoint {path} is a {kind!r} checkpoint, expected pretrain or train")
    return out, meta


def load_points(data: str | None, split: str, n: int, seed: int):
    """``(x float32 NHWC in [0, 1], labels, K, identity)``: a class-balanced draw of n points of
    ``split``; ``identity`` is what config.json records about the data (the CIFAR commands'
    :func:`experiments.cifar.data.data_identity`, with the image count of ``split``)."""
    from experiments.cifar.augment import normalize
    from experiments.cifar.configs import default_data
    from experiments.cifar.data import data_identity, load_dataset

    data = data or default_data()
    if data is None:
        raise FileNotFoundError("--data is needed: the shared CIFAR-10 copy does not exist here")
    full = load_dataset(data, split, progress=False)
    if n > len(full):
        raise ValueError(f"--n {n} is larger than the {len(full)} points of {data} ({split})")
    sub = load_dataset(data, split, limit=n, seed=seed, progress=False) if n < len(full) else full
    identity = data_identity(data, full)
    del identity["train_images"]
    identity.update(split=split, split_images=len(full))
    return np.asarray(normalize(sub.images)), np.asarray(sub.labels), sub.num_classes, identity


# ----------------------------------------------------------------------------- one analysis


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_writer(path) as f:
        np.save(f, arr)


def one_blas_thread():
    """A context in which LAPACK (``eigh`` of the Gram) runs on one OpenBLAS thread.

    Right after XLA's tile products, XLA's Eigen threads are still spinning, and a two-threaded
    OpenBLAS ``eigh`` then took 6.5 s instead of 0.05 s at nK = 1,000 (2 shared cores; one thread:
    0.05 s, and 0.35 s at nK = 2,000, every time). ``clspec bench jacobian`` starts its workers with
    ``OPENBLAS_NUM_THREADS=1`` for the same reason; in this process the library is already loaded, so
    the limit is set through threadpoolctl.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def analyse(
    apply, params, x, labels, K: int, *, method: str, k: int, budget_bytes: int, block: int | None,
    steps: int | None, fro_samples: int, seed: int, partial: Path, progress: bool, label: str,
) -> dict:
    """Table 4's numbers and the spectrum of one network (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from theory import jacobian as jac
    from theory import jacobian_lanczos as lz

    model = jac.make_model(apply, params, jnp.asarray(x[:2]))
    if model.K != K:
        raise ValueError(f"the network has {model.K} outputs, the dataset {K} classes")
    dim = len(x) * K
    xj = jnp.asarray(x)
    jac.check_outputs(model, xj, block=50)
    y = np.asarray(jac.flatten_labels(labels, K), dtype=np.float64)
    partial.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out: dict = {"label": label, "n": len(x), "K": K, "P": model.P, "method": method, "k": k}
    if method == "gram":
        plan = jac.plan_blocks(model, xj, len(x), budget_bytes=budget_bytes, block=block, accumulate=jnp.float64)
        order = jac.tile_order(plan.num_blocks, plan.panel)
        tiles = {}
        for i, j in order:
            f = partial / f"tile_{plan.block}_{i}_{j}.npy"
            if f.exists():
                tiles[(i, j)] = np.load(f)
        bar = tqdm(total=len(order), initial=len(tiles), desc=f"{label}: Gram tiles", disable=not progress,
                   file=sys.stderr)
        for (i, j), tile in jac.gram_tiles(model, xj, plan, accumulate=jnp.float64, skip=frozenset(tiles)):
            _save_npy(partial / f"tile_{plan.block}_{i}_{j}.npy", tile)
            tiles[(i, j)] = tile
            bar.update()
        bar.close()
        G = jac.assemble(tiles, len(x), K, plan.block)
        with one_blas_thread():
            spec = jac.spectrum(jnp.asarray(G))
        sigma, U = np.asarray(spec.sigma), np.asarray(spec.U)
        Gy = G @ y
        fro = float(np.linalg.norm(G))
        out.update(
            plan=plan._asdict(), sigma=sigma, alignment=np.asarray(jac.direction_alignment(U, y)),
            numerical_rank=int(jac.numerical_rank(jnp.asarray(sigma), dim, float(np.finfo(np.float64).eps))),
            rank_rule="sigma_i > sigma_1 * sqrt(nK * eps), eps of float64 (Gram accumulated in float64)",
            summary=jac.spectral_summary(sigma, top=k), gram_fro=fro, gram_fro_se=0.0,
        )
        U_top = U[:, :k]
        lam_top = sigma[:k] ** 2
    else:
        matvec = lz.gram_matvec(model, xj, block or min(len(x), 100))
        steps = min(dim, steps or max(3 * k, k + 20))
        state_file = partial / "lanczos.npz"
        if state_file.exists():
            z = np.load(state_file)
            state = lz.LanczosState(z["Q"], z["alpha"], z["beta"])
        else:
            state = lz.lanczos_start(dim, key=jax.random.PRNGKey(seed))
        total = steps + k + fro_samples + 1
        bar = tqdm(total=total, initial=len(state.alpha), desc=f"{label}: J J^T v products",
                   disable=not progress, file=sys.stderr)
        while len(state.alpha) < steps:
            state = lz.lanczos_step(state, matvec)
            with atomic_writer(state_file) as f:
                np.savez(f, Q=state.Q, alpha=state.alpha, beta=state.beta)
            bar.update()

        def counted(v):
            r = matvec(v)
            bar.update()
            return r

        lam_top, U_top = lz.ritz_pairs(state, k)
        res, _ = lz.ritz_residuals(counted, lam_top, U_top)
        fro, fro_se = lz.gram_fro_deflated(counted, U_top, lam_top, key=jax.random.PRNGKey(seed + 1),
                                            samples=fro_samples)
        Gy = counted(y)
        bar.close()
        sigma = np.sqrt(np.clip(lam_top, 0.0, None))
        out.update(
            sigma=sigma, alignment=np.abs(U_top.T @ y), residuals=res,
            relative_residuals=res / lam_top[0], lanczos_steps=steps, gram_fro=fro, gram_fro_se=fro_se,
            fro_method=f"deflated Hutchinson, {fro_samples} Rademacher samples",
        )
    pi_I, pi_N = (float(v) for v in jac.label_projections(jnp.asarray(U_top), jnp.asarray(y)))
    out.update(
        pi_I=pi_I, pi_N=pi_N, pi_sum_sq=pi_I**2 + pi_N**2, ratio=float(np.linalg.norm(Gy)) / fro,
        top_k_sigma=sigma[:k],
        seconds=time.perf_counter() - t0,
    )
    return out


# ----------------------------------------------------------------------------- the command


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("jacobian", help="Jacobian spectrum and label alignment (App. C, Fig. 2a-b, Table 4)")
    p.add_argument("--network", choices=NETWORKS, default="resnet32", help="network; default resnet32")
    p.add_argument("--checkpoint", help="clspec cifar pretrain/train checkpoint (file or run folder) "
                   "compared with random init; default: random init only")
    p.add_argument("--data", help="dataset clspec cifar reads (default ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--split", default="test", help="split the n points come from; default test")
    p.add_argument("--n", type=int, default=200, help="points (class-balanced draw); default 200")
    p.add_argument("--k", type=int, default=10, help="top singular directions (App. C's I); default 10")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help=f"gram (full spectrum), lanczos (matrix-free top-k), auto: gram if nK <= {GRAM_MAX_DIM}; default auto")
    p.add_argument("--budget-gib", type=float, default=4.0, help="memory budget of the Gram path; default 4")
    p.add_argument("--block", type=int, help="points per block (default: min(50, ceil(n/2)), smaller if the budget needs; lanczos 100)")
    p.add_argument("--steps", type=int, help="Lanczos steps (default max(3k, k+20))")
    p.add_argument("--fro-samples", type=int, default=16, help="Hutchinson samples for ||JJ^T||_F (lanczos); default 16")
    p.add_argument("--conv-impl", default="auto", help="convolution formulation (auto, lax, shiftdot, hybrid, cols); default auto: cols on CPU, lax elsewhere")
    p.add_argument("--seed", type=int, default=0, help="initialization and point draw; default 0")
    p.add_argument("--out", help=f"results folder; default {DEFAULT_OUT}/<network>-n<n>")
    p.add_argument("--figures", default="figures", help="folder for the Fig. 2a/2b PNGs; default figures")
    p.add_argument("--evidence", help="also write the metrics with the command, commit, date and machine to this "
                   "JSON file (e.g. experiments/ledger/evidence/jacobian_cpu.json, read by clspec verify); default none")
    p.add_argument("--skip-random", action="store_true",
                   help="analyse only --checkpoint now (the random init's result is reused from --out if present, "
                        "e.g. computed by another process); default: both")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def _validate(args) -> None:
    if args.n < 2:
        raise ValueError(f"--n must be >= 2, got {args.n}")
    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.budget_gib <= 0:
        raise ValueError(f"--budget-gib must be positive, got {args.budget_gib}")
    if args.block is not None and args.block < 1:
        raise ValueError(f"--block must be >= 1, got {args.block}")
    if args.fro_samples < 2:
        raise ValueError(f"--fro-samples must be >= 2, got {args.fro_samples}")
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint} does not exist")


def _file_tag(path) -> str:
    """A short content tag of a checkpoint file (size and SHA-1 of its bytes)."""
    import hashlib

    from experiments.cifar.checkpoint import CHECKPOINT

    p = Path(path)
    p = p / CHECKPOINT if p.is_dir() else p
    return hashlib.sha1(p.read_bytes()).hexdigest()[:12]


def _jsonable(d: dict) -> dict:
    def conv(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, dict):
            return {k: conv(w) for k, w in v.items()}
        if isinstance(v, np.generic):
            return v.item()
        return v

    return {k: conv(v) for k, v in d.items() if v is not None}


def run(args) -> int:
    use_float64()  # float64 Gram accumulation and Lanczos; networks stay float32
    _validate(args)
    x, labels, K, identity = load_points(args.data, args.split, args.n, args.seed)
    dim = args.n * K
    if args.k >= dim:
        raise ValueError(f"--k {args.k} must be smaller than nK = {dim}")
    method = args.method if args.method != "auto" else ("gram" if dim <= GRAM_MAX_DIM else "lanczos")
    module, variables = build_network(args.network, K=K, seed=args.seed, image_shape=x.shape[1:],
                                      conv_impl=args.conv_impl)
    if args.skip_random and not args.checkpoint:
        raise ValueError("--skip-random needs --checkpoint")
    inits = {"random init": variables}
    if args.checkpoint:
        ckpt_vars, meta = load_checkpoint(args.checkpoint, args.network, variables)
        inits[f"{meta.get('kind')} checkpoint"] = ckpt_vars
    out = Path(args.out) if args.out else DEFAULT_OUT / f"{args.network}-n{args.n}"
    config = dict(network=args.network, checkpoint=str(args.checkpoint) if args.checkpoint else None,
                  data=identity, split=args.split, n=args.n, K=K, k=args.k, method=method,
                  budget_gib=args.budget_gib, block=args.block, steps=args.steps, fro_samples=args.fro_samples,
                  conv_impl=args.conv_impl, seed=args.seed)
    cfg_file = out / "config.json"
    same = {k_: v_ for k_, v_ in config.items() if k_ != "checkpoint"}  # a checkpoint may be added later
    if cfg_file.exists():
        old = {k_: v_ for k_, v_ in json.loads(cfg_file.read_text()).items() if k_ != "checkpoint"}
        if old != json.loads(json.dumps(same)):
            raise ValueError(f"--out {out} holds a run with another configuration: pass another --out")
    from theory import jacobian as jac
    import jax.numpy as jnp

    for name, v in inits.items():  # every network is checked before any work starts
        model = jac.make_model(apply_fn(module, v), v["params"], jnp.asarray(x[:2]))
        if model.K != K:
            raise ValueError(f"the {name} network has {model.K} outputs, the dataset {K} classes")
        try:
            jac.check_outputs(model, jnp.asarray(x), block=100)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    start_run(out, config, seed=args.seed)
    results = {}
    for name, v in inits.items():
        slug = "random" if name == "random init" else "ckpt-" + _file_tag(args.checkpoint)
        done = out / "partial" / slug / "result.json"
        if done.exists():  # this network was finished by an earlier run of the same configuration
            results[name] = json.loads(done.read_text())
            print(f"{name}: reusing {done}", file=sys.stderr)
            continue
        if name == "random init" and args.skip_random:
            print(f"{name}: skipped (--skip-random; no {done} yet)", file=sys.stderr)
            continue
        results[name] = _jsonable(analyse(
            apply_fn(module, v), v["params"], x, labels, K, method=method, k=args.k,
            budget_bytes=int(args.budget_gib * 2**30), block=args.block, steps=args.steps,
            fro_samples=args.fro_samples, seed=args.seed, partial=out / "partial" / slug,
            progress=args.progress, label=name,
        ))
        write_json(done, results[name])
    metrics = {"config": config, "paper_table4": PAPER_TABLE4,
               "results": results}
    write_json(out / "metrics.json", metrics)
    if args.evidence:
        write_json(args.evidence, evidence_record(metrics, out))
    from experiments.analysis.jacobian_plots import plot_fig2

    figs = plot_fig2(metrics, Path(args.figures), prefix=f"jacobian_{args.network}_n{args.n}")
    print(format_table(metrics))
    for f in figs:
        print(f"figure: {f}")
    print(f"results: {out / 'metrics.json'}")
    return 0


def evidence_record(metrics: dict, out: Path) -> dict:
    """The metrics with what produced them: command line, commit, date, machine, peak memory."""
    import os
    import platform
    import resource
    from datetime import datetime, timezone

    from experiments.common.runs import environment, git_commit

    env = environment()
    return {
        "command": "clspec " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("cli.py") else " ".join(sys.argv),
        "commit": git_commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "loadavg": os.getloadavg(), "jax": env["jax"],
                    "backend": env["backend"]},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": {k: v.get("seconds") for k, v in metrics["results"].items()},
        "results_folder": str(out), "metrics": metrics,
        "note": "machine shared with other jobs while it ran; the networks' results were resumed across runs "
                "when the folder's partial/ holds them",
    }


def format_table(metrics: dict) -> str:
    """Table 4 rows for each analysed network beside the paper's."""
    lines = [f"{'network':<22} {'||Pi_I(y)||':>12} {'||Pi_N(y)||':>12} {'sum of squares':>15} "
             f"{'||JJ^Ty||/||JJ^T||_F':>21}  top sigma / residuals"]
    for name, r in metrics["results"].items():
        extra = f"sigma_1 = {r['sigma'][0]:.4g}"
        if "relative_residuals" in r:
            extra += ", max residual / lambda_1 = " + f"{max(r['relative_residuals']):.2e}"
        if "numerical_rank" in r:
            extra += f", numerical rank {r['numerical_rank']} of {r['n'] * r['K']}"
        lines.append(f"{name:<22} {r['pi_I']:>12.3f} {r['pi_N']:>12.3f} {r['pi_sum_sq']:>15.3f} "
                     f"{r['ratio']:>21.3f}  {extra}")
    for name, r in metrics["paper_table4"].items():
        lines.append(f"{'paper: ' + name:<22} {r['pi_I']:>12.3f} {r['pi_N']:>12.3f} "
                     f"{r['pi_I'] ** 2 + r['pi_N'] ** 2:>15.1f} {r['ratio']:>21.3f}  (n = 1000)")
    return "\n".join(lines)
