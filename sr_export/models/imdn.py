"""IMDN: Information Multi-Distillation Network (Hui et al., ACM MM 2019).

Module names follow the authors' code so their checkpoints load strictly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.models.blocks import ContrastChannelAttention, PixelShuffleUpsampler, conv, lrelu
from sr_export.models.detect import block_count, require_keys, scale_from_upsampler
from sr_export.models.registry import ModelSpec, OfficialWeights, StateDict


class InformationMultiDistillationBlock(nn.Module):
    """Three progressive refinement steps that each split off a quarter of the channels."""

    def __init__(self, channels: int, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled = int(channels * distillation_rate)
        self.remaining = channels - self.distilled
        self.c1 = conv(channels, channels, 3)
        self.c2 = conv(self.remaining, channels, 3)
        self.c3 = conv(self.remaining, channels, 3)
        self.c4 = conv(self.remaining, self.distilled, 3)
        self.act = lrelu()
        self.cca = ContrastChannelAttention(self.distilled * 4, self.distilled * 4 // 16)
        self.c5 = conv(self.distilled * 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        return self.c5(self.cca(torch.cat([d1, d2, d3, d4], dim=1))) + x


class IMDN(nn.Module):
    def __init__(self, scale: int = 4, in_channels: int = 3, channels: int = 64, blocks: int = 6) -> None:
        super().__init__()
        self.scale = scale
        self.fea_conv = conv(in_channels, channels, 3)
        self.block_names = [f"IMDB{i + 1}" for i in range(blocks)]
        for name in self.block_names:
            self.add_module(name, InformationMultiDistillationBlock(channels))
        self.c = nn.Sequential(conv(channels * blocks, channels, 1), lrelu())
        self.LR_conv = conv(channels, channels, 3)
        self.upsampler = PixelShuffleUpsampler(channels, in_channels, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.fea_conv(x)
        outputs = []
        h = features
        for name in self.block_names:
            h = getattr(self, name)(h)
            outputs.append(h)
        fused = self.c(torch.cat(outputs, dim=1))
        return self.upsampler(self.LR_conv(fused) + features)


def build_imdn(scale: int = 4, in_channels: int = 3, channels: int = 64, blocks: int = 6) -> IMDN:
    return IMDN(scale=scale, in_channels=in_channels, channels=channels, blocks=blocks)


def detect_imdn(state: StateDict) -> dict[str, Any]:
    require_keys(state, ("fea_conv.weight", "IMDB1.c1.weight", "upsampler.0.weight"), family="IMDN")
    channels, in_channels = state["fea_conv.weight"].shape[:2]
    blocks = block_count(state, "IMDB")
    if state["IMDB1.c1.weight"].shape[0] != channels:
        raise SrExportError("checkpoint does not look like IMDN: IMDB1.c1 width differs from fea_conv")
    return {
        "channels": int(channels),
        "blocks": blocks,
        "in_channels": int(in_channels),
        "scale": scale_from_upsampler(state["upsampler.0.weight"], int(in_channels)),
    }


_IMDN_REPO = "https://github.com/Zheng222/IMDN/raw/master/checkpoints"

SPECS = (
    ModelSpec(
        name="imdn",
        build=build_imdn,
        family="imdn",
        description="IMDN (ACM MM 2019): 64 ch, 6 information multi-distillation blocks",
        data_range=1.0,
        detect=detect_imdn,
        official_weights=(
            OfficialWeights(
                "imdn", 2, "imdn_x2.pth", f"{_IMDN_REPO}/IMDN_x2.pth",
                "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1", "IMDN_x2.pth",
            ),
            OfficialWeights(
                "imdn", 3, "imdn_x3.pth", f"{_IMDN_REPO}/IMDN_x3.pth",
                "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028", "IMDN_x3.pth",
            ),
            OfficialWeights(
                "imdn", 4, "imdn_x4.pth", f"{_IMDN_REPO}/IMDN_x4.pth",
                "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714", "IMDN_x4.pth",
            ),
        ),
    ),
)
