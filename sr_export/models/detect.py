"""Helpers for reading an architecture off a state dict (keys and tensor shapes)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch

from sr_export.core.errors import SrExportError
from sr_export.models.registry import StateDict


def require_keys(state: StateDict, keys: Iterable[str], *, family: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise SrExportError(
            f"checkpoint does not look like {family} (no key '{missing[0]}'); "
            "pick the matching --model or check the file"
        )


def block_count(state: StateDict, prefix: str) -> int:
    """Number of consecutively numbered blocks ``{prefix}1``, ``{prefix}2``, ..."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.")
    numbers = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    count = 0
    while count + 1 in numbers:
        count += 1
    return count


def scale_from_upsampler(weight: torch.Tensor, out_channels: int) -> int:
    """Scale of a pixel-shuffle upsampler from its conv's output width (out * scale^2)."""
    ratio = weight.shape[0] / out_channels
    scale = round(math.sqrt(ratio))
    if scale < 1 or scale * scale * out_channels != weight.shape[0]:
        raise SrExportError(
            f"cannot read the scale off the upsampler: {weight.shape[0]} output channels "
            f"is not {out_channels} x scale^2"
        )
    return scale
