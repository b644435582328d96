"""The IDN authors' evaluation (their MATLAB ``test_IDN.m``), reimplemented.

It differs from the protocol used for the other models (``evaluate.py``:
uint8 RGB LR images in, uint8 RGB out, Y measured afterwards) in where the
LR image comes from and what is rounded:

- HR Y = MATLAB ``rgb2ycbcr`` of the uint8 HR image, rounded, mod-cropped,
  then divided by 255; LR = MATLAB bicubic ``imresize`` of that *float*
  image by 1/scale, never rounded. Only the Y channel is used.
- The network's residual (Caffe's ``scale*h - scale + 1`` pixels, starting
  at HR pixel ``scale - 1``) is added to the bicubic upscaling of the LR
  image cropped the same way (``mycrop``); the result and HR become uint8
  (x*255, rounded half away from zero, clipped).
- The result is shaved 1 pixel at the top/left and ``scale`` at the
  bottom/right (``myshave``), HR and bicubic ``scale`` on every side;
  PSNR = 20 log10(255 / RMSE), SSIM as Wang et al.

sr-export's ``idn`` returns the full HR size with pixel i at HR pixel i, so
Caffe's region is ``[scale - 1:]`` of it (see ``models/idn.py``); taking
that and then ``myshave`` is exactly what is done below. The bicubic
baseline goes through the same code path, so its figures check the
protocol itself against the paper's bicubic column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.bench.metrics import psnr, shave, ssim
from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo
from sr_export.data.color import to_uint8, y_channel
from sr_export.data.datasets import ImagePair
from sr_export.data.matlab_resize import downscale, upscale
from sr_export.runtimes.base import Inferring

PROTOCOL = (
    "IDN authors' MATLAB test: HR Y (rgb2ycbcr, uint8) / 255 -> float bicubic LR (no rounding) -> model (Y) "
    "-> x255, uint8; result shaved 1 top/left and scale bottom/right of Caffe's region (= scale on every side "
    "of the full-size output), HR and bicubic scale on every side; PSNR peak 255; SSIM gaussian sigma 1.5"
)


@dataclass(frozen=True)
class LumaScore:
    name: str
    lr_size: tuple[int, int]
    psnr_y: float
    ssim_y: float
    bicubic_psnr_y: float
    bicubic_ssim_y: float


@dataclass(frozen=True)
class LumaEvalReport:
    runner: str
    dataset: str
    scale: int
    images: tuple[LumaScore, ...]

    @property
    def psnr_y(self) -> float:
        """Mean Y-PSNR over the dataset (dB), by the authors' protocol."""
        return self.mean("psnr_y")

    @property
    def ssim_y(self) -> float:
        return self.mean("ssim_y")

    def mean(self, field: str) -> float:
        return float(np.mean([getattr(image, field) for image in self.images]))

    def to_dict(self) -> dict[str, Any]:
        fields = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")
        return {
            "runner": self.runner,
            "dataset": self.dataset,
            "scale": self.scale,
            "protocol": PROTOCOL,
            "mean": {f: round(self.mean(f), 4) for f in fields},
            "images": [{"name": i.name, "lr_size": list(i.lr_size), **{f: round(getattr(i, f), 4) for f in fields}}
                       for i in self.images],
        }


def luma_pair(hr_rgb: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 HR Y, float64 LR Y in [0, 1]) as ``test_IDN.m`` makes them from an HR image."""
    hr_y = y_channel(hr_rgb) if hr_rgb.ndim == 3 else hr_rgb
    return hr_y, downscale(hr_y.astype(np.float64) / 255.0, scale)


def caffe_region(full: np.ndarray, scale: int) -> np.ndarray:
    """The part of a full-size IDN output that Caffe computes (it starts at HR pixel scale - 1)."""
    return full[scale - 1:, scale - 1:]


def score_luma(result: np.ndarray, hr_y: np.ndarray, bicubic: np.ndarray, scale: int) -> tuple[float, ...]:
    """(PSNR, SSIM) of the result and of bicubic, from float full-size HR planes in [0, 1]."""
    region = caffe_region(to_uint8(result * 255.0), scale)
    sr = region[1:-scale, 1:-scale]  # myshave
    gt = shave(hr_y, scale)
    bic = shave(to_uint8(bicubic * 255.0), scale)
    if sr.shape != gt.shape:
        raise SrExportError(f"result is {result.shape[1]}x{result.shape[0]} but HR is {hr_y.shape[1]}x{hr_y.shape[0]}")
    return psnr(sr, gt), ssim(sr, gt), psnr(bic, gt), ssim(bic, gt)


def evaluate_luma(
    runner: Inferring,
    info: ModelInfo,
    pairs: Sequence[ImagePair],
    *,
    dataset: str,
    progress: Callable[[], Any] | None = None,
) -> LumaEvalReport:
    if info.color != "y" or info.in_channels != 1:
        raise SrExportError(f"the IDN protocol feeds the Y channel alone; {info.name} takes {info.in_channels} "
                            f"{info.color.upper()} channel(s) (use --protocol standard)")
    images = []
    for pair in pairs:
        hr_y, lr = luma_pair(pair.hr, info.scale)
        if min(lr.shape) < info.min_input_size:
            raise SrExportError(f"{info.name} needs LR images of at least {info.min_input_size} px per side")
        batch = (lr * info.data_range).astype(np.float32)[None, None]
        result = runner.infer(batch)[0, 0].astype(np.float64) / info.data_range
        scores = score_luma(result, hr_y, upscale(lr, info.scale), info.scale)
        images.append(LumaScore(pair.name, lr.shape, *scores))
        if progress is not None:
            progress()
    return LumaEvalReport(runner.name, dataset, info.scale, tuple(images))
