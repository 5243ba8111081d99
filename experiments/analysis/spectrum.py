"""``clspec spectrum``: the theory's quantities on a real representation (Theorem 4.3, Eq. 25, Thm 4.5).

    clspec spectrum --checkpoint results/cifar/pretrain-cpu --limit 4000 --noise sym:0.8
    clspec spectrum --init random --limit 4000 --baseline raw
    clspec spectrum --features feats.npz                      # features a user brings
    clspec spectrum results/cifar/pretrain-cpu               # plot the per-epoch spectral monitor

Sources: a checkpoint of ``clspec cifar pretrain`` (encoder and projection-head output) or
``clspec cifar train`` (encoder output), ``--init random`` (the same network at initialization),
or a features file (``.npz`` with ``features`` and ``labels``, optionally ``test_features``,
``test_labels``, ``noisy_labels``; or a ``.npy`` of features with ``--labels FILE.npy``).
``--baseline random`` / ``--baseline raw`` add, on the same images, the random-init network and
the raw pixels, so every number is compared like with like.

For each representation F (n x d) of the training images it reports: singular values (uncentred,
as the theory's F, and centred, as PCA) with the prominent count of the largest log-gap rule
next to K; the alignment ``||V_k V_k^T Y||_F^2 / n`` for every k (Eq. 25); the information /
nuisance split of the clean labels and of the label noise ``Y_noisy - Y`` over the top-K
singular space; RankMe (both variants), effective rank, alpha-ReQ with its R^2; and the ridge
head of Eq. 3 on the noisy labels: clean-label recovery on the training points, memorized
noise and test accuracy over a beta path, and recovery against Theorem 4.5's threshold
``1 / (1 + (n_max/n_min) c_max)`` (realized c_max, classes as sub-classes) as the noise rate
alpha grows. Every F is divided by its largest singular value first, so one beta means the
same shrinkage ``b_i = s_i^2 / (s_i^2 + beta)`` on every representation.

Writes into ``--out``, all or nothing (a staging folder renamed into place): ``spectrum.json``
(every number, the command, commit, date, machine), ``summary.md``, and the figures
``spectrum.png``, ``alignment.png``, ``split.png``, ``recovery.png`` (``monitor.png`` for a run
folder). Features are written batch by batch into one preallocated array (never held twice).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.common import runs

# Theorem 4.5's head: one beta for the recovery-vs-alpha curve, fixed before any run. With F
# scaled to s_1 = 1 it is C37's flip_beta (checks/head.py), small against every direction the
# head should use and large against round-off.
BETA = 1e-3
# The beta path: C42's contrast_betas (checks/head.py), 1e-6 .. 10.
BETAS = tuple(float(b) for b in np.logspace(-6, 1, 15))
# Noise rates of the recovery-vs-alpha curve.
ALPHAS = tuple(round(a, 2) for a in np.arange(0.0, 0.95, 0.1))
FEATURE_BATCH = 256
# Wider representations (raw pixels, d = 3072) get their SVD from the Gram matrix (theory.spectrum.basis,
# method="gram"): measured several times faster on 2 cores; exact above 1e-7 s_1. ResNet features (d = 64)
# use LAPACK's SVD, accurate for every singular value.
GRAM_MIN_D = 512
# The prominent-count rule ignores singular values below this fraction of s_1: features are computed in
# float32, whose rounding perturbs the singular values by about eps32 ||F||_F <= 6e-8 sqrt(d) s_1
# (5e-7 s_1 at d = 64); 1e-5 leaves a margin. Below it a "gap" is to round-off (e.g. the dead ReLU
# units of a projection head), not to a small part of the spectrum.
FLOAT32_FLOOR = 1e-5
LAYERS = ("encoder", "projection")
BASELINES = ("random", "raw")
RESULT = "spectrum.json"


# ----------------------------------------------------------------------------- command line


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "spectrum",
        help="the theory's spectrum, label alignment, info/nuisance split and ridge-head recovery on real features",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run", nargs="?", help="a pre-training run folder: plot its per-epoch spectral monitor")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="checkpoint file or run folder of `clspec cifar pretrain` / `train`")
    src.add_argument("--init", choices=("random",), help="the network at random initialization (seed --seed)")
    src.add_argument("--features", help="a features file: .npz (features, labels[, test_features, test_labels, "
                     "noisy_labels]) or .npy (with --labels)")
    p.add_argument("--labels", help="labels .npy for a .npy features file")
    p.add_argument("--arch", help="network of --init random (default resnet32); with --checkpoint it must match "
                   "the checkpoint's (default: the checkpoint's)")
    p.add_argument("--projection-dim", type=int, default=64, help="projection width of --init random (default 64)")
    p.add_argument("--data", help="dataset, anything `clspec cifar` reads (default: ../shared/data/cifar10-jpg.tar.gz)")
    p.add_argument("--limit", type=int, help="training images used, class-balanced subset as `--train-limit` of "
                   "`clspec cifar` (default: all)")
    p.add_argument("--test-limit", type=int, help="test images used for the head's test accuracy (default: all)")
    p.add_argument("--noise", default="sym:0.8", help="label noise as in `clspec cifar train`: sym:RATE, symall:RATE, "
                   "asym:RATE, none (default sym:0.8)")
    p.add_argument("--noise-seed", type=int, help="seed of the label noise (default: --seed)")
    p.add_argument("--baseline", nargs="*", choices=BASELINES, default=[],
                   help="also analyse the random-init network and/or the raw pixels of the same images (default none)")
    p.add_argument("--k", type=int, help="top-k space of the info/nuisance split (default: K, the number of classes)")
    p.add_argument("--beta", type=float, default=BETA, help=f"ridge beta of the recovery-vs-alpha curve, F scaled to "
                   f"s_1 = 1 (default {BETA:g})")
    p.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS),
                   help="noise rates of the recovery-vs-alpha curve (default 0, 0.1, ..., 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of --init random and of the noise (default 0)")
    p.add_argument("--out", help="output folder (default: results/spectrum/<source>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--ledger", action="store_true",
                   help="print the CPU-scale ledger rows (experiments.ledger.checks.spectrum_real) of this run's numbers")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=main)


@dataclasses.dataclass(frozen=True)
class Settings:
    noise: str
    noise_seed: int
    beta: float
    betas: tuple
    alphas: tuple
    k: int | None
    seed: int


def main(args) -> int:
    if args.run is not None:
        if args.checkpoint or args.init or args.features:
            raise ValueError("give a run folder (monitor plot) or --checkpoint/--init/--features, not both")
        return plot_monitor_cli(Path(args.run), args)
    if not (args.checkpoint or args.init or args.features):
        raise ValueError("nothing to analyse: give --checkpoint PATH, --init random, --features FILE or a run folder")
    settings = _settings(args)
    out = _out_dir(args)
    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    reps, labels, name = _representations(args, timing)
    t1 = time.perf_counter()
    result = analyse_all(reps, labels, settings, progress=args.progress)
    timing["analysis_s"] = round(time.perf_counter() - t1, 2)
    result.update(source=name, command=_command(), date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                  commit=runs.git_commit(), machine=_machine())
    t2 = time.perf_counter()
    _write_outputs(out, result, overwrite=args.overwrite)
    timing["write_s"] = round(time.perf_counter() - t2, 2)
    timing["total_s"] = round(time.perf_counter() - t0, 2)
    result["timing"] = timing
    runs.write_json(out / RESULT, result)  # the timing of this run, including the writes, added last
    runs.atomic_write_text(out / "summary.md", summary_markdown(result))
    print(_one_line(result), file=sys.stderr)
    print(f"spectrum done in {timing['total_s']:.1f} s ({_timing_text(timing)}); results in {out}")
    if args.ledger:
        from experiments.ledger.checks import spectrum_real
        from experiments.ledger.verify import format_table

        print(format_table(spectrum_real.rows_from_evidence(result)))
    return 0


def _settings(args) -> Settings:
    from experiments.cifar.noise import normalize_spec, parse_noise_spec

    kind, _ = parse_noise_spec(args.noise)  # ValueError naming the spec
    if kind == "human":
        raise ValueError(f"--noise {args.noise!r}: human labels are not supported by clspec spectrum; "
                         "bring them as noisy_labels in a features file")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.test_limit is not None and args.test_limit < 1:
        raise ValueError(f"--test-limit must be >= 1, got {args.test_limit}")
    if not args.beta >= 0:
        raise ValueError(f"--beta must be >= 0, got {args.beta}")
    for a in args.alphas:
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"--alphas must be in [0, 1], got {a}")
    if args.k is not None and args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.labels and not args.features:
        raise ValueError("--labels goes with a .npy --features file")
    if args.features and args.baseline:
        raise ValueError(f"--baseline {' '.join(args.baseline)} needs images: not available with --features")
    return Settings(noise=normalize_spec(args.noise), noise_seed=args.seed if args.noise_seed is None else args.noise_seed,
                    beta=float(args.beta), betas=BETAS, alphas=tuple(float(a) for a in args.alphas), k=args.k,
                    seed=args.seed)


def _out_dir(args) -> Path:
    if args.out:
        out = Path(args.out)
    else:
        tag = "random" if args.init else Path(args.checkpoint or args.features).resolve().name.split(".")[0]
        if tag == "checkpoint" and args.checkpoint:
            tag = Path(args.checkpoint).resolve().parent.name
        out = runs.REPO_ROOT / "results" / "spectrum" / tag
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out {out} exists and is not empty: pass --overwrite or another --out")
    return out


def _command() -> str:
    return "clspec " + " ".join(sys.argv[1:])


def _machine() -> dict:
    return {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- sources


def _representations(args, timing) -> tuple[dict, dict, str]:
    """``({name: {"train": (n, d), "test": (m, d) or None}}, labels, source name)``."""
    if args.features:
        t = time.perf_counter()
        reps, labels = load_features_file(Path(args.features), Path(args.labels) if args.labels else None)
        timing["load_s"] = round(time.perf_counter() - t, 2)
        return reps, labels, str(args.features)
    model, variables, arch, layers, name = _network(args)
    train_set, test_set = _datasets(args, timing)
    labels = {"train": np.asarray(train_set.labels), "test": np.asarray(test_set.labels),
              "num_classes": len(train_set.classes)}
    t = time.perf_counter()
    reps = {}
    feats = extract(model, variables, train_set.images, layers, progress=args.progress, desc=f"{name} train")
    tests = extract(model, variables, test_set.images, layers, progress=args.progress, desc=f"{name} test")
    for layer in layers:
        reps[f"{name}/{layer}"] = {"train": feats[layer], "test": tests[layer]}
    if "random" in args.baseline and name != "random":
        rmodel, rvars = random_network(arch, args.projection_dim, args.seed)
        feats = extract(rmodel, rvars, train_set.images, LAYERS, progress=args.progress, desc="random train")
        tests = extract(rmodel, rvars, test_set.images, LAYERS, progress=args.progress, desc="random test")
        for layer in LAYERS:
            reps[f"random/{layer}"] = {"train": feats[layer], "test": tests[layer]}
    timing["features_s"] = round(time.perf_counter() - t, 2)
    if "raw" in args.baseline:
        reps["raw/pixels"] = {"train": raw_pixels(train_set.images), "test": raw_pixels(test_set.images)}
    return reps, labels, name


def raw_pixels(images: np.ndarray) -> np.ndarray:
    """Images as vectors in [0, 1], (n, H*W*3) float32."""
    return (np.asarray(images, np.float32) / 255.0).reshape(len(images), -1)


def _datasets(args, timing):
    from experiments.cifar import configs
    from experiments.cifar.data import load_dataset

    data = args.data or configs.default_data()
    if data is None:
        raise FileNotFoundError(f"--data is needed: the shared CIFAR-10 copy {configs.SHARED_CIFAR10} does not exist here")
    if not Path(data).exists():
        raise FileNotFoundError(f"--data {data} does not exist")
    t = time.perf_counter()
    train = load_dataset(data, "train", limit=args.limit, seed=0, progress=args.progress)
    test = load_dataset(data, "test", limit=args.test_limit, seed=0, progress=args.progress)
    timing["load_s"] = round(time.perf_counter() - t, 2)
    return train, test


def _network(args):
    """(flax module returning a dict of layer outputs, variables, arch, layer names, source name)."""
    from experiments.cifar import checkpoint as ckpt
    from experiments.cifar.models import ARCHS

    if args.arch is not None and args.arch not in ARCHS:
        raise ValueError(f"--arch must be one of {ARCHS}, got {args.arch!r}")
    if args.init == "random":
        arch = args.arch or "resnet32"
        model, variables = random_network(arch, args.projection_dim, args.seed)
        return model, variables, arch, LAYERS, "random"
    path = Path(args.checkpoint)
    if path.is_dir():
        path = ckpt.checkpoint_path(path)
    state, meta = ckpt.load_raw(path)
    arch = meta.get("arch")
    if args.arch is not None:
        ckpt.check_arch(meta, args.arch, path)
    if arch not in ARCHS:
        raise ValueError(f"checkpoint {path} has arch {arch!r}, not one of {ARCHS}")
    kind = meta.get("kind")
    if kind == "pretrain":
        model = _simclr(arch, int(meta.get("projection_dim", 64)))
        layers = LAYERS
        target = model.init_variables()
        sub = {"params": state["params"], "batch_stats": state["batch_stats"]}
    elif kind == "train":
        model = _encoder_only(arch)
        layers = ("encoder",)
        target = model.init_variables()
        try:
            sub = {"params": {"encoder": state["params"]["encoder"]},
                   "batch_stats": {"encoder": state["batch_stats"]["encoder"]}}
        except KeyError as err:
            raise ValueError(f"checkpoint {path} has no encoder weights ({err})") from None
    else:
        raise ValueError(f"checkpoint {path} is a {kind!r} checkpoint, expected one of 'pretrain', 'train'")
    try:
        variables = ckpt.restore_into(target, sub, path)
    except ValueError as err:
        raise ValueError(f"{err} (arch {arch})") from None
    return model, variables, arch, layers, f"checkpoint-{meta.get('kind')}-{arch}"


class _Net:
    """A network whose ``apply(variables, images_uint8)`` returns ``{layer: (B, d)}``."""

    def __init__(self, module, layers, init_fn):
        self.module, self.layers, self._init = module, layers, init_fn

    def init_variables(self, seed: int = 0):
        return self._init(seed)


def _simclr(arch: str, projection_dim: int) -> _Net:
    import jax
    import jax.numpy as jnp

    from experiments.cifar.train import simclr_model

    module = simclr_model(arch, projection_dim)

    def init(seed):
        return jax.device_get(module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False))

    return _Net(module, LAYERS, init)


def _encoder_only(arch: str) -> _Net:
    import jax
    import jax.numpy as jnp
    import flax.linen as nn

    from experiments.cifar.models import make_encoder

    class Wrapped(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            return make_encoder(arch).clone(name="encoder")(x, train)

    module = Wrapped()

    def init(seed):
        return jax.device_get(module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False))

    return _Net(module, ("encoder",), init)


def random_network(arch: str, projection_dim: int, seed: int):
    """The SimCLR network (encoder + projection head) at its random initialization ``PRNGKey(seed)``,
    the initialization `clspec cifar pretrain --seed` starts from."""
    net = _simclr(arch, projection_dim)
    return net, net.init_variables(seed)


def extract(net: _Net, variables, images: np.ndarray, layers, *, progress: bool, desc: str,
            batch: int = FEATURE_BATCH) -> dict[str, np.ndarray]:
    """Layer outputs of ``net`` on ``images`` (BatchNorm in evaluation mode), batch by batch into
    one preallocated float32 array per layer (the last batch padded so nothing recompiles)."""
    import jax
    from tqdm.auto import tqdm

    from experiments.cifar.augment import normalize

    module = net.module

    @jax.jit
    def apply(v, x):
        out = module.apply(v, normalize(x), train=False)
        return dict(zip(net.layers, out)) if isinstance(out, tuple) else {net.layers[0]: out}

    n = len(images)
    out: dict[str, np.ndarray] = {}
    with tqdm(total=n, desc=f"features {desc}", unit="img", file=sys.stderr, disable=not progress,
              leave=False, dynamic_ncols=True, mininterval=1.0) as bar:
        for start in range(0, n, batch):
            chunk = np.asarray(images[start : start + batch])
            m = len(chunk)
            if m < batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - m, axis=0)])
            got = jax.device_get(apply(variables, chunk))
            for layer in layers:
                a = np.asarray(got[layer])
                if layer not in out:
                    out[layer] = np.empty((n, a.shape[1]), np.float32)
                out[layer][start : start + m] = a[:m]
            bar.update(m)
    for layer in layers:
        _check_finite(out[layer], f"{desc} {layer} features")
    return out


def _check_finite(F: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(F)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"{what} contain NaN or infinite values ({int(bad.any(axis=1).sum())} rows, first row {row})")


def load_features_file(path: Path, labels_path: Path | None):
    """A user's features: ``.npz`` with ``features`` (n, d) and ``labels`` (n,) [+ ``test_features``,
    ``test_labels``, ``noisy_labels``], or a ``.npy`` (n, d) with ``labels_path`` (n,)."""
    if not path.exists():
        raise FileNotFoundError(f"--features {path} does not exist")
    try:
        if path.suffix == ".npy":
            arrays = {"features": np.load(path, allow_pickle=False)}
            if labels_path is None:
                raise ValueError(f"--features {path} is a .npy of features without labels: pass --labels FILE.npy "
                                 "or save an .npz with 'features' and 'labels'")
            if not labels_path.exists():
                raise FileNotFoundError(f"--labels {labels_path} does not exist")
            arrays["labels"] = np.load(labels_path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if labels_path is not None:
                raise ValueError("--labels goes with a .npy --features file; an .npz holds its own 'labels'")
        else:
            raise ValueError(f"--features {path}: expected a .npz or .npy file")
    except (OSError, ValueError) as err:
        if isinstance(err, (FileNotFoundError,)) or str(err).startswith(("--features", "--labels")):
            raise
        raise ValueError(f"--features {path} is not a readable numpy file ({str(err).splitlines()[0]})") from None
    if "features" not in arrays:
        raise ValueError(f"--features {path} has no 'features' array (has {sorted(arrays)})")
    if "labels" not in arrays:
        raise ValueError(f"--features {path} has no 'labels' array (has {sorted(arrays)}): labels are needed")
    F, y = arrays["features"], arrays["labels"]
    if F.ndim != 2 or F.shape[0] < 2:
        raise ValueError(f"--features {path}: features must be an (n, d) array with n >= 2, got shape {F.shape}")
    y = _int_labels(y, f"--features {path}: labels")
    if len(y) != F.shape[0]:
        raise ValueError(f"--features {path}: {len(y)} labels for {F.shape[0]} feature rows")
    _check_finite(np.asarray(F, np.float64), f"--features {path}:")
    K = int(y.max()) + 1
    test = None
    test_labels = None
    if "test_features" in arrays or "test_labels" in arrays:
        if "test_features" not in arrays or "test_labels" not in arrays:
            raise ValueError(f"--features {path}: give both 'test_features' and 'test_labels', or neither")
        test = arrays["test_features"]
        test_labels = _int_labels(arrays["test_labels"], f"--features {path}: test_labels")
        if test.ndim != 2 or test.shape[1] != F.shape[1]:
            raise ValueError(f"--features {path}: test_features must be (m, {F.shape[1]}), got shape {test.shape}")
        if len(test_labels) != test.shape[0]:
            raise ValueError(f"--features {path}: {len(test_labels)} test_labels for {test.shape[0]} test_features rows")
        _check_finite(np.asarray(test, np.float64), f"--features {path}: test_features")
        K = max(K, int(test_labels.max()) + 1)
    labels = {"train": y, "test": test_labels, "num_classes": K}
    if "noisy_labels" in arrays:
        noisy = _int_labels(arrays["noisy_labels"], f"--features {path}: noisy_labels")
        if len(noisy) != len(y):
            raise ValueError(f"--features {path}: {len(noisy)} noisy_labels for {len(y)} labels")
        labels["noisy"] = noisy
        labels["num_classes"] = K = max(K, int(noisy.max()) + 1)
    if K < 2:
        raise ValueError(f"--features {path}: labels must name >= 2 classes, got {K}")
    return {"features/user": {"train": np.asarray(F, np.float32), "test": None if test is None else
                              np.asarray(test, np.float32)}}, labels


def _int_labels(y, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise ValueError(f"{what} must be a 1-d array of class indices >= 0, got shape {y.shape} dtype {y.dtype}")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------- analysis


def analyse_all(reps: dict, labels: dict, settings: Settings, *, progress: bool = False) -> dict:
    """Every representation's numbers (see :func:`analyse`) plus the noise that was used."""
    import jax

    from experiments.cifar.noise import make_noisy_labels, parse_noise_spec

    jax.config.update("jax_enable_x64", True)
    K = int(labels["num_classes"])
    clean = labels["train"]
    d_min = min(r["train"].shape[1] for r in reps.values())
    n = len(clean)
    k = settings.k if settings.k is not None else K
    if k > min(n, d_min):
        raise ValueError(f"--k must be <= min(n, d) = {min(n, d_min)} (d of the narrowest representation), got {k}")
    if K + 1 > min(n, d_min):
        raise ValueError(f"the number of classes K={K} must be < min(n, d) = {min(n, d_min)}")
    if "noisy" in labels:
        noisy = labels["noisy"]
        noise = {"spec": "given", "rate": float(np.mean(noisy != clean))}
        curve = []
    else:
        noisy_l = make_noisy_labels(clean, settings.noise, num_classes=K, seed=settings.noise_seed)
        noisy = noisy_l.labels
        noise = noisy_l.summary()
        kind, _ = parse_noise_spec(settings.noise)
        kind = "sym" if kind == "none" else kind
        curve = [(a, make_noisy_labels(clean, f"{kind}:{a}", num_classes=K, seed=settings.noise_seed).labels)
                 for a in settings.alphas]
        noise["curve_kind"] = kind
    out = {"num_classes": K, "n_train": n, "n_test": None if labels.get("test") is None else len(labels["test"]),
           "k": k, "noise": noise, "settings": dataclasses.asdict(settings), "representations": {}}
    from tqdm.auto import tqdm

    for name in tqdm(list(reps), desc="analyse", file=sys.stderr, disable=not progress, leave=False):
        out["representations"][name] = analyse(reps[name]["train"], reps[name]["test"], clean, labels.get("test"),
                                               noisy, curve, K, k, settings)
    return out


