"""The AIM 2020 / NTIRE 2022 efficient-SR complexity counter.

The challenges count with PyTorch forward hooks, so only *module* calls are
seen:

- FLOPs: multiply-accumulates of every ``nn.Conv2d`` / ``nn.ConvTranspose2d``
  call, ``kh*kw*C_in*C_out/groups*H_out*W_out`` (bias not counted), plus one
  per output element of every activation-module call (ReLU, PReLU, ELU,
  LeakyReLU, ReLU6). Functional calls, sigmoid, add, mul, pooling,
  interpolation and pixel shuffle count zero.
- Activations: output elements of every conv call.
- #Conv: number of conv calls.
- Params: parameter elements (buffers excluded).

That definition is what published tables use, so it is reproduced exactly;
:mod:`sr_export.bench.onnx_count` gives the count that sees every op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from sr_export.core.errors import SrExportError

COUNTED_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)
COUNTED_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class AimCount:
    input_shape: tuple[int, ...]
    params: int
    flops: int
    activations: int
    conv_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_aim(module: nn.Module, input_shape: tuple[int, ...]) -> AimCount:
    """Count ``module`` on a zero input of ``input_shape`` (N, C, H, W) the challenges' way."""
    if isinstance(module, torch.jit.ScriptModule):
        raise SrExportError("the AIM counter needs module hooks, which TorchScript models do not run")
    totals = {"flops": 0, "activations": 0, "convs": 0}

    def on_conv(layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        kh, kw = layer.kernel_size
        per_position = kh * kw * layer.in_channels * layer.out_channels // layer.groups
        totals["flops"] += per_position * output.shape[0] * output.shape[2] * output.shape[3]
        totals["activations"] += output.numel()
        totals["convs"] += 1

    def on_activation(_layer: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        totals["flops"] += output.numel()

    handles = []
    for layer in module.modules():
        if isinstance(layer, COUNTED_CONVS):
            handles.append(layer.register_forward_hook(on_conv))
        elif isinstance(layer, COUNTED_ACTIVATIONS):
            handles.append(layer.register_forward_hook(on_activation))
    try:
        with torch.inference_mode():
            module(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return AimCount(
        input_shape=tuple(input_shape),
        params=sum(p.numel() for p in module.parameters()),
        flops=totals["flops"],
        activations=totals["activations"],
        conv_count=totals["convs"],
    )
