"""Padded transposed convs as unpadded ones followed by a crop.

A transposed conv's ``padding`` removes rows and columns from the border of
its full output. TFLite's TRANSPOSE_CONV only knows SAME and VALID padding, so
litert-torch cannot lower other amounts; IDN's 17x17 stride-s upsampler
(padding 9 - s) is one. Computing the full (VALID) output and slicing the
border off gives the same values with ops every converter has.
"""

from __future__ import annotations

import torch
from torch import nn


class CroppedTransposedConv(nn.Module):
    """An unpadded ``ConvTranspose2d`` whose output loses ``crop`` rows/columns per side."""

    def __init__(self, conv: nn.ConvTranspose2d, crop: tuple[int, int]) -> None:
        super().__init__()
        self.conv = conv
        self.crop = crop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        crop_h, crop_w = self.crop
        return y[:, :, crop_h : y.shape[2] - crop_h, crop_w : y.shape[3] - crop_w]


def unpadded(layer: nn.ConvTranspose2d) -> CroppedTransposedConv:
    replacement = nn.ConvTranspose2d(
        layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride, padding=0,
        output_padding=layer.output_padding, groups=layer.groups, bias=layer.bias is not None,
        dilation=layer.dilation, device=layer.weight.device, dtype=layer.weight.dtype,
    )
    replacement.load_state_dict(layer.state_dict())
    return CroppedTransposedConv(replacement.train(layer.training), tuple(layer.padding))


def rewritable(layer: nn.Module) -> bool:
    return (
        isinstance(layer, nn.ConvTranspose2d)
        and isinstance(layer.padding, tuple)
        and any(p > 0 for p in layer.padding)
        and layer.padding_mode == "zeros"
    )


def apply(module: nn.Module) -> int:
    """Replace every padded ``ConvTranspose2d`` submodule; return how many."""
    count = 0
    for parent in list(module.modules()):
        if isinstance(parent, CroppedTransposedConv):
            continue
        for name, child in list(parent._modules.items()):
            if child is not None and rewritable(child):
                parent._modules[name] = unpadded(child)
                count += 1
    return count