def analyse(F_train, F_test, clean, test_labels, noisy, curve, K: int, k: int, settings: Settings) -> dict:
    """The numbers of one representation (JSON-able)."""
    import jax.numpy as jnp

    from theory import spectrum as sp

    X = jnp.asarray(F_train, jnp.float64)
    method = "gram" if X.shape[1] > GRAM_MIN_D else "svd"
    B = sp.basis(X, method=method)
    Bc = sp.basis(sp.centre(X), method=method)  # PCA: the centred features' SVD, once
    s, sc = B.s, Bc.s
    Y = sp.one_hot(clean, K)
    dY = sp.one_hot(noisy, K) - Y
    A = np.asarray(sp.alignment_curve(B, Y))
    split_clean = sp.label_split(B, Y, k)
    split_noise = sp.label_split(B, dY, k)
    r = int(s.shape[0])
    alpha = sp.alpha_req(sc) if r >= 4 else None
    top = float(s[0])
    Bs = sp.Basis(B.U, B.s / top, B.Vt)  # F / s_1: one beta means one shrinkage everywhere
    Xt = None if F_test is None else jnp.asarray(F_test, jnp.float64) / top
    path = []
    for beta in settings.betas:
        path.append(_head(Bs, Xt, clean, noisy, test_labels, K, beta))
    n_ratio = float(sp.class_size_ratio(clean, K))
    rec = []
    for a, lab in curve:
        h = _head(Bs, Xt, clean, lab, test_labels, K, settings.beta)
        c_max = float(sp.flip_c_max(clean, lab, K))
        h.update(alpha=a, alpha_realized=float(np.mean(lab != clean)), c_max=c_max,
                 threshold=float(sp.recovery_threshold(c_max, n_ratio)) if c_max > 0 else 1.0)
        rec.append(h)
    here = _head(Bs, Xt, clean, noisy, test_labels, K, settings.beta)
    c_max = float(sp.flip_c_max(clean, noisy, K))
    here.update(c_max=c_max, n_max_over_n_min=n_ratio,
                threshold=float(sp.recovery_threshold(c_max, n_ratio)) if c_max > 0 else 1.0,
                alpha_realized=float(np.mean(noisy != clean)))
    return {
        "n": int(X.shape[0]), "d": int(X.shape[1]), "svd_method": method,
        "sigma": np.asarray(s).tolist(), "sigma_centred": np.asarray(sc).tolist(),
        "prominent": int(sp.prominent_count(s, floor=FLOAT32_FLOOR)),
        "prominent_centred": int(sp.prominent_count(sc, floor=FLOAT32_FLOOR)),
        "gap_K": float(sp.gap_ratio(s, K)), "gap_K_centred": float(sp.gap_ratio(sc, K)),
        "alignment": A.tolist(), "alignment_K": float(A[K - 1]),
        "alignment_K_centred": float(sp.alignment_curve(Bc, Y)[K - 1]),
        "split_clean": _split_dict(split_clean), "split_noise": _split_dict(split_noise),
        "rankme": float(sp.rankme(s)), "rankme_pca": float(sp.rankme_pca(sc)),
        "effective_rank": float(sp.effective_rank(s)), "participation_ratio": float(sp.participation_ratio(sc)),
        "alpha_req": None if alpha is None else {"alpha": float(alpha.alpha), "r2": float(alpha.r2),
                                                  "fit_ranks": [alpha.lo, alpha.hi]},
        "beta_path": path, "head": here, "recovery_curve": rec,
    }


