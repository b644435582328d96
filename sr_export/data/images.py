"""Reading images, and the built-in natural images used when the user gives none.

The built-in set comes from scikit-image's bundled sample photos, which ship
inside its wheel, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sr_export.core.errors import SrExportError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
BUILTIN_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def read_image(path: str | Path) -> np.ndarray:
    """An image as uint8 RGB (H, W, 3); any failure becomes a one-line error."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise SrExportError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SrExportError(
            f"cannot read image {path}: {type(exc).__name__}; use PNG, JPEG, BMP or TIFF files"
        ) from exc


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SrExportError(f"image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def builtin_image(name: str) -> np.ndarray:
    """One of scikit-image's bundled colour photos as uint8 RGB."""
    from skimage import data

    if name not in BUILTIN_IMAGES:
        raise SrExportError(f"unknown built-in image '{name}'; choose from {', '.join(BUILTIN_IMAGES)}")
    image = np.asarray(getattr(data, name)())
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height`` x ``width`` window (no larger than the image)."""
    h, w = image.shape[:2]
    height, width = min(height, h), min(width, w)
    top, left = (h - height) // 2, (w - width) // 2
    return image[top : top + height, left : left + width]


def mod_crop(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of ``multiple`` (the SR convention)."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]
