"""Rewrites that let Core ML take flexible input sizes.

Core ML's ``upsample_bilinear`` needs a constant scale factor, and
``resize_bilinear`` a constant output size. Attention blocks that resize a
pooled map back to the size of their input (E-RFDN's ESA does
``F.interpolate(m, size=x.shape[2:])``) have neither when H and W are
flexible: the ratio between the two sizes changes with the input. The same
bilinear resize can be spelled with ops Core ML takes at any size: source
indices and weights from ``arange`` and plain arithmetic on the sizes, then
two gathers and a blend per axis. Outputs are unchanged up to float rounding.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sr_export.models.blocks import EnhancedSpatialAttention


def bilinear_taps(out_size: int, in_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower and upper source indices and the upper weight of each output position along one axis.

    F.interpolate's bilinear rule (align_corners=False): source = (i + 0.5) *
    in / out - 0.5, clamped at 0. Sizes may be symbolic (torch.export) and
    stay so: they only enter through arange and arithmetic. These are 1-d
    tensors, which the Core ML target keeps in float32 even in FP16 programs
    (float16 cannot resolve fractions of a pixel past a few hundred pixels).
    """
    dst = torch.arange(out_size, dtype=like.dtype, device=like.device)
    src = ((dst + 0.5) * (in_size / out_size) - 0.5).clamp(min=0.0)
    lower = src.floor()
    upper = (lower + 1).clamp(max=in_size - 1)
    return lower.to(torch.int32), upper.to(torch.int32), src - lower


def resize_bilinear_like(m: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``F.interpolate(m, size=like.shape[2:], mode="bilinear", align_corners=False)`` by gathers and blends."""
    top, bottom, row_weight = bilinear_taps(like.shape[2], m.shape[2], m)
    left, right, col_weight = bilinear_taps(like.shape[3], m.shape[3], m)
    row_weight = row_weight.unsqueeze(1)
    rows = m.index_select(2, top) * (1 - row_weight) + m.index_select(2, bottom) * row_weight
    return rows.index_select(3, left) * (1 - col_weight) + rows.index_select(3, right) * col_weight


class GatherResizeESA(nn.Module):
    """E-RFDN's spatial attention with its resize to x's size done by :func:`resize_bilinear_like`."""

    def __init__(self, original: EnhancedSpatialAttention) -> None:
        super().__init__()
        self.inner = original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        esa = self.inner
        reduced = esa.conv1(x)
        pooled = nn.functional.max_pool2d(esa.conv2(reduced), kernel_size=7, stride=3)
        m = esa.relu(esa.conv_max(pooled))
        m = esa.relu(esa.conv3(m))
        m = esa.conv3_(m)
        m = resize_bilinear_like(m, x)
        return x * esa.sigmoid(esa.conv4(m + esa.conv_f(reduced)))


def rewrite_attention_resize(module: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``module`` with every ESA block resizing by gathers; returns it and how many it replaced."""
    found = [name for name, child in module.named_modules() if type(child) is EnhancedSpatialAttention]
    if not found:
        return module, 0
    rewritten = copy.deepcopy(module)
    for name in found:
        parent_name, _, attribute = name.rpartition(".")
        parent = rewritten.get_submodule(parent_name) if parent_name else rewritten
        if not attribute:
            return GatherResizeESA(rewritten).eval(), 1  # type: ignore[arg-type]
        setattr(parent, attribute, GatherResizeESA(getattr(parent, attribute)))
    return rewritten.eval(), len(found)


def rewrite_for_coreml(module: nn.Module, *, flexible: bool = True) -> tuple[nn.Module, list[str]]:
    """The Core ML rewrites that apply to ``module``: (rewritten copy, names of what was applied)."""
    applied = []
    if flexible:
        module, count = rewrite_attention_resize(module)
        if count:
            applied.append(f"attention resize to the input size as gathers ({count} ESA blocks)")
    return module, applied
