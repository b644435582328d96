"""MATLAB-compatible bicubic ``imresize``, in NumPy.

SR benchmarks make their LR images with MATLAB's ``imresize(hr, 1/s,
'bicubic')``; reproducing it bit for bit is what lets a dataset without LR
images give the same PSNR as the published one. Other bicubics differ
(OpenCV: a = -0.75 and no antialiasing; PIL: other borders and fixed-point
weights), so this follows MATLAB's own recipe:

- cubic kernel with a = -0.5; when shrinking, the kernel is stretched by
  1/scale (antialiasing) and its weights scaled down to match;
- output size ``ceil(input * scale)``; output pixel ``x`` (1-based) samples
  input position ``x / scale + 0.5 * (1 - 1 / scale)``;
- each output's weights are normalised to sum to 1, indices outside the image
  are mirrored with the edge pixel repeated ('symmetric'), and taps whose
  weight is zero for every output are dropped;
- one dimension at a time, the one shrunk most first (rows first on ties);
- on uint8 input each pass is rounded half away from zero and clipped back to
  0..255 before the next, which is what makes the results bit-exact.
"""

from __future__ import annotations

import math

import numpy as np

_KERNEL_WIDTH = 4.0
# Elements per working block in _resize_axis (2 MiB of float64): fits in cache, few Python iterations.
_BLOCK_ELEMENTS = 1 << 18


def imresize(image: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Resize an (H, W) or (H, W, C) image like MATLAB's ``imresize(image, ..., 'bicubic')``.

    Give exactly one of ``scale`` (both sides; output ``ceil(side * scale)``)
    or ``output_shape`` ((height, width); each side then has its own scale,
    ``out / in``, as in MATLAB).

    uint8 in -> uint8 out, bit-exact with MATLAB. Float in (any float dtype)
    -> float64 out, unrounded and unclipped, so bicubic overshoot survives;
    float64 because that is what MATLAB computes in and what callers mixing
    the result with other float64 planes expect. Other dtypes are refused:
    MATLAB would round and clip them to their own range, which this does not
    emulate. The result is always a new C-contiguous array.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"expected a uint8 or float image, got {image.dtype}")
    in_shape = (int(image.shape[0]), int(image.shape[1]))
    if min(in_shape) < 1 or image.size == 0:
        raise ValueError(f"cannot resize an empty image of shape {image.shape}")
    out_shape, scales = _plan(in_shape, scale, output_shape)

    is_uint8 = image.dtype == np.uint8
    result = np.asarray(image, dtype=np.float64)
    # sorted() is stable, so rows (axis 0) go first when the scales tie.
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        weights, indices = _contributions(in_shape[axis], out_shape[axis], scales[axis])
        result = _resize_axis(result, axis, weights, indices, quantize=is_uint8)
    return result.astype(np.uint8) if is_uint8 else result


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """MATLAB ``imresize(image, 1/factor, 'bicubic')``: how SR benchmarks make LR images."""
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    return imresize(image, 1.0 / factor)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """MATLAB ``imresize(image, factor, 'bicubic')``: the classic bicubic SR baseline."""
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    return imresize(image, float(factor))


def _plan(
    in_shape: tuple[int, int], scale: float | None, output_shape: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output (height, width) and the per-dimension scales, as MATLAB derives them."""
    if scale is not None and output_shape is not None:
        raise ValueError("give exactly one of scale or output_shape, not both")
    if output_shape is not None:
        if len(output_shape) != 2 or min(output_shape) < 1:
            raise ValueError(f"output_shape must be two positive sizes, got {output_shape}")
        height, width = int(output_shape[0]), int(output_shape[1])
        return (height, width), (height / in_shape[0], width / in_shape[1])
    if scale is None:
        raise ValueError("give exactly one of scale or output_shape")
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    # Same double arithmetic as MATLAB (scale * size, then ceil), so sizes agree with it.
    return (math.ceil(in_shape[0] * scale), math.ceil(in_shape[1] * scale)), (scale, scale)


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5), support [-2, 2]."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based input indices, each (out_length, taps), for one dimension.

    Mirrors MATLAB's ``contributions``; the arithmetic is kept in the same
    order so that weights, and hence rounded uint8 results, match exactly.
    """
    shrink = scale < 1
    width = _KERNEL_WIDTH / scale if shrink else _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # 'symmetric' padding: 0 -> 1, -1 -> 2, n + 1 -> n, ... (edge repeated).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray, quantize: bool) -> np.ndarray:
    """Resize float64 ``image`` along ``axis``; ``quantize`` rounds to uint8 values as MATLAB does.

    Works on blocks of the other spatial axis, each copied so that the lines
    being resized are its first axis: gathering whole rows of a small
    contiguous block is a plain copy that stays in cache, where gathering
    along the width of the full image moves C-sized pieces (about 3x slower).
    """
    out_length, taps = weights.shape
    result = np.empty(image.shape[:axis] + (out_length,) + image.shape[axis + 1 :], dtype=np.float64)
    lines = np.moveaxis(image, axis, 0)  # (in, other[, C]) views, no copies
    target = np.moveaxis(result, axis, 0)
    step = max(1, _BLOCK_ELEMENTS // (out_length * lines[0, 0].size))
    view = (-1,) + (1,) * (lines.ndim - 1)  # per-output weights broadcast over the rest
    for start in range(0, lines.shape[1], step):
        source = np.ascontiguousarray(lines[:, start : start + step])
        block = np.zeros((out_length,) + source.shape[1:], dtype=np.float64)
        gathered = np.empty_like(block)
        # Tap by tap, not a dense matrix product: that keeps MATLAB's summation
        # order, so sums landing on a .5 boundary round the way MATLAB's do.
        for tap in range(taps):
            np.take(source, indices[:, tap], axis=0, out=gathered)
            gathered *= weights[:, tap].reshape(view)
            block += gathered
        if quantize:
            _round_to_uint8_range(block)
        target[:, start : start + step] = block
    return result


def _round_to_uint8_range(values: np.ndarray) -> None:
    """In place: MATLAB's uint8 conversion, i.e. round half away from zero, then saturate to 0..255.

    Clipping first is equivalent (anything below 0 rounds to <= 0, anything
    above 255 to >= 255) and leaves only non-negative values, for which half
    away from zero is half up. ``x - floor(x)`` is exact in floating point,
    unlike ``floor(x + 0.5)``, which rounds 0.49999999999999994 up. (NumPy's
    ``round`` goes half to even, which is not MATLAB's rule.)
    """
    np.clip(values, 0, 255, out=values)
    whole = np.floor(values)
    np.subtract(values, whole, out=values)
    np.add(whole, values >= 0.5, out=values)
