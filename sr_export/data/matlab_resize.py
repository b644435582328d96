"""MATLAB-compatible bicubic ``imresize``, in NumPy.

SR benchmarks make their LR images with MATLAB's ``imresize(hr, 1/s,
'bicubic')``; reproducing it exactly is what lets a dataset without LR images
give the same PSNR as the published one. MATLAB's rules:

- cubic kernel with a = -0.5; when shrinking, the kernel is stretched by
  1/scale (antialiasing) and its weights scaled down to match;
- output size ``ceil(input * scale)``; output pixel ``x`` (1-based) samples
  input position ``x / scale + 0.5 * (1 - 1 / scale)``;
- indices outside the image are mirrored with the edge pixel repeated;
- one dimension at a time, the one shrunk most first (rows first on ties);
- on uint8 input each pass is rounded half away from zero and clipped back to
  uint8 before the next, which is what makes the results bit-exact.
"""

from __future__ import annotations

import math

import numpy as np

_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights, 0-based indices), each (out_length, taps), for one dimension."""
    stretch = scale < 1
    width = _KERNEL_WIDTH / scale if stretch else _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if stretch else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Mirror out-of-range indices, edge included ('symmetric').
    mirrored = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirrored[np.mod(indices - 1, 2 * in_length).astype(np.int64)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float, to_uint8: bool) -> np.ndarray:
    weights, indices = contributions(image.shape[axis], out_length, scale)
    moved = np.moveaxis(image, axis, 0).astype(np.float64)
    gathered = moved[indices]  # (out, taps, ...)
    result = np.einsum("ot,ot...->o...", weights, gathered)
    if to_uint8:
        result = np.clip(np.floor(result + 0.5), 0, 255)  # values are >= 0 here after clip, so this is half-away
    return np.moveaxis(result, 0, axis)


def imresize(
    image: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) image; uint8 in -> uint8 out, float in -> float64 out."""
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale or output_shape")
    in_shape = image.shape[:2]
    if output_shape is not None:
        scales = (output_shape[0] / in_shape[0], output_shape[1] / in_shape[1])
        out_shape = tuple(output_shape)
    else:
        scales = (float(scale), float(scale))
        out_shape = tuple(int(math.ceil(n * scale)) for n in in_shape)
    to_uint8 = image.dtype == np.uint8
    result = image
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # stable: rows first on ties
        result = _resize_axis(result, axis, out_shape[axis], scales[axis], to_uint8)
    return result.astype(np.uint8) if to_uint8 else result


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    return imresize(image, 1.0 / factor)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return imresize(image, float(factor))
