"""Image sizes as users write them: ``HxW`` (LR height x width) and ``CxHxW``.

One parser for every flag, profile key and suite entry, so a size is read the
same way everywhere and a bad one gets the same one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sr_export.core.errors import SrExportError

Size = tuple[int, int]

# The largest LR input sr-export accepts. Activations (and a x4 output) grow with
# the area, so an absurd size must be refused here, in one line, and not as an
# allocation failure of many gigabytes deep in an exporter or runtime.
MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192
MAX_CHANNELS = 64

# Whole numbers only (ASCII digits, optional sign): '1e3', '2.5' and '1_000' are not sizes.
_NUMBER = re.compile(r"[+-]?[0-9]+")
# More digits than this is over every bound; int() of thousands of digits is itself refused by Python.
_MAX_DIGITS = 12


def _numbers(text: object) -> list[int] | None:
    """'3x64x64' -> [3, 64, 64]; None when it is not numbers joined by 'x'."""
    parts = str(text).lower().replace(" ", "").split("x")
    if not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    return [int(p) if len(p.lstrip("+-")) <= _MAX_DIGITS else (-1 if p.startswith("-") else 10**_MAX_DIGITS)
            for p in parts]


def _check_bounds(text: object, height: int, width: int, channels: int | None = None) -> None:
    values = (height, width) if channels is None else (channels, height, width)
    if min(values) < 1:
        raise SrExportError(f"size {text}: sizes must be positive (at least 1x1)")
    if max(height, width) > MAX_SIDE or height * width > MAX_PIXELS:
        raise SrExportError(f"size {text} is larger than the largest size sr-export handles (H, W <= {MAX_SIDE} "
                            f"and H x W <= {MAX_PIXELS} LR pixels); run bigger images in tiles")
    if channels is not None and channels > MAX_CHANNELS:
        raise SrExportError(f"size {text} has {channels} channels; sr-export handles at most {MAX_CHANNELS}")


def parse_size(text: str) -> Size:
    """'256x256' or '360x640' (height x width) -> (256, 256); '3x64x64' -> (64, 64)."""
    values = _numbers(text)
    if values is None or len(values) not in (2, 3):
        raise SrExportError(f"size {text!r} is not HxW (e.g. 256x256) or CxHxW (e.g. 3x256x256)")
    _check_bounds(text, values[-2], values[-1], values[0] if len(values) == 3 else None)
    return values[-2], values[-1]


def parse_sizes(text: str | Iterable[str]) -> list[Size]:
    """'256x256,360x640' (or a list of such strings) -> [(256, 256), (360, 640)].

    An empty list or an empty item ('32x32,,') is refused: it is a typo, and
    dropping it would silently run other sizes than the ones meant.
    """
    parts = text.split(",") if isinstance(text, str) else [str(p) for p in text]
    if not parts or any(not part.strip() for part in parts):
        raise SrExportError(f"size list {text!r} has an empty item; give sizes separated by single commas, "
                            "e.g. 64x64,45x71")
    return [parse_size(part) for part in parts]


def parse_chw(text: str, channels: int) -> tuple[int, int, int]:
    """'3x256x256' -> (3, 256, 256); 'HxW' takes ``channels`` as C."""
    values = _numbers(text)
    if values is not None and len(values) == 2:
        values = [channels, *values]
    if values is None or len(values) != 3:
        raise SrExportError(f"size {text!r} is not CxHxW (e.g. {channels}x256x256) or HxW (e.g. 256x256)")
    _check_bounds(text, values[1], values[2], values[0])
    return values[0], values[1], values[2]


def as_size(value: str | Iterable[int]) -> Size:
    """A size given as text or as a (height, width) pair."""
    if isinstance(value, str):
        return parse_size(value)
    items = list(value)
    try:
        numbers = [int(v) for v in items]
        whole = len(numbers) == 2 and all(n == v for n, v in zip(numbers, items))
    except (TypeError, ValueError, OverflowError):  # None, nan, inf, 'abc' among the items
        whole = False
    if not whole:
        raise SrExportError(f"size {items!r} is not a (height, width) pair of whole numbers")
    height, width = numbers
    _check_bounds(f"{height}x{width}", height, width)
    return height, width


def hw_text(hw: Iterable[int]) -> str:
    return "x".join(str(int(v)) for v in hw)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
