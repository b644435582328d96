"""SR-aware graph rewrites: PyTorch-level transforms applied before a converter sees the model.

Each rewrite lives in its own module and exposes ``apply(module) -> int``: it
edits ``module`` in place and returns how many places it changed (0 when the
pattern does not occur). Every rewrite leaves the model's outputs unchanged
(up to float rounding); its tests prove that numerically.

``REWRITES`` says which targets want which rewrite; :func:`apply_rewrites` runs
them, in order, on a copy of the module, so the caller's model is never touched.
A new rewrite is one module here plus one ``REWRITES`` entry.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass

from torch import nn

from sr_export.core.errors import SrExportError


@dataclass(frozen=True)
class Rewrite:
    location: str  # "module:function" with signature apply(nn.Module) -> int
    targets: frozenset[str]  # target names (BACKENDS keys) that get this rewrite by default
    purpose: str  # one line, shown in notes and --help


REWRITES: dict[str, Rewrite] = {
    "pixel-shuffle-dcr": Rewrite(
        "sr_export.rewrites.pixel_shuffle:apply",
        frozenset({"tflite"}),
        "pixel shuffle as DCR depth-to-space with permuted conv weights (no rank-6 reshape)",
    ),
    "transposed-conv-output-padding": Rewrite(
        "sr_export.rewrites.transposed_conv:apply",
        frozenset({"tflite"}),
        "transposed convs with output_padding as zero-padded kernels",
    ),
    "conv-split": Rewrite(
        "sr_export.rewrites.conv_split:apply",
        frozenset({"executorch"}),
        "a conv whose output is split along channels as one conv per chunk (no split op)",
    ),
    "transposed-conv-crop": Rewrite(
        "sr_export.rewrites.transposed_conv_crop:apply",
        frozenset({"tflite"}),
        "padded transposed convs (TFLite has only SAME/VALID) as unpadded ones plus a crop",
    ),
}


def rewrites_for(target: str) -> list[str]:
    """Names of the rewrites ``target`` gets by default, in the order they run."""
    return [name for name, rewrite in REWRITES.items() if target in rewrite.targets]


def apply_rewrites(
    module: nn.Module, target: str, enabled: bool = True, only: list[str] | None = None
) -> tuple[nn.Module, list[str]]:
    """A rewritten copy of ``module`` for ``target`` and the rewrites that changed something.

    Entries of the returned list read ``"name (N sites)"``. With ``enabled``
    False the module itself comes back untouched (``--no-rewrite``). ``only``
    picks rewrites by name instead of the target's defaults.
    """
    if not enabled:
        return module, []
    names = rewrites_for(target) if only is None else list(only)
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        raise SrExportError(f"unknown rewrite(s) {', '.join(unknown)}; known: {', '.join(REWRITES)}")
    rewritten = copy.deepcopy(module)
    applied = []
    for name in names:
        module_name, function_name = REWRITES[name].location.split(":")
        count = getattr(importlib.import_module(module_name), function_name)(rewritten)
        if count:
            applied.append(f"{name} ({count} site{'s' if count != 1 else ''})")
    return rewritten, applied
