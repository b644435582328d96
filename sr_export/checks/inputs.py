"""Real LR images to feed parity checks.

Random noise hides problems that natural images expose (saturated regions,
smooth gradients), so parity runs on photos: the built-in ones, downscaled
with MATLAB bicubic like real SR inputs, or the user's own LR images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_export.data.images import BUILTIN_IMAGES, builtin_image, center_crop, list_images, read_image
from sr_export.data.matlab_resize import downscale
from sr_export.data.tensors import image_to_batch
from sr_export.errors import SrExportError
from sr_export.models.loader import ModelInfo

# LR height x width; the second is odd and non-square on purpose: it catches
# exporters and runtimes that assume even or square feature maps.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (45, 71))
MAX_USER_SIDE = 256  # user images are centre-cropped to this to bound the check's run time


@dataclass(frozen=True)
class ParityInput:
    name: str
    batch: np.ndarray  # (1, C, H, W) float32 in the model's data range

    @property
    def hw(self) -> tuple[int, int]:
        return self.batch.shape[2], self.batch.shape[3]


def builtin_parity_inputs(
    info: ModelInfo, sizes: Sequence[tuple[int, int]] | None = None, per_size: int = 2
) -> list[ParityInput]:
    """``per_size`` built-in photos, MATLAB-downscaled by the model's scale, cropped to each size."""
    inputs = []
    names = BUILTIN_IMAGES[: max(1, per_size)]
    for height, width in sizes or DEFAULT_SIZES:
        _check_size(info, height, width)
        for name in names:
            lr = downscale(builtin_image(name), info.scale)
            crop = center_crop(lr, height, width)
            if crop.shape[:2] != (height, width):
                raise SrExportError(f"size {height}x{width} is larger than the built-in LR image {name}")
            inputs.append(ParityInput(f"{name}-{height}x{width}", image_to_batch(crop, info)))
    return inputs


def folder_parity_inputs(
    info: ModelInfo, folder: str | Path, static_hw: tuple[int, int] | None = None
) -> list[ParityInput]:
    """Each image in ``folder``, used as an LR input at its own size (or cropped to a fixed one)."""
    paths = list_images(folder)
    if not paths:
        raise SrExportError(f"no images (png, jpg, bmp, tif) in {folder}")
    inputs = []
    for path in paths:
        image = read_image(path)
        height, width = static_hw or (min(image.shape[0], MAX_USER_SIDE), min(image.shape[1], MAX_USER_SIDE))
        crop = center_crop(image, height, width)
        if crop.shape[:2] != (height, width):
            raise SrExportError(f"{path.name} is smaller than the artifact's fixed input {height}x{width}")
        if min(crop.shape[:2]) < info.min_input_size:
            raise SrExportError(f"{path.name} is smaller than {info.name}'s minimum input {info.min_input_size} px")
        inputs.append(ParityInput(f"{path.stem}-{height}x{width}", image_to_batch(crop, info)))
    return inputs


def _check_size(info: ModelInfo, height: int, width: int) -> None:
    if min(height, width) < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}, not {height}x{width}"
        )