def _split_dict(s) -> dict:
    tot = float(s.total_sq)
    return {"information": float(s.information), "nuisance": float(s.nuisance), "total_sq": tot,
            "information_fraction": float(s.information_sq) / tot if tot > 0 else float("nan")}


def _head(Bs, Xt, clean, noisy, test_labels, K, beta) -> dict:
    from theory import spectrum as sp

    rec = sp.ridge_recovery(Bs, clean, noisy, K, beta)
    out = {"beta": float(beta), "train_recovery": float(rec.clean),
           "noisy_memorized": None if np.isnan(float(rec.noisy_fit)) else float(rec.noisy_fit)}
    out["test_acc"] = None if Xt is None else float(sp.head_accuracy(Xt, rec.W, test_labels))
    return out


# ----------------------------------------------------------------------------- outputs


def _write_outputs(out: Path, result: dict, *, overwrite: bool) -> None:
    """Write every output into a staging folder, then move it into place: all or nothing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        runs.write_json(stage / RESULT, result)
        runs.atomic_write_text(stage / "summary.md", summary_markdown(result))
        plot(result, stage)
        old = None
        if out.exists():
            if any(out.iterdir()) and not overwrite:
                raise ValueError(f"--out {out} exists and is not empty: pass --overwrite or another --out")
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _fmt(x, digits=4) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def summary_markdown(result: dict) -> str:
    K = result["num_classes"]
    noise = result["noise"]
    lines = [
        f"# clspec spectrum: {result.get('source', '')}",
        "",
        f"`{result.get('command', '')}` on {result.get('date', '')}, commit `{(result.get('commit') or 'unknown')[:12]}`.",
        f"n = {result['n_train']} training points, K = {K} classes, noise {noise.get('spec')} "
        f"(realized rate {_fmt(noise.get('rate'))}); split over the top k = {result['k']} singular directions; "
        f"head beta = {result['settings']['beta']:g} with F scaled to s_1 = 1.",
        "",
        "| representation | d | prominent (uncentred / centred) | s_K/s_K+1 | A(K) | A(K) centred | "
        "clean info frac | noise info frac | RankMe | RankMe-PCA | erank | alpha-ReQ (R^2) | "
        "train recovery | noise memorized | test acc | c_max | Thm 4.5 threshold |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["representations"].items():
        a = r["alpha_req"]
        h = r["head"]
        lines.append("| " + " | ".join([
            name, str(r["d"]), f"{r['prominent']} / {r['prominent_centred']} (K = {K})", _fmt(r["gap_K"]),
            _fmt(r["alignment_K"]), _fmt(r["alignment_K_centred"]), _fmt(r["split_clean"]["information_fraction"]),
            _fmt(r["split_noise"]["information_fraction"]), _fmt(r["rankme"]), _fmt(r["rankme_pca"]),
            _fmt(r["effective_rank"]), "-" if a is None else f"{a['alpha']:.3g} ({a['r2']:.3g})",
            _fmt(h["train_recovery"]), _fmt(h["noisy_memorized"]), _fmt(h["test_acc"]), _fmt(h["c_max"]),
            _fmt(h["threshold"])]) + " |")
    lines += ["", "A(K) = ||V_K V_K^T Y||_F^2 / n (Eq. 25); info frac = ||Pi_I y||^2 / ||y||^2 over the top-k space "
              "for the clean labels Y and the noise Y_noisy - Y; train recovery = fraction of training points whose "
              "clean label wins under the ridge head trained on the noisy labels (Thm 4.5 claims 1 below the "
              "threshold).", ""]
    t = result.get("timing")
    if t:
        lines += [f"Timing: {_timing_text(t)}.", ""]
    return "\n".join(lines) + "\n"


def _timing_text(t: dict) -> str:
    return ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items() if k.endswith("_s"))


def _one_line(result: dict) -> str:
    parts = []
    for name, r in result["representations"].items():
        parts.append(f"{name}: A(K) {r['alignment_K']:.3f}, prominent {r['prominent']}, "
                     f"recovery {r['head']['train_recovery']:.3f}")
    return "; ".join(parts)


def plot(result: dict, outdir: Path) -> list[Path]:
    """The four figures, a pure function of ``result``."""
    from experiments.common import plotting

    plt = plotting.pyplot()
    outdir = Path(outdir)
    K = result["num_classes"]
    reps = result["representations"]
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in reps.items():
        for ax, key in zip(axes, ("sigma", "sigma_centred")):
            s = np.asarray(r[key])
            s = s / s[0]
            ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-16), ".-", ms=3, label=name)
    for ax, title in zip(axes, ("uncentred (the theory's F)", "centred (PCA)")):
        ax.axvline(K, color="k", ls="--", lw=1, label=f"K = {K}")
        ax.set_xlabel("index i")
        ax.set_ylabel(r"$\sigma_i / \sigma_1$")
        ax.set_title(f"singular values, {title}")
        ax.set_xscale("log")
    axes[0].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "spectrum.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in reps.items():
        A = np.asarray(r["alignment"])
        ax.plot(np.arange(1, len(A) + 1), A, ".-", ms=3, label=name)
    ax.axvline(K, color="k", ls="--", lw=1, label=f"K = {K}")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel(r"$A(k) = \|V_k V_k^\top Y\|_F^2 / n$")
    ax.set_title("alignment of the top-k singular space with the clean labels (Eq. 25)")
    ax.legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "alignment.png"))

    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(reps)), 4))
    names = list(reps)
    x = np.arange(len(names))
    clean = [reps[n]["split_clean"]["information_fraction"] for n in names]
    noise = [reps[n]["split_noise"]["information_fraction"] for n in names]
    ax.bar(x - 0.2, clean, 0.4, label=r"clean labels $Y$")
    ax.bar(x + 0.2, noise, 0.4, label=r"noise $\hat Y - Y$")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, fontsize=7)
    ax.set_ylabel(r"$\|\Pi_I y\|^2 / \|y\|^2$ (rest: $\Pi_N$)")
    ax.set_title(f"information fraction over the top-{result['k']} singular space ({result['noise'].get('spec')})")
    ax.legend(fontsize=8)
    paths.append(plotting.save(fig, outdir / "split.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in reps.items():
        c = r["recovery_curve"]
        if c:
            line, = axes[0].plot([p["alpha_realized"] for p in c], [p["train_recovery"] for p in c], "o-", ms=3,
                                 label=name)
            axes[0].plot([p["alpha_realized"] for p in c], [p["threshold"] for p in c], ":", color=line.get_color())
        bp = r["beta_path"]
        line, = axes[1].semilogx([p["beta"] for p in bp], [p["train_recovery"] for p in bp], "o-", ms=3, label=name)
        if bp[0]["test_acc"] is not None:
            axes[1].semilogx([p["beta"] for p in bp], [p["test_acc"] for p in bp], "s--", ms=3,
                             color=line.get_color())
    axes[0].set_xlabel(r"realized noise rate $\alpha$")
    axes[0].set_ylabel("clean-label recovery on the training points")
    axes[0].set_title(r"ridge head (dotted: Thm 4.5 threshold $1/(1 + (n_{max}/n_{min}) c_{max})$ at each $\alpha$)",
                      fontsize=8)
    axes[1].set_xlabel(r"$\beta$ ($F$ scaled to $\sigma_1 = 1$)")
    axes[1].set_ylabel("train recovery (o) / test accuracy (s)")
    axes[1].set_title(f"beta path at {result['noise'].get('spec')}")
    axes[0].legend(fontsize=7)
    paths.append(plotting.save(fig, outdir / "recovery.png"))
    return paths


# ----------------------------------------------------------------------------- the pre-training monitor

MONITOR_KEYS = ("spec_alignment_K", "spec_rankme", "spec_prominent", "spec_gap_K")


def monitor_row(features: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """The cheap spectral numbers of the k-NN monitor's training features, for an epoch row of
    ``clspec cifar pretrain``: top-K alignment A(K) (Eq. 25), RankMe, the prominent count and
    ``sigma_K / sigma_{K+1}`` (uncentred). Empty when there are too few points or dimensions."""
    import jax.numpy as jnp

    from theory import spectrum as sp

    F = np.asarray(features, np.float64)
    if F.ndim != 2 or num_classes + 1 > min(F.shape) or not np.isfinite(F).all():
        return {}
    S = sp.spectral_summary(jnp.asarray(F), np.asarray(labels), num_classes, floor=FLOAT32_FLOOR)
    return {"spec_alignment_K": round(float(S.alignment_K), 6), "spec_rankme": round(float(S.rankme), 4),
            "spec_prominent": int(S.prominent), "spec_gap_K": round(float(S.gap_K), 4)}


def read_monitor(run_dir: Path) -> list[dict]:
    from experiments.cifar.train import METRICS_JSONL

    path = Path(run_dir) / METRICS_JSONL
    if not path.exists():
        raise FileNotFoundError(f"run folder {run_dir} has no {METRICS_JSONL}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "spec_alignment_K" in r]
    if not rows:
        raise ValueError(f"run folder {run_dir}: {METRICS_JSONL} has no spectral monitor columns "
                         f"({', '.join(MONITOR_KEYS)}); it was written before the monitor existed")
    return rows


def plot_monitor(rows: list[dict], outdir: Path) -> Path:
    from experiments.common import plotting

    plt = plotting.pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.2))
    for ax, key, label in zip(axes, ("knn_acc",) + MONITOR_KEYS,
                              ("k-NN accuracy", "top-K alignment A(K)", "RankMe", "prominent count",
                               r"$\sigma_K / \sigma_{K+1}$")):
        ax.plot(epochs, [r.get(key) for r in rows], "o-", ms=3)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
    return plotting.save(fig, Path(outdir) / "monitor.png")


def plot_monitor_cli(run_dir: Path, args) -> int:
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    rows = read_monitor(run_dir)
    out = Path(args.out) if args.out else run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = plot_monitor(rows, out)
    last = rows[-1]
    print(f"monitor of {len(rows)} epochs: last epoch {last['epoch']} kNN {last.get('knn_acc')} A(K) "
          f"{last['spec_alignment_K']} RankMe {last['spec_rankme']} prominent {last['spec_prominent']}; {path}")
    return 0
