"""IDN: Information Distillation Network (Hui et al., CVPR 2018).

Built from the authors' Caffe deploy graph: the network sees the LR luma (Y)
channel only and predicts a residual over MATLAB-bicubic upscaling. Layer
names mirror the Caffe ones (``conv3_1`` ... becomes ``dblocks.0.conv_1`` ...,
``down1`` becomes ``dblocks.0.down``) so the Caffe weights map one to one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.models.blocks import MatlabBicubicUpsample, conv, lrelu
from sr_export.models.registry import CompanionFile, ModelSpec, OfficialWeights, StateDict


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

    Caffe's 17x17 deconvolution (stride s, pad 8) yields ``s*h - s + 1`` rows
    and columns, the first of which is HR pixel ``s - 1`` (the authors add
    the bicubic image cropped by ``s - 1`` at the top/left, MATLAB ``mycrop``).
    Here the same deconvolution runs with padding ``9 - s``, which shifts its
    output by ``s - 1`` pixels: output pixel ``i`` is Caffe's ``i - (s - 1)``,
    so on HR pixels ``s - 1 .. s*h - 1`` the result equals Caffe's residual plus
    the bicubic image exactly. The ``s - 1`` top rows and left columns Caffe
    does not produce are the deconvolution's own values there (the terms of
    the transposed convolution that Caffe's pad cuts off), and cropping to
    ``s*h`` drops nothing Caffe has. Every benchmark shaves at least ``s``
    pixels, so scores only ever see Caffe's region.

    ``scale_factor`` is a buffer, not a parameter: the deconvolution's weights
    have the same shape at every scale, so checkpoints carry the scale
    explicitly and a x2 file cannot silently load as x4.
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
        self.register_buffer("scale_factor", torch.tensor(scale, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv2(self.act(self.conv1(x))))
        residual = self.upsample(self.dblocks(h))
        height, width = x.size(2) * self.scale, x.size(3) * self.scale
        return residual[:, :, :height, :width] + self.bicubic(x)


def build_idn(scale: int = 4, in_channels: int = 1, channels: int = 64, blocks: int = 4) -> IDN:
    return IDN(scale=scale, in_channels=in_channels, channels=channels, blocks=blocks)


def detect_idn(state: StateDict) -> dict[str, Any]:
    """Scale and channels of an ``idn`` state dict (the scale is stored, see :class:`IDN`)."""
    for key in ("scale_factor", "conv1.weight", "upsample.weight"):
        if key not in state:
            raise SrExportError(f"not an idn checkpoint: no '{key}' (Caffe models: pass the .caffemodel itself)")
    return {"scale": int(state["scale_factor"]), "in_channels": int(state["conv1.weight"].shape[1])}




# The authors' Caffe models (github.com/Zheng222/IDN-Caffe, test/caffemodel and,
# for x3, test/model), kept in the weights folder under idn_caffe/ with the
# deploy prototxt beside each.
_IDN_REPO = "https://github.com/Zheng222/IDN-Caffe/raw/master/test"
_IDN_CAFFEMODELS = {
    2: ("caffemodel/IDN_x2.caffemodel", "eed047c60c2af108140e14a1ebcd78701c5645837c35c740419ab3533db26b99"),
    3: ("model/IDN_x3.caffemodel", "ef94a2760f3975876021b6be884f27c491e445937934be0339d5711cf1afa1af"),
    4: ("caffemodel/IDN_x4.caffemodel", "1be49ba811d6d3f2fd61bbaa345e4a5a70746bb24f723b734dc8af9c817b96c2"),
}
_IDN_PROTOTXTS = {
    2: "790e7c616dc8572d262e2d254dbec7b6f305e4303305faa80ecf7bbda1f221ca",
    3: "2d2460eb1ffd6984619c8e4fc56e2a48a3a280a4b4a8828d6ba3260a0e7bae32",
    4: "37606e3fd9e9de97e87ae3a589c53d36833d56cf52383b541894afdef91c26ef",
}
_IDN_WEIGHTS = tuple(
    OfficialWeights(
        "idn", scale, f"idn_caffe/IDN_x{scale}.caffemodel", f"{_IDN_REPO}/{path}", sha256, f"IDN_x{scale}.caffemodel",
        companions=(CompanionFile(f"IDN_x{scale}_deploy.prototxt", f"{_IDN_REPO}/IDN_x{scale}_deploy.prototxt",
                                  _IDN_PROTOTXTS[scale]),),
    )
    for scale, (path, sha256) in _IDN_CAFFEMODELS.items()
)


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
        detect=detect_idn,
        official_weights=_IDN_WEIGHTS,
        caffe_import="sr_export.models.caffe.idn_import:import_caffe",
    ),
)
