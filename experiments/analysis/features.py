"""Representations of images for ``clspec spectrum``: a network's layer outputs (a ``clspec cifar``
checkpoint, or the SimCLR network at its random initialization), raw pixels, or a features file
a user brings. Features are written batch by batch into one preallocated array (never held twice)
and checked for NaN and infinite values."""

from __future__ import annotations

import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

FEATURE_BATCH = 256
LAYERS = ("encoder", "projection")


def raw_pixels(images: np.ndarray) -> np.ndarray:
    """Images as vectors in [0, 1], (n, H*W*3) float32."""
    return (np.asarray(images, np.float32) / 255.0).reshape(len(images), -1)



class _Net:
    """A network whose ``apply(variables, images_uint8)`` returns ``{layer: (B, d)}``."""

    def __init__(self, module, layers, init_fn):
        self.module, self.layers, self._init = module, layers, init_fn

    def init_variables(self, seed: int = 0):
        return self._init(seed)


def simclr_net(arch: str, projection_dim: int) -> _Net:
    import jax
    import jax.numpy as jnp

    from experiments.cifar.train_steps import simclr_model

    module = simclr_model(arch, projection_dim)

    def init(seed):
        return jax.device_get(module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False))

    return _Net(module, LAYERS, init)


def encoder_net(arch: str) -> _Net:
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
    net = simclr_net(arch, projection_dim)
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
        check_finite(out[layer], f"{desc} {layer} features")
    return out


def check_finite(F: np.ndarray, what: str) -> None:
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # empty, truncated, not numpy
        if isinstance(err, (FileNotFoundError,)) or str(err).startswith(("--features", "--labels")):
            raise
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"--features {path} is not a readable numpy file ({type(err).__name__}: {first})") from None
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
    check_finite(np.asarray(F, np.float64), f"--features {path}:")
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
        check_finite(np.asarray(test, np.float64), f"--features {path}: test_features")
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
