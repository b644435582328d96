"""Weights fine-tuned for INT8, put back into the PyTorch model, for converters that start from PyTorch.

Quantisation-aware fine-tuning (:mod:`sr_export.quantize.finetune`) trains
the ONNX QDQ graph: its tuned weights are keyed by ONNX initialiser name, which
the exporters take from the module's state dict. A runtime whose converter
starts from the PyTorch module (TFLite via litert-torch) gets the same tuned
weights by name; it calibrates its own activation ranges on them, since its
graph and tensor names are its converter's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sr_export.core.errors import SrExportError
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.recipes import CalibrationRecipe

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel


def finetuned_model(model: LoadedModel, recipe: CalibrationRecipe, calibration: CalibrationSet, *, sr_aware: bool,
                    say: Callable[[str], Any] = lambda _message: None) -> tuple[LoadedModel, dict[str, Any]]:
    """``model`` with the weights ``recipe``'s fine-tuning gives (cached), and what the metadata records.

    The student is the ONNX Runtime QDQ graph of the legacy export with the
    recipe's float layers (``sr_aware``: the SR-sensitive ones, as the
    target's scheme keeps them). The returned model keeps the checkpoint's
    ``weights_sha256`` (the artifact is still judged against that FP32
    model); caches of what is built from it must key the fine-tuning too.
    """
    import copy

    import torch

    from sr_export.export.onnx import ExportOptions, export_onnx
    from sr_export.quantize.finetune import finetuned_graph
    from sr_export.quantize.qdq import onnx_calibration_key, plan_float_nodes
    from sr_export.quantize.statistics import statistics_for

    settings = recipe.finetune
    if settings is None:
        raise SrExportError(f"recipe {recipe.name} has no [finetune] table")
    # An all-integer file quantises the statistics too; an SR-aware one keeps them (as its converter does).
    student_recipe = replace(recipe, sr_aware=sr_aware, float_statistics=recipe.float_statistics and sr_aware)
    say(f"fine-tuning the weights for INT8 against FP32 ({settings.steps} steps of {settings.batch}x"
        f"{settings.patch_size}px calibration crops, on the ONNX graph; cached once done)")
    proto = export_onnx(model, ExportOptions(exporter="legacy")).proto
    key = onnx_calibration_key(proto, model.weights_sha256, calibration)
    statistics = statistics_for(proto, key, calibration, student_recipe)
    plan = plan_float_nodes(proto, student_recipe)
    info = model.info
    _tuned, _statistics, result = finetuned_graph(proto, statistics, student_recipe, plan, key, calibration,
                                                  data_range=info.data_range,
                                                  clamp=info.data_range if sr_aware else None,
                                                  flavour="onnxruntime")
    state = model.module.state_dict()
    unknown = sorted(name for name in result.weights if name not in state)
    if unknown:
        raise SrExportError(f"the fine-tuned weights {', '.join(unknown[:3])} are not in {info.name}'s state dict "
                            "(the export renamed them); fine-tune through the ONNX targets instead")
    module = copy.deepcopy(model.module)
    module.load_state_dict({**state, **{name: torch.from_numpy(value.copy()).to(state[name].dtype)
                                        for name, value in result.weights.items()}})
    tuned_hash = hashlib.sha256()
    for name in sorted(result.weights):
        tuned_hash.update(name.encode())
        tuned_hash.update(result.weights[name].tobytes())
    record = {"from_checkpoint": model.weights_sha256, "student": "ONNX Runtime QDQ graph (legacy export)",
              "sr_aware": sr_aware, "tuned_weights_sha256": tuned_hash.hexdigest(),
              "settings": settings.to_dict(), **result.summary()}
    note = (f"weights fine-tuned for INT8 (distilled from FP32 on calibration patches) from checkpoint sha256 "
            f"{model.weights_sha256}")
    tuned = replace(model, module=module, notes=[*model.notes, note])
    return tuned, record
