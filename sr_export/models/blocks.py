"""Layers shared by several model families.

Activations are modules (not ``F.*`` calls) on purpose: the AIM 2020 / NTIRE
complexity counter only sees module calls, and the published figures were made
that way, so the structure here must match the authors' code call for call.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A 'same'-padded convolution with bias, as every SR paper here uses."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=True
    )


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=0.05, inplace=True)


class ContrastChannelAttention(nn.Module):
    """Contrast-aware channel attention (IMDN): gate channels by std + mean of each map."""

    def __init__(self, channels: int, reduced_channels: int) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, reduced_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(reduced_channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # Population standard deviation (divide by H*W), as the authors compute it.
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class EnhancedSpatialAttention(nn.Module):
    """ESA (E-RFDN): a cheap large-receptive-field spatial gate.

    Needs an input of at least 15x15 pixels: the unpadded stride-2 conv and
    the 7x7 max-pool would otherwise have nothing to work on.
    """

    min_input_size = 15

    def __init__(self, channels: int) -> None:
        super().__init__()
        reduced = channels // 4
        self.conv1 = nn.Conv2d(channels, reduced, 1)
        self.conv_f = nn.Conv2d(reduced, reduced, 1)
        self.conv_max = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv2 = nn.Conv2d(reduced, reduced, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv3_ = nn.Conv2d(reduced, reduced, 3, padding=1)
        self.conv4 = nn.Conv2d(reduced, channels, 1)
        self.sigmoid = nn.Sigmoid()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        pooled = nn.functional.max_pool2d(self.conv2(reduced), kernel_size=7, stride=3)
        m = self.relu(self.conv_max(pooled))
        m = self.relu(self.conv3(m))
        m = self.conv3_(m)
        m = nn.functional.interpolate(m, size=(x.size(2), x.size(3)), mode="bilinear", align_corners=False)
        gate = self.sigmoid(self.conv4(m + self.conv_f(reduced)))
        return x * gate


class PixelShuffleUpsampler(nn.Sequential):
    """3x3 conv to out_channels*scale^2, then pixel shuffle (keys ``upsampler.0``)."""

    def __init__(self, channels: int, out_channels: int, scale: int) -> None:
        super().__init__(conv(channels, out_channels * scale * scale, 3), nn.PixelShuffle(scale))


def _matlab_cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's bicubic kernel (a = -0.5)."""
    ax = x.abs()
    near = 1.5 * ax**3 - 2.5 * ax**2 + 1
    far = -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return torch.where(ax <= 1, near, torch.where(ax < 2, far, torch.zeros_like(ax)))


class MatlabBicubicUpsample(nn.Module):
    """Integer-factor bicubic upscaling as MATLAB ``imresize`` does it, in float.

    MATLAB (kernel a = -0.5, mirrored borders) differs from ``F.interpolate``
    (a = -0.75, clamped borders); IDN was trained against MATLAB's, so its
    residual path must use the same. Each of the ``scale**2`` output phases is
    a fixed 5x5 filter over the mirror-padded input, followed by a pixel
    shuffle; that keeps the graph to Conv + DepthToSpace, which every target
    supports. Needs inputs of at least 2x2 pixels.
    """

    def __init__(self, scale: int, channels: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.channels = channels
        offsets = torch.arange(-2, 3, dtype=torch.float64)
        phases = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5
        taps = _matlab_cubic(phases[:, None] - offsets[None, :])
        taps = taps / taps.sum(dim=1, keepdim=True)
        kernel = torch.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("kernel", kernel.repeat(channels, 1, 1, 1).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _mirror_pad2(x, dim=2)
        x = _mirror_pad2(x, dim=3)
        phases = nn.functional.conv2d(x, self.kernel, groups=self.channels)
        return nn.functional.pixel_shuffle(phases, self.scale)


def _mirror_pad2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Pad two pixels on both sides of ``dim`` with MATLAB's 'symmetric' rule (edge repeated)."""
    first, second = x.narrow(dim, 0, 1), x.narrow(dim, 1, 1)
    last, before_last = x.narrow(dim, x.size(dim) - 1, 1), x.narrow(dim, x.size(dim) - 2, 1)
    return torch.cat([second, first, x, last, before_last], dim=dim)
