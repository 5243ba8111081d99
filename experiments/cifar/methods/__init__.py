"""Robust training methods on noisy labels behind one seam (:class:`Method`, see :mod:`.base`).

``MODULES`` is the registry: name -> module (``NAME``, ``HPARAMS``, ``check``, ``make``).
``ce``: cross-entropy; ``elr``: early-learning regularization (Liu et al. 2020); ``mixup``
(Zhang et al. 2018); ``crust``: coresets of the gradient proxies (Mirzasoleiman et al. 2020).
"""

from __future__ import annotations

from experiments.cifar.methods import ce, crust, elr, mixup
from experiments.cifar.methods.base import EpochView, Method, cross_entropy

MODULES = {m.NAME: m for m in (ce, elr, mixup, crust)}
METHODS = tuple(MODULES)

__all__ = ["METHODS", "MODULES", "EpochView", "Method", "cross_entropy", "check", "method_key", "from_key", "add_arguments"]


def method_key(cfg) -> tuple:
    """``(name, ((field, value), ...))``: the method of a TrainConfig and its hyperparameters, hashable."""
    if cfg.method not in MODULES:
        raise ValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
    return cfg.method, tuple((f, getattr(cfg, f)) for f in MODULES[cfg.method].HPARAMS)


def from_key(key: tuple) -> Method:
    name, hparams = key
    return MODULES[name].make(**dict(hparams))


def add_arguments(parser, d) -> None:
    """The ``--method`` flags of ``clspec cifar train``; their help gives ``d``'s values (a default
    ``TrainConfig``: the paper's settings) as the defaults."""
    parser.add_argument("--method", choices=METHODS, help=f"training method (default: {d.method})")
    parser.add_argument("--elr-beta", type=float, help=f"ELR target momentum beta, in [0, 1) (default {d.elr_beta})")
    parser.add_argument("--elr-lambda", type=float, help=f"ELR regularization weight (default {d.elr_lambda})")
    parser.add_argument("--mixup-alpha", type=float, help=f"Mixup Beta(alpha, alpha), > 0 (default {d.mixup_alpha})")
    parser.add_argument("--crust-ratio", type=float, help=f"Crust coreset ratio, in (0, 1] (default {d.crust_ratio})")
    parser.add_argument("--crust-warmup", type=int, help=f"Crust: epochs before the first coreset (default {d.crust_warmup})")
    parser.add_argument("--crust-relabel", type=float,
                        help=f"Crust: fraction relabelled by the predictions after the warm-up (default {d.crust_relabel})")


def check(cfg) -> None:
    """Validate the method name and every method's hyperparameters of a TrainConfig."""
    method_key(cfg)
    for module in MODULES.values():
        module.check(**{f: getattr(cfg, f) for f in module.HPARAMS})
