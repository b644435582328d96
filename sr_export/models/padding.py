"""Models that only compute on sides in multiples of N (window attention, U-Net-like
strides) made to take any size: pad the input (reflect), crop the output back."""

from __future__ import annotations

import torch
from torch import nn


class PadToMultiple(nn.Module):
    """``inner`` run on the input reflect-padded at the bottom/right to a multiple of ``multiple``.

    The padding amounts are computed from ``x.shape`` with tensor-size
    arithmetic, so both ONNX exporters keep them symbolic and the exported
    graph is right at every size.
    """

    def __init__(self, inner: nn.Module, multiple: int, scale: int) -> None:
        super().__init__()
        self.inner = inner
        self.multiple = multiple
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        padded = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return self.inner(padded)[..., : height * self.scale, : width * self.scale]
