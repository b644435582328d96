"""IDN: Information Distillation Network (Hui et al., CVPR 2018).

Built from the authors' Caffe deploy graph: the network sees the LR luma (Y)
channel only and predicts a residual over MATLAB-bicubic upscaling. Layer
names mirror the Caffe ones (``conv3_1`` ... becomes ``dblocks.0.conv_1`` ...,
``down1`` becomes ``dblocks.0.down``) so the Caffe weights map one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from sr_export.models.blocks import MatlabBicubicUpsample, conv, lrelu
from sr_export.models.registry import ModelSpec


class DistillationBlock(nn.Module):
    """Enhancement unit (two 3-conv stacks, split after the first) + 1x1 compression."""

    def __init__(self, channels: int = 64, d: int = 16, s: int = 4, groups: int = 4) -> None:
        super().__init__()
        self.keep = d
        self.conv_1 = conv(channels, channels - d, 3)
        self.conv_2 = conv(channels - d, channels - 2 * d, 3, groups=groups)
        self.conv_3 = conv(channels - 2 * d, channels, 3)
        self.conv_4 = conv(channels - d, channels, 3)
        self.conv_5 = conv(channels, channels - d, 3, groups=groups)
        self.conv_6 = conv(channels - d, channels + d, 3)
        self.down = conv(channels + d, channels, 1)
        self.act = lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv_1(x))
        h = self.act(self.conv_2(h))
        h = self.act(self.conv_3(h))
        kept, rest = torch.split(h, (self.keep, h.size(1) - self.keep), dim=1)
        h = self.act(self.conv_4(rest))
        h = self.act(self.conv_5(h))
        h = self.act(self.conv_6(h))
        return self.act(self.down(torch.cat([x, kept], dim=1) + h))


class IDN(nn.Module):
    """IDN with a full-size output: pixel (i, j) of the result is HR pixel (i, j).

    Caffe's 17x17 deconvolution (pad 8) yields ``scale*h - scale + 1`` rows
    starting at HR row ``scale - 1``; padding ``9 - scale`` and cropping to
    ``scale*h`` keeps those same values at their HR positions and fills the
    border rows Caffe leaves out.
    """

    def __init__(self, scale: int = 4, in_channels: int = 1, channels: int = 64, blocks: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = conv(in_channels, channels, 3)
        self.conv2 = conv(channels, channels, 3)
        self.act = lrelu()
        self.dblocks = nn.Sequential(*(DistillationBlock(channels) for _ in range(blocks)))
        self.upsample = nn.ConvTranspose2d(channels, in_channels, 17, stride=scale, padding=9 - scale)
        self.bicubic = MatlabBicubicUpsample(scale, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv2(self.act(self.conv1(x))))
        residual = self.upsample(self.dblocks(h))
        height, width = x.size(2) * self.scale, x.size(3) * self.scale
        return residual[:, :, :height, :width] + self.bicubic(x)


def build_idn(scale: int = 4, in_channels: int = 1, channels: int = 64, blocks: int = 4) -> IDN:
    return IDN(scale=scale, in_channels=in_channels, channels=channels, blocks=blocks)


SPECS = (
    ModelSpec(
        name="idn",
        build=build_idn,
        family="idn",
        description="IDN (CVPR 2018): Y channel, 4 distillation blocks, 17x17 deconv + bicubic residual",
        in_channels=1,
        data_range=1.0,
        color="y",
        min_input_size=2,
    ),
)
