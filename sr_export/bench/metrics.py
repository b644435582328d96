"""PSNR and SSIM the way SR papers report them.

Y channel of BT.601 (MATLAB ``rgb2ycbcr``, rounded to uint8) and RGB; the
HR image mod-cropped to the scale and ``scale`` pixels shaved from every
border; PSNR = 10 log10(255^2 / MSE); SSIM as Wang et al. (Gaussian window,
sigma 1.5, population covariance), via scikit-image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.data.color import y_channel


@dataclass(frozen=True)
class QualityScores:
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            a.astype(np.float64),
            b.astype(np.float64),
            data_range=255.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=2 if a.ndim == 3 else None,
        )
    )


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def score(sr: np.ndarray, hr: np.ndarray, scale: int) -> QualityScores:
    """Scores of a uint8 RGB result against its mod-cropped uint8 RGB ground truth."""
    if sr.shape != hr.shape:
        raise SrExportError(f"result is {sr.shape[1]}x{sr.shape[0]} but the HR image is {hr.shape[1]}x{hr.shape[0]}")
    sr_y, hr_y = shave(y_channel(sr), scale), shave(y_channel(hr), scale)
    sr_rgb, hr_rgb = shave(sr, scale), shave(hr, scale)
    return QualityScores(psnr(sr_y, hr_y), ssim(sr_y, hr_y), psnr(sr_rgb, hr_rgb), ssim(sr_rgb, hr_rgb))


def mean_scores(scores: list[QualityScores]) -> QualityScores:
    return QualityScores(*(float(np.mean([getattr(s, f) for s in scores])) for f in QualityScores.__dataclass_fields__))
