"""Image sizes as users write them: ``HxW`` (LR height x width) and ``CxHxW``.

One parser for every flag, profile key and suite entry, so a size is read the
same way everywhere and a bad one gets the same one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable

from sr_export.core.errors import SrExportError

Size = tuple[int, int]


def _numbers(text: str) -> list[int]:
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return []
    return values if min(values, default=0) >= 1 else []


def parse_size(text: str) -> Size:
    """'256x256' or '360x640' (height x width) -> (256, 256); '3x64x64' -> (64, 64)."""
    values = _numbers(text)
    if len(values) not in (2, 3):
        raise SrExportError(f"size '{text}' is not HxW (e.g. 256x256) or CxHxW (e.g. 3x256x256)")
    return values[-2], values[-1]


def parse_sizes(text: str | Iterable[str]) -> list[Size]:
    """'256x256,360x640' (or a list of such strings) -> [(256, 256), (360, 640)]."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return [parse_size(part) for part in parts if str(part).strip()]


def parse_chw(text: str, channels: int) -> tuple[int, int, int]:
    """'3x256x256' -> (3, 256, 256); 'HxW' takes ``channels`` as C."""
    values = _numbers(text)
    if len(values) == 2:
        values = [channels, *values]
    if len(values) != 3:
        raise SrExportError(f"size '{text}' is not CxHxW (e.g. {channels}x256x256) or HxW (e.g. 256x256)")
    return values[0], values[1], values[2]


def as_size(value: str | Iterable[int]) -> Size:
    """A size given as text or as a (height, width) pair."""
    if isinstance(value, str):
        return parse_size(value)
    height, width = (int(v) for v in value)
    if min(height, width) < 1:
        raise SrExportError(f"size {height}x{width} must be at least 1x1")
    return height, width


def hw_text(hw: Iterable[int]) -> str:
    return "x".join(str(int(v)) for v in hw)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
