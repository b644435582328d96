"""BT.601 studio-swing colour conversion, as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb``.

SR papers report PSNR on this Y channel, so it is reproduced exactly
(coefficients on [0,1] RGB, output in [16, 235] for Y).
"""

from __future__ import annotations

import numpy as np

_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8-range RGB (H, W, 3) -> float64 YCbCr in MATLAB's studio swing."""
    return rgb.astype(np.float64) / 255.0 @ _RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; float64 RGB on the 0..255 scale (not clipped)."""
    return (ycbcr.astype(np.float64) - _OFFSET) @ np.linalg.inv(_RGB_TO_YCBCR).T * 255.0


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """The rounded uint8 Y channel of a uint8 RGB image, as MATLAB returns it."""
    return to_uint8(rgb_to_ycbcr(rgb)[..., 0])


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip, as MATLAB's uint8() does."""
    return np.clip(np.sign(values) * np.floor(np.abs(values) + 0.5), 0, 255).astype(np.uint8)
