"""Real LR images to feed parity checks.

Random noise hides problems that natural images expose (saturated regions,
smooth gradients), so parity runs on photos: the built-in ones, downscaled
with MATLAB bicubic like real SR inputs, or the user's own LR images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo
from sr_export.data.images import (
    BUILTIN_IMAGES,
    builtin_image,
    center_crop,
    list_images,
    no_images_message,
    probe_image,
    read_image,
)
from sr_export.data.matlab_resize import downscale, imresize
from sr_export.data.tensors import image_to_batch

# LR height x width; the second is odd and non-square on purpose: it catches
# exporters and runtimes that assume even or square feature maps.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (45, 71))
MAX_USER_SIDE = 256  # user images are centre-cropped to this to bound the check's run time


@dataclass(frozen=True)
class ParityInput:
    name: str
    batch: np.ndarray  # (1, C, H, W) float32 in the model's data range
    tiled: bool = False  # a fixed-size artifact runs it in tiles (judged by the tiling tolerance)

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
            crop = natural_lr_image(name, info.scale, height, width)
            inputs.append(ParityInput(f"{name}-{height}x{width}", image_to_batch(crop, info)))
    return inputs


def natural_lr_image(name: str, scale: int, height: int, width: int) -> np.ndarray:
    """A ``height`` x ``width`` LR crop of a built-in photo, MATLAB-bicubic downscaled by ``scale``.

    When that LR image is too small for the size, the photo is downscaled
    less (and, for sizes beyond the photo itself, mirrored) so that any size
    still gets natural image content.
    """
    image = builtin_image(name)
    lr = downscale(image, scale)
    if lr.shape[0] < height or lr.shape[1] < width:
        factor = min(image.shape[0] / height, image.shape[1] / width)
        if factor > 1:
            lr = imresize(image, output_shape=(round(image.shape[0] / factor), round(image.shape[1] / factor)))
        else:
            lr = np.pad(image, ((0, max(0, height - image.shape[0])), (0, max(0, width - image.shape[1])), (0, 0)),
                        mode="symmetric")
    return center_crop(lr, height, width)


def tiled_parity_sizes(tile_hw: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """Odd sizes spanning several tiles in both directions.

    None is smaller than a tile: such an input is padded up to the tile, and
    near its border the network then sees reflected pixels instead of its
    own zero padding, a difference of the padding, not of the tiling.
    """
    tile_h, tile_w = tile_hw
    return ((2 * tile_h + 13, tile_w + tile_w // 2 + 7), (tile_h + 3, 2 * tile_w + 1))


def artifact_parity_inputs(
    info: ModelInfo,
    static_hw: tuple[int, int] | None,
    sizes: Sequence[tuple[int, int]] | None = None,
    per_size: int = 2,
) -> list[ParityInput]:
    """Built-in inputs for an artifact: at its own size, plus tiled sizes when it has a fixed one."""
    if static_hw is None:
        return builtin_parity_inputs(info, sizes, per_size)
    native = builtin_parity_inputs(info, [static_hw], per_size)
    others = [hw for hw in (sizes or tiled_parity_sizes(static_hw)) if tuple(hw) != tuple(static_hw)]
    others = [hw for hw in others if min(hw) >= info.min_input_size]
    tiled = [replace(case, tiled=True) for case in builtin_parity_inputs(info, others, 1)] if others else []
    return native + tiled


def folder_parity_inputs(
    info: ModelInfo, folder: str | Path, static_hw: tuple[int, int] | None = None
) -> list[ParityInput]:
    """Each image in ``folder``, used as an LR input at its own size (a fixed-size artifact tiles it)."""
    paths = list_images(folder)
    if not paths:
        raise SrExportError(no_images_message(Path(folder)))
    for path in paths:  # headers first: a bad file fails before any image is decoded
        header = probe_image(path)
        if header.min_side < info.min_input_size:
            raise SrExportError(f"{path} is {header.width}x{header.height}, smaller than {info.name}'s minimum "
                                f"input of {info.min_input_size} px; remove it or give a larger image")
    inputs = []
    for path in paths:
        image = read_image(path)
        height, width = min(image.shape[0], MAX_USER_SIDE), min(image.shape[1], MAX_USER_SIDE)
        crop = center_crop(image, height, width)
        tiled = static_hw is not None and (height, width) != tuple(static_hw)
        inputs.append(ParityInput(f"{path.stem}-{height}x{width}", image_to_batch(crop, info), tiled))
    return inputs


def _check_size(info: ModelInfo, height: int, width: int) -> None:
    if min(height, width) < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}, not {height}x{width}"
        )
