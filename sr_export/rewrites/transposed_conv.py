"""Transposed convs with ``output_padding`` as transposed convs with zero-padded kernels.

``output_padding`` adds rows/columns at the bottom/right of the output. The
TFLite converter has no legal form for it (its StableHLO lowering keeps an
input-dilated convolution that TFLite rejects). The same output comes from a
kernel ``output_padding`` taps larger, the extra taps zero: the full
(uncropped) output grows by those rows, which receive exactly the
contributions PyTorch computes there, and the symmetric ``padding`` crop then
leaves the requested size.
"""

from __future__ import annotations

import torch
from torch import nn


def zero_padded(layer: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    """An equivalent ``ConvTranspose2d`` without output padding (dilation 1 only)."""
    extra_h, extra_w = layer.output_padding
    kernel_h, kernel_w = layer.kernel_size
    replacement = nn.ConvTranspose2d(
        layer.in_channels, layer.out_channels, (kernel_h + extra_h, kernel_w + extra_w),
        stride=layer.stride, padding=layer.padding, groups=layer.groups, bias=layer.bias is not None,
        device=layer.weight.device, dtype=layer.weight.dtype,
    )
    with torch.no_grad():
        replacement.weight.copy_(nn.functional.pad(layer.weight, (0, extra_w, 0, extra_h)))
        if layer.bias is not None:
            replacement.bias.copy_(layer.bias)
    return replacement.train(layer.training)


def rewritable(layer: nn.Module) -> bool:
    return (
        isinstance(layer, nn.ConvTranspose2d)
        and any(p > 0 for p in layer.output_padding)
        and all(d == 1 for d in layer.dilation)
        and layer.padding_mode == "zeros"
        and isinstance(layer.padding, tuple)
    )


def apply(module: nn.Module) -> int:
    """Replace every rewritable ``ConvTranspose2d`` submodule; return how many."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and rewritable(child):
                parent._modules[name] = zero_padded(child)
                count += 1
    return count
