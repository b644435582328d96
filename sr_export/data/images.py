"""Reading images, and the built-in natural images used when the user gives none.

Every image sr-export reads from disk (calibration folders, ``--images``,
dataset folders) goes through :func:`read_image`, so one rule decides what a
file becomes. Every consumer works on uint8 RGB (H, W, 3), so the rule is
how each Pillow mode maps onto that:

- 8-bit colour and grey: ``RGB`` as stored; ``L`` (grey) and ``1`` (bilevel,
  0/255) replicated to three equal channels; ``P`` through its palette;
  ``YCbCr``, ``CMYK``, ``LAB`` and ``HSV`` by Pillow's colour conversion
  (CMYK without colour management: R = (255 - C)(255 - K) / 255).
- 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and the ``I`` that
  older Pillow releases make of a 16-bit grey PNG): the full 0..65535 range
  onto 0..255, ``round(v / 257)``; never clipped at 255.
- 16-bit-per-channel colour PNG and TIFF: Pillow itself keeps only the high
  byte as it decodes (mode ``RGB``/``RGBA``), which is within 1 LSB of
  ``round(v / 257)`` and never clips; the finer levels are lost, and
  nothing downstream could use them.
- 32-bit integer (``I``, other than the PNG case above) and 32-bit float
  (``F``): refused. Such files have no agreed white level (a float TIFF may
  hold 0..1, 0..255 or HDR values), and guessing would scale silently wrong.
- Alpha (``LA``, ``PA``, ``RGBA``, a palette or colour key with
  transparency): dropped; the colours are used as stored, never composited
  onto an invented background. :func:`probe_image` notes it, for the
  commands that tell the user.
- EXIF orientation is applied (the picture as viewers show it), and a
  multi-frame file gives its first frame.
- Any size from 1x1 is read; what is too small depends on the use (the
  calibration patch, a dataset's scoring window, a model's minimum), and
  those callers check it up front with the file named.

A file that cannot be read (missing, empty, a folder named like an image,
corrupt, truncated, not an image) is one :class:`SrExportError` naming the
file and what to do.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_export.core.errors import SrExportError, first_line

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
BUILTIN_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")

SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112
_FIX = "save it as an 8- or 16-bit PNG, or remove it from the folder"


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding its pixels."""

    path: Path
    width: int  # as displayed: EXIF orientation applied
    height: int
    mode: str  # Pillow's mode
    notes: tuple[str, ...] = ()  # what reading it will do that the user should know (alpha dropped)

    @property
    def min_side(self) -> int:
        return min(self.width, self.height)

    def describe(self) -> str:
        return f"{self.path.name} ({self.width}x{self.height})"


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), by the rule above; any failure is a one-line error."""
    path = Path(path)
    with _opened(path) as image:
        return to_rgb8(image, str(path))


def probe_image(path: str | Path) -> ImageHeader:
    """Size, mode and notes of an image file from its header: a cheap check before expensive work.

    Refuses what :func:`read_image` would refuse for its mode; damage past the
    header (a truncated file) only shows when the pixels are decoded.
    """
    path = Path(path)
    with _opened(path) as image:
        reason = _unsupported_reason(image.mode, image.format)
        if reason:
            raise SrExportError(f"{path}: {reason}; {_FIX}")
        width, height = image.size
        if _orientation(image) in _ROTATED_ORIENTATIONS:
            width, height = height, width
        return ImageHeader(path, width, height, image.mode, _notes(image))


def image_from_bytes(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes (a PNG sr-export rendered, say) as uint8 RGB, by the same rule as files."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return to_rgb8(image, name)
    except SrExportError:
        raise
    except Exception as exc:  # Pillow's decoders raise many types
        raise SrExportError(f"cannot decode image {name}: {first_line(exc)}") from exc


def to_rgb8(image: Image.Image, name: str = "image") -> np.ndarray:
    """A Pillow image as uint8 RGB (H, W, 3): the conversion rule of this module."""
    from PIL import ImageOps

    file_format = image.format  # lost by the transposed copy below
    reason = _unsupported_reason(image.mode, file_format)
    if reason:
        raise SrExportError(f"{name}: {reason}; {_FIX}")
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_GREY or _is_16bit_png_grey(image.mode, file_format):
        grey = np.rint(np.asarray(image).astype(np.float64) / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    try:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    except ValueError as exc:  # a mode Pillow has no RGB conversion for
        raise SrExportError(f"{name}: Pillow cannot convert mode {image.mode} to RGB ({exc}); {_FIX}") from exc
    return np.array(rgb, dtype=np.uint8)


def list_images(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` (by suffix, sorted), hidden files left out.

    Something named like an image that is not a file (a folder ``x.png``) is
    refused rather than skipped: the user meant it to be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise SrExportError(f"image folder {folder} {what}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    for path in paths:
        if not path.is_file():
            raise SrExportError(f"{path} is named like an image but is not a file; rename it or move it out of {folder}")
    return paths


def other_files(folder: Path) -> list[str]:
    """Names in ``folder`` that :func:`list_images` leaves out (for 'no images' messages)."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."))


def no_images_message(folder: Path, what: str = "images") -> str:
    """'no <what> in <folder>', naming what was there instead."""
    others = other_files(folder) if folder.is_dir() else []
    shown = ", ".join(others[:5]) + (" ..." if len(others) > 5 else "")
    found = f"; it holds only {len(others)} other file(s): {shown}" if others else ""
    suffixes = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
    return f"no {what} ({suffixes}) in {folder}{found}"


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


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """The file opened by Pillow; whatever goes wrong reading it becomes one line naming it."""
    from PIL import Image

    if not path.exists():
        raise SrExportError(f"image not found: {path}")
    if not path.is_file():
        raise SrExportError(f"{path} is not a file; give an image file")
    if path.stat().st_size == 0:
        raise SrExportError(f"image {path} is empty (0 bytes); replace it or remove it")
    try:
        with Image.open(path) as image:
            yield image
    except SrExportError:
        raise
    except Exception as exc:  # Pillow's decoders raise many types (OSError, SyntaxError, struct.error, ...)
        raise SrExportError(
            f"cannot read image {path} ({first_line(exc)}); replace it with a PNG, JPEG, BMP or TIFF file "
            "or remove it"
        ) from exc


def _unsupported_reason(mode: str, file_format: str | None) -> str | None:
    if mode == "F":
        return "32-bit float pixels (mode F) have no agreed white level (0..1? 0..255? HDR?), so they are not guessed"
    if mode == "I" and not _is_16bit_png_grey(mode, file_format):
        return "32-bit integer pixels (mode I) have no agreed white level, so they are not guessed"
    return None


def _is_16bit_png_grey(mode: str, file_format: str | None) -> bool:
    # PNG holds at most 16 bits per sample; older Pillow opens 16-bit grey PNGs as mode I.
    return mode == "I" and file_format == "PNG"


def _orientation(image: Any) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block: the pixels are still readable as stored
        return 1


def _notes(image: Any) -> tuple[str, ...]:
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return ("its alpha channel (transparency) is ignored: the colours are used as stored",)
    return ()
