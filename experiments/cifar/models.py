"""The networks of the CIFAR experiments (flax.linen, float32, NHWC inputs).

* ``resnet32``: the CIFAR ResNet of He et al. (2016), Sec. 4.2, the paper's network: a 3x3 stem
  with 16 channels, three stages of 5 basic blocks with 16/32/64 channels (the first block of
  stages 2 and 3 has stride 2), option-A shortcuts (stride-2 subsampling and zero channel
  padding, no parameters), global average pooling: 0.46M parameters with a 10-class head, as in
  snap-stanford/crust ``models/resnet_cifar.py``.
* ``resnet18``: the CIFAR variant of ResNet-18 (3x3 stem, no max-pool), stages of 2 blocks with
  64/128/256/512 channels and 1x1 convolution + BatchNorm shortcuts (option B): 11.2M parameters.
* ``resnet34``: the same with 3/4/6/3 blocks: 21.3M parameters, 46x ResNet-32's (the paper's Table 2).
* ``tiny``: a stem and one stride-2 block with 8/16 channels, for fast tests.

BatchNorm follows PyTorch's defaults (momentum 0.1, i.e. flax ``momentum=0.9``, eps 1e-5);
running statistics live in the ``"batch_stats"`` collection. Convolutions go through
:func:`experiments.cifar.conv.conv2d`, so ``conv_impl`` changes speed, not the function.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from experiments.cifar.conv import conv2d, resolve_impl

ARCHS = ("resnet32", "resnet18", "resnet34", "tiny")

# (channels, blocks, stride of the first block) per stage, the stem width and the shortcut kind.
_SPECS = {
    "resnet32": dict(stem=16, stages=((16, 5, 1), (32, 5, 2), (64, 5, 2)), shortcut="A"),
    "resnet18": dict(stem=64, stages=((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)), shortcut="B"),
    "resnet34": dict(stem=64, stages=((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), shortcut="B"),
    "tiny": dict(stem=8, stages=((16, 1, 2),), shortcut="A"),
}

# PyTorch's kaiming_normal_ (fan_in, gain sqrt(2)), the initialization of the crust ResNets.
_KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class Conv(nn.Module):
    """A bias-free square convolution with PyTorch's padding ``kernel_size // 2``; kernel HWIO."""

    features: int
    kernel_size: int = 3
    strides: int = 1
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", _KERNEL_INIT, shape, jnp.float32)
        return conv2d(x.astype(jnp.float32), kernel, self.strides, self.conv_impl)


def _batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train, momentum=0.9, epsilon=1e-5,
        dtype=jnp.float32, param_dtype=jnp.float32, name=name,
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (He et al. 2016, Fig. 2 left)."""

    features: int
    strides: int = 1
    shortcut: str = "A"  # "A": subsample + zero-pad channels; "B": 1x1 conv + BN when shapes change
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        y = Conv(self.features, 3, self.strides, self.conv_impl, name="conv1")(x)
        y = nn.relu(_batch_norm(train, "bn1")(y))
        y = Conv(self.features, 3, 1, self.conv_impl, name="conv2")(y)
        y = _batch_norm(train, "bn2")(y)
        cin = x.shape[-1]
        if self.strides != 1 or cin != self.features:
            if self.shortcut == "A":
                s = x[:, :: self.strides, :: self.strides, :]
                extra = self.features - cin
                s = jnp.pad(s, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            else:
                s = Conv(self.features, 1, self.strides, self.conv_impl, name="shortcut_conv")(x)
                s = _batch_norm(train, "shortcut_bn")(s)
        else:
            s = x
        return nn.relu(y + s)


class Stem(nn.Module):
    """3x3 conv, BN, ReLU at full resolution (no max-pool: the CIFAR variants)."""

    features: int
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        x = Conv(self.features, 3, 1, self.conv_impl, name="conv")(x)
        return nn.relu(_batch_norm(train, "bn")(x))


class Stage(nn.Module):
    """``blocks`` basic blocks; the first has stride ``strides``."""

    features: int
    blocks: int
    strides: int
    shortcut: str = "A"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        for i in range(self.blocks):
            x = BasicBlock(
                self.features, self.strides if i == 0 else 1, self.shortcut, self.conv_impl,
                name=f"block{i}",
            )(x, train)
        return x


class ResNetEncoder(nn.Module):
    """Stem, stages, global average pooling: ``(B, H, W, 3) -> (B, channels of the last stage)``."""

    stem_features: int
    stages: Sequence[tuple[int, int, int]]
    shortcut: str = "A"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        x = Stem(self.stem_features, self.conv_impl, name="stem")(x.astype(jnp.float32), train)
        for i, (features, blocks, strides) in enumerate(self.stages):
            x = Stage(features, blocks, strides, self.shortcut, self.conv_impl, name=f"stage{i + 1}")(
                x, train
            )
        return jnp.mean(x, axis=(1, 2))


def make_encoder(arch: str, *, conv_impl: str = "auto") -> ResNetEncoder:
    """The encoder named ``arch`` (one of :data:`ARCHS`); ``conv_impl`` as in :func:`conv2d`."""
    if arch not in _SPECS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    resolve_impl(conv_impl)  # validate early
    spec = _SPECS[arch]
    return ResNetEncoder(spec["stem"], spec["stages"], spec["shortcut"], conv_impl)


def stage_modules(arch: str, *, conv_impl: str = "auto") -> list[tuple[str, nn.Module]]:
    """The encoder of ``arch`` as its named parts ``[("stem", Stem), ("stage1", Stage), ...]``, each
    called as ``module(x, train)``; their parameters are ``params["stem"]``, ``params["stage1"]``, ...
    of :func:`make_encoder`'s parameters (used by the per-stage benchmark)."""
    if arch not in _SPECS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    spec = _SPECS[arch]
    parts: list[tuple[str, nn.Module]] = [("stem", Stem(spec["stem"], conv_impl))]
    for i, (features, blocks, strides) in enumerate(spec["stages"]):
        parts.append((f"stage{i + 1}", Stage(features, blocks, strides, spec["shortcut"], conv_impl)))
    return parts


def feature_dim(arch: str) -> int:
    """The width D of the pooled features of ``arch``."""
    if arch not in _SPECS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return _SPECS[arch]["stages"][-1][0]


class ProjectionHead(nn.Module):
    """SimCLR's 2-layer projection g: Dense(hidden) -> ReLU -> Dense(out_dim); hidden = input width
    when ``hidden`` is None (Chen et al. 2020). The paper projects to 64 dimensions."""

    out_dim: int = 64
    hidden: int | None = None

    @nn.compact
    def __call__(self, h):
        hidden = self.hidden or h.shape[-1]
        h = nn.relu(nn.Dense(hidden, dtype=jnp.float32, param_dtype=jnp.float32, name="fc1")(h))
        return nn.Dense(self.out_dim, dtype=jnp.float32, param_dtype=jnp.float32, name="fc2")(h)


class SimCLRModel(nn.Module):
    """Encoder f and projection head g: ``x -> (f(x), g(f(x)))``."""

    encoder: nn.Module
    head: nn.Module

    def __call__(self, x, train: bool):
        features = self.encoder(x, train)
        return features, self.head(features)


class Classifier(nn.Module):
    """Encoder and a linear layer to ``num_classes`` logits."""

    encoder: nn.Module
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool):
        features = self.encoder(x, train)
        return nn.Dense(self.num_classes, dtype=jnp.float32, param_dtype=jnp.float32, name="linear")(
            features
        )


def param_count(params) -> int:
    """The number of scalars in a parameter pytree."""
    return int(sum(p.size for p in jax.tree_util.tree_leaves(params)))
