"""RFDN: Residual Feature Distillation Network (Liu et al., ECCV-W 2020).

One family, three named members:

- ``rfdn`` / ``rfdn-l``: the paper models (48 / 52 channels, 6 blocks) with
  contrast-aware channel attention;
- ``erfdn``: the AIM 2020 efficient-SR winner (50 channels, 4 blocks) with
  enhanced spatial attention, whose official checkpoint is published.

Which member a checkpoint holds is read off its keys and shapes, so
``--model rfdn --weights <E-RFDN file>`` builds the E-RFDN variant.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.models.blocks import (
    ContrastChannelAttention,
    EnhancedSpatialAttention,
    PixelShuffleUpsampler,
    conv,
    lrelu,
)
from sr_export.models.detect import block_count, require_keys, scale_from_upsampler
from sr_export.models.registry import ModelSpec, OfficialWeights, StateDict

Attention = Literal["cca", "esa"]


class ResidualFeatureDistillationBlock(nn.Module):
    """Three shallow-residual refinements, each with a 1x1 distillation branch."""

    def __init__(self, channels: int, attention: Attention) -> None:
        super().__init__()
        distilled = channels // 2
        self.c1_d = conv(channels, distilled, 1)
        self.c1_r = conv(channels, channels, 3)
        self.c2_d = conv(channels, distilled, 1)
        self.c2_r = conv(channels, channels, 3)
        self.c3_d = conv(channels, distilled, 1)
        self.c3_r = conv(channels, channels, 3)
        self.c4 = conv(channels, distilled, 3)
        self.act = lrelu()
        self.c5 = conv(distilled * 4, channels, 1)
        self.attention_name = attention
        if attention == "esa":
            self.esa = EnhancedSpatialAttention(channels)
        else:
            self.cca = ContrastChannelAttention(channels, channels // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.act(self.c1_d(x))
        r1 = self.act(self.c1_r(x) + x)
        d2 = self.act(self.c2_d(r1))
        r2 = self.act(self.c2_r(r1) + r1)
        d3 = self.act(self.c3_d(r2))
        r3 = self.act(self.c3_r(r2) + r2)
        d4 = self.act(self.c4(r3))
        fused = self.c5(torch.cat([d1, d2, d3, d4], dim=1))
        return getattr(self, self.attention_name)(fused)


class RFDN(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        in_channels: int = 3,
        channels: int = 48,
        blocks: int = 6,
        attention: Attention = "cca",
    ) -> None:
        super().__init__()
        if attention not in ("cca", "esa"):
            raise SrExportError(f"RFDN attention must be 'cca' or 'esa', not '{attention}'")
        self.scale = scale
        self.fea_conv = conv(in_channels, channels, 3)
        self.block_names = [f"B{i + 1}" for i in range(blocks)]
        for name in self.block_names:
            self.add_module(name, ResidualFeatureDistillationBlock(channels, attention))
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


def build_rfdn(
    scale: int = 4, in_channels: int = 3, channels: int = 48, blocks: int = 6, attention: Attention = "cca"
) -> RFDN:
    return RFDN(scale=scale, in_channels=in_channels, channels=channels, blocks=blocks, attention=attention)


def detect_rfdn(state: StateDict) -> dict[str, Any]:
    require_keys(state, ("fea_conv.weight", "B1.c1_d.weight", "upsampler.0.weight"), family="RFDN")
    channels, in_channels = state["fea_conv.weight"].shape[:2]
    if "B1.esa.conv1.weight" in state:
        attention = "esa"
    elif "B1.cca.conv_du.0.weight" in state:
        attention = "cca"
    else:
        raise SrExportError(
            "RFDN checkpoint has neither ESA (B1.esa.*) nor channel attention (B1.cca.*) keys; "
            "it fits no RFDN variant (rfdn, rfdn-l, erfdn)"
        )
    return {
        "channels": int(channels),
        "blocks": block_count(state, "B"),
        "attention": attention,
        "in_channels": int(in_channels),
        "scale": scale_from_upsampler(state["upsampler.0.weight"], int(in_channels)),
    }


_ERFDN_WEIGHTS = OfficialWeights(
    "erfdn", 4, "rfdn_aim2020_x4.pth",
    "https://github.com/njulj/RFDN/raw/master/trained_model/RFDN_AIM.pth",
    "11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c", "RFDN_AIM.pth",
)

SPECS = (
    ModelSpec(
        name="rfdn",
        build=build_rfdn,
        family="rfdn",
        description="RFDN (ECCV-W 2020 paper): 48 ch, 6 blocks, channel attention",
        kwargs={"channels": 48, "blocks": 6, "attention": "cca"},
        detect=detect_rfdn,
    ),
    ModelSpec(
        name="rfdn-l",
        build=build_rfdn,
        family="rfdn",
        description="RFDN-L (paper): 52 ch, 6 blocks, channel attention",
        kwargs={"channels": 52, "blocks": 6, "attention": "cca"},
        detect=detect_rfdn,
    ),
    ModelSpec(
        name="erfdn",
        build=build_rfdn,
        family="rfdn",
        description="E-RFDN, AIM 2020 efficient-SR winner: 50 ch, 4 blocks, ESA",
        kwargs={"channels": 50, "blocks": 4, "attention": "esa"},
        # The authors trained it on [0, 255] inputs.
        data_range=255.0,
        min_input_size=EnhancedSpatialAttention.min_input_size,
        detect=detect_rfdn,
        official_weights=(_ERFDN_WEIGHTS,),
    ),
)
