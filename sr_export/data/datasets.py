"""SR evaluation datasets: HR images, with LR images given or made on the fly.

A dataset folder follows the common layout (Set5, Set14, B100, Urban100 as
the SR community ships them)::

    Set5/HR/baby.bmp
    Set5/LR_bicubic/X4/babyx4.bmp      (optional)

A folder of images without an ``HR`` sub-folder is read as HR images. Missing
LR images are made with MATLAB-compatible bicubic downscaling, which
reproduces the published LR images bit for bit.

Images are read by :func:`sr_export.data.images.read_image` (its rule for
every Pillow mode). Every header is checked before any image is decoded, and
an HR image too small to be scored is refused with its name: skipping it
would quietly change the dataset the mean is reported for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.data.images import (
    BUILTIN_IMAGES,
    builtin_image,
    center_crop,
    list_images,
    mod_crop,
    no_images_message,
    probe_image,
    read_image,
)
from sr_export.data.matlab_resize import downscale

BUILTIN = "builtin"
BUILTIN_HR_SIZE = 240  # divisible by 2, 3 and 4, small enough for a quick demo
# What is left of an HR image after the mod-crop and the ``scale``-pixel shave
# must hold SSIM's 11x11 Gaussian window (sigma 1.5, sr_export.bench.metrics).
SCORED_MIN_SIDE = 11


@dataclass(frozen=True)
class ImagePair:
    name: str
    hr: np.ndarray  # uint8 RGB, mod-cropped to the scale
    lr: np.ndarray  # uint8 RGB, hr / scale
    lr_source: str  # "given" or "matlab-bicubic"


def load_dataset(location: str | Path, scale: int) -> list[ImagePair]:
    """Pairs from a dataset folder, or the built-in photos when ``location`` is 'builtin'."""
    if str(location) == BUILTIN:
        return builtin_dataset(scale)
    root = Path(location)
    if not root.is_dir():
        raise SrExportError(f"dataset folder not found: {root}")
    hr_dir = root / "HR" if (root / "HR").is_dir() else root
    hr_paths = list_images(hr_dir)
    if not hr_paths:
        raise SrExportError(f"{no_images_message(hr_dir, 'HR images')}; expected {root}/HR/*.png "
                            f"or images directly in {root}")
    for path in hr_paths:  # headers first: a bad file fails before any image is decoded
        header = probe_image(path)
        check_hr_size(header.height, header.width, path, scale)
    lr_dir = _lr_folder(root, scale)
    return [_pair(path, lr_dir, scale) for path in hr_paths]


def min_hr_side(scale: int) -> int:
    """The smallest HR side that can be scored at ``scale``: mod-cropped, shaved ``scale`` px per border."""
    return (-(-SCORED_MIN_SIDE // scale) + 2) * scale


def check_hr_size(height: int, width: int, path: Path, scale: int) -> None:
    side = min_hr_side(scale)
    if min(height, width) < side:
        raise SrExportError(
            f"HR image {path} is {width}x{height}; scoring at x{scale} needs at least {side}x{side} (mod-crop to "
            f"{scale}, {scale} px shaved per border, an 11 px SSIM window); remove it from the dataset"
        )


def builtin_dataset(scale: int) -> list[ImagePair]:
    pairs = []
    for name in BUILTIN_IMAGES:
        hr = center_crop(builtin_image(name), BUILTIN_HR_SIZE, BUILTIN_HR_SIZE)
        hr = mod_crop(hr, scale)
        pairs.append(ImagePair(name, hr, downscale(hr, scale), "matlab-bicubic"))
    return pairs


def _lr_folder(root: Path, scale: int) -> Path | None:
    for candidate in (
        root / "LR_bicubic" / f"X{scale}",
        root / "LR_bicubic" / f"x{scale}",
        root / "LR" / f"X{scale}",
        root / "LR" / f"x{scale}",
    ):
        if candidate.is_dir():
            return candidate
    return None


def _pair(hr_path: Path, lr_dir: Path | None, scale: int) -> ImagePair:
    image = read_image(hr_path)
    check_hr_size(image.shape[0], image.shape[1], hr_path, scale)  # the decoded size, whatever the header said
    hr = mod_crop(image, scale)
    lr_path = _find_lr(hr_path.stem, lr_dir, scale) if lr_dir else None
    if lr_path is None:
        return ImagePair(hr_path.stem, hr, downscale(hr, scale), "matlab-bicubic")
    lr = read_image(lr_path)
    if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
        raise SrExportError(
            f"{lr_path.name} is {lr.shape[1]}x{lr.shape[0]} but {hr_path.name} mod-cropped to x{scale} is "
            f"{hr.shape[1]}x{hr.shape[0]}; the LR image must be exactly 1/{scale} of it"
        )
    return ImagePair(hr_path.stem, hr, lr, "given")


def _find_lr(stem: str, lr_dir: Path, scale: int) -> Path | None:
    for path in list_images(lr_dir):
        if path.stem in (f"{stem}x{scale}", f"{stem}_x{scale}", f"{stem}X{scale}", stem):
            return path
    return None
