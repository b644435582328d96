"""Images <-> model tensors, following each model's colour mode and data range."""

from __future__ import annotations

import numpy as np

from sr_export.core.model_info import ModelInfo
from sr_export.data.color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb
from sr_export.data.matlab_resize import upscale


def image_to_batch(rgb: np.ndarray, info: ModelInfo) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 (1, C, H, W) in the model's data range."""
    if info.color == "y":
        planes = to_uint8(rgb_to_ycbcr(rgb)[..., 0])[None]
    else:
        planes = np.transpose(rgb, (2, 0, 1))
    return (planes.astype(np.float32) * np.float32(info.data_range / 255.0))[None]


def batch_to_image(output: np.ndarray, info: ModelInfo, lr_rgb: np.ndarray | None = None) -> np.ndarray:
    """Model output (1, C, H, W) -> uint8 RGB: clamp to the data range, then round.

    A Y-only model's chroma comes from MATLAB-bicubic upscaling of the LR
    image's Cb/Cr (the authors' way of showing colour results).
    """
    planes = np.clip(output[0].astype(np.float64), 0.0, info.data_range) * (255.0 / info.data_range)
    planes = np.rint(planes)
    if info.color != "y":
        return np.transpose(planes, (1, 2, 0)).astype(np.uint8)
    if lr_rgb is None:
        return np.repeat(planes[0][..., None], 3, axis=2).astype(np.uint8)
    chroma = upscale(rgb_to_ycbcr(lr_rgb)[..., 1:], info.scale)
    h, w = planes.shape[1:]
    ycbcr = np.concatenate([planes[0][..., None], chroma[:h, :w]], axis=2)
    return to_uint8(ycbcr_to_rgb(ycbcr))
