"""SimCLR's data augmentations, computed on the accelerator in JAX.

The standard SimCLR recipe for CIFAR (Chen et al. 2020, App. B.9; torchvision's
``RandomResizedCrop(32) -> RandomHorizontalFlip() -> RandomApply([ColorJitter(.4,.4,.4,.1)], p=.8)
-> RandomGrayscale(p=.2)``), applied independently to every image of a batch:

* random resized crop: area fraction ~ U[0.08, 1], log aspect ratio ~ U[log 3/4, log 4/3],
  integer box sizes and corners as torchvision draws them (10 tries, then the whole image),
  resized back to H x W bilinearly (half-pixel centres, ``align_corners=False``, no antialias);
* horizontal flip with probability 0.5;
* colour jitter with probability 0.8: brightness, contrast and saturation factors ~ U[0.6, 1.4]
  and a hue shift ~ U[-0.1, 0.1], applied in a random order, each clipped to [0, 1];
* grayscale with probability 0.2 (ITU-R 601 luma, as torchvision).

The crop, resize and flip of each image are two small interpolation matrices
(``out = R_y @ image @ R_x^T``), so the whole augmentation is batched matrix products and
element-wise maps: cheap on any backend and jit-able. Images are float32 in [0, 1], NHWC.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
BRIGHTNESS = CONTRAST = SATURATION = 0.4
HUE = 0.1
P_JITTER = 0.8
P_GRAY = 0.2
P_FLIP = 0.5
_LUMA = (0.299, 0.587, 0.114)


def normalize(images_uint8: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1] (divided by 255; no mean/std standardization: the
    networks start with a conv followed by BatchNorm, which absorbs it)."""
    return jnp.asarray(images_uint8).astype(jnp.float32) / jnp.float32(255.0)


def _crop_box(key, height: int, width: int, tries: int = 10):
    """torchvision ``RandomResizedCrop.get_params``: (top, left, h, w) as float32 integers."""
    k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
    area = float(height * width)
    target = area * jax.random.uniform(k_area, (tries,), jnp.float32, SCALE[0], SCALE[1])
    log_ratio = jax.random.uniform(
        k_ratio, (tries,), jnp.float32, math.log(RATIO[0]), math.log(RATIO[1])
    )
    ratio = jnp.exp(log_ratio)
    w = jnp.round(jnp.sqrt(target * ratio))
    h = jnp.round(jnp.sqrt(target / ratio))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = jnp.argmax(ok)  # the first try that fits
    any_ok = jnp.any(ok)
    h = jnp.where(any_ok, h[first], float(height))
    w = jnp.where(any_ok, w[first], float(width))
    # torch.randint(0, H - h + 1): uniform integer in [0, H - h].
    top = jnp.floor(jax.random.uniform(k_top, (), jnp.float32) * (height - h + 1))
    left = jnp.floor(jax.random.uniform(k_left, (), jnp.float32) * (width - w + 1))
    return top, left, h, w


def _resize_matrix(start, size, out: int, n: int) -> jax.Array:
    """(out, n) bilinear weights that resample pixels [start, start + size) of a length-n axis to
    ``out`` pixels, with half-pixel centres and edge clamping (PyTorch ``align_corners=False``)."""
    i = jnp.arange(out, dtype=jnp.float32)
    src = (i + 0.5) * (size / out) - 0.5
    src = jnp.clip(src, 0.0, size - 1.0) + start
    lo = jnp.floor(src)
    frac = src - lo
    hi = jnp.minimum(lo + 1.0, start + size - 1.0)
    cols = jnp.arange(n, dtype=jnp.float32)
    return (1.0 - frac)[:, None] * (cols[None, :] == lo[:, None]) + frac[:, None] * (
        cols[None, :] == hi[:, None]
    )


def _gray(img: jax.Array) -> jax.Array:
    return img[..., 0:1] * _LUMA[0] + img[..., 1:2] * _LUMA[1] + img[..., 2:3] * _LUMA[2]


def _rgb_to_hsv(img):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    delta = maxc - minc
    v = maxc
    s = jnp.where(maxc > 0, delta / jnp.where(maxc > 0, maxc, 1.0), 0.0)
    safe = jnp.where(delta > 0, delta, 1.0)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return h, s, v


def _hsv_to_rgb(h, s, v):
    i = jnp.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    i = i.astype(jnp.int32) % 6
    r = jnp.choose(i, [v, q, p, p, t, v], mode="clip")
    g = jnp.choose(i, [t, v, v, q, p, p], mode="clip")
    b = jnp.choose(i, [p, p, t, v, v, q], mode="clip")
    return jnp.stack([r, g, b], axis=-1)


def _jitter_one(key, img: jax.Array) -> jax.Array:
    """torchvision ``ColorJitter(.4, .4, .4, .1)`` on one HWC image: the four adjustments in a
    random order."""
    k_order, kb, kc, ks, kh = jax.random.split(key, 5)
    b = jax.random.uniform(kb, (), jnp.float32, 1 - BRIGHTNESS, 1 + BRIGHTNESS)
    c = jax.random.uniform(kc, (), jnp.float32, 1 - CONTRAST, 1 + CONTRAST)
    s = jax.random.uniform(ks, (), jnp.float32, 1 - SATURATION, 1 + SATURATION)
    hue = jax.random.uniform(kh, (), jnp.float32, -HUE, HUE)

    def brightness(x):
        return jnp.clip(x * b, 0.0, 1.0)

    def contrast(x):
        return jnp.clip(c * x + (1 - c) * jnp.mean(_gray(x)), 0.0, 1.0)

    def saturation(x):
        return jnp.clip(s * x + (1 - s) * _gray(x), 0.0, 1.0)

    def hue_shift(x):
        h, sat, v = _rgb_to_hsv(x)
        return jnp.clip(_hsv_to_rgb((h + hue) % 1.0, sat, v), 0.0, 1.0)

    ops = (brightness, contrast, saturation, hue_shift)
    order = jax.random.permutation(k_order, 4)
    for j in range(4):
        img = jax.lax.switch(order[j], ops, img)
    return img


def _augment_one(key, img: jax.Array) -> jax.Array:
    height, width = img.shape[0], img.shape[1]
    k_crop, k_flip, k_jit, k_pj, k_pg = jax.random.split(key, 5)
    top, left, h, w = _crop_box(k_crop, height, width)
    ry = _resize_matrix(top, h, height, height)
    rx = _resize_matrix(left, w, width, width)
    rx = jnp.where(jax.random.uniform(k_flip, ()) < P_FLIP, rx[::-1], rx)
    out = jnp.einsum("ih,hwc,jw->ijc", ry, img, rx, precision=jax.lax.Precision.HIGHEST)
    out = jnp.clip(out, 0.0, 1.0)
    out = jnp.where(jax.random.uniform(k_pj, ()) < P_JITTER, _jitter_one(k_jit, out), out)
    out = jnp.where(jax.random.uniform(k_pg, ()) < P_GRAY, jnp.broadcast_to(_gray(out), out.shape), out)
    return out


def simclr_augment(key: jax.Array, images: jax.Array) -> jax.Array:
    """One random SimCLR view of every image in ``images`` ((B, H, W, 3) float32 in [0, 1]).

    Deterministic given ``key``; image i uses ``jax.random.split(key, B)[i]``.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (B, H, W, 3), got {images.shape}")
    images = images.astype(jnp.float32)
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_augment_one)(keys, images)
