"""Pixel shuffle as DCR depth-to-space, with the preceding conv's output channels permuted.

PyTorch's pixel shuffle reads channels in CRD order (channel c*r*r + i*r + j
becomes pixel (i, j) of output channel c); TFLite's DEPTH_TO_SPACE and mobile
GPU delegates expect DCR order ((i*r + j)*C + c), and in NHWC. When a conv
feeds the shuffle, permuting that conv's output channels once, offline, turns
the CRD shuffle into a DCR one, which in NHWC is a rank-4 reshape / transpose /
reshape instead of the rank-6 reshape + permute of the default decomposition.
"""

from __future__ import annotations

import torch
from torch import nn


def crd_to_dcr(channels: int, factor: int) -> torch.Tensor:
    """Index map: DCR channel k holds CRD channel ``crd_to_dcr(...)[k]`` (``channels`` after the shuffle)."""
    return torch.arange(channels * factor * factor).reshape(channels, factor * factor).t().reshape(-1)


class DepthToSpaceDCR(nn.Module):
    """Depth-to-space in DCR channel order on NCHW tensors, computed in NHWC with rank-4 tensors only."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        r = self.factor
        y = x.permute(0, 2, 3, 1)  # N, H, W, (i j c)
        y = y.reshape(n * h, w, r, c // r)  # (n h), w, i, (j c)
        y = y.transpose(1, 2)  # (n h), i, w, (j c)
        y = y.reshape(n, h * r, w * r, c // (r * r))
        return y.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, order=DCR"


def apply(module: nn.Module) -> int:
    """Rewrite every ``Conv2d`` directly followed by ``PixelShuffle`` inside an ``nn.Sequential``.

    Only sequential pairs are rewritten: there the conv's output provably feeds
    nothing but the shuffle. A shuffle used elsewhere is left as it is
    (litert-torch still lowers it, with more reshapes).
    """
    count = 0
    for container in list(module.modules()):
        if not isinstance(container, nn.Sequential):
            continue
        names = list(container._modules)
        for first, second in zip(names, names[1:]):
            conv, shuffle = container._modules[first], container._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(shuffle, nn.PixelShuffle):
                _permute_outputs(conv, crd_to_dcr(conv.out_channels // shuffle.upscale_factor**2, shuffle.upscale_factor))
                container._modules[second] = DepthToSpaceDCR(shuffle.upscale_factor)
                count += 1
    return count


def _permute_outputs(conv: nn.Conv2d, order: torch.Tensor) -> None:
    with torch.no_grad():
        conv.weight.copy_(conv.weight[order].clone())
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[order].clone())
