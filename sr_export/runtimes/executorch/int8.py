"""INT8 programs: PT2E static quantisation with the XNNPACK quantizer, calibrated on the build's
calibration set, the SR-sensitive ops kept float by the quantizer's node filter.

Weights are int8 per output channel, activations int8 per tensor (symmetric,
XNNPACK's scheme), ranges from the quantizer's own histogram observers fed
the recipe's LR patches. Which ops stay float is decided on the exported graph
by the SR rules (:mod:`.sr_regions`) plus the modules named in
``options.keep_float``; nothing in the graph is edited by hand. The quantised
module is then exported and lowered like a float one: XNNPACK runs the
quantised convs as integer kernels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sr_export.core.errors import SrExportError, StageFailed, first_line

if TYPE_CHECKING:
    import torch

    from sr_export.core.model_info import ModelInfo
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.runtimes.executorch.options import ExecuTorchRuntimeOptions


@dataclass(frozen=True)
class QuantizedModule:
    module: Any  # the converted (quantise / dequantise) graph module, ready to export and lower
    recipe: str
    patches: int
    float_ops: Mapping[str, str] = field(default_factory=dict)  # node name -> why it stays float

    def details(self) -> dict[str, Any]:
        return {"scheme": "pt2e-xnnpack (int8 per-channel weights, int8 per-tensor activations, SR ops float)",
                "recipe": self.recipe, "calibration_patches": self.patches, "float_ops": dict(self.float_ops)}

    def summary(self) -> str:
        return (f"INT8 (PT2E, XNNPACK quantizer) calibrated on {self.patches} patches of recipe {self.recipe}; "
                f"{len(self.float_ops)} SR-sensitive op(s) kept float")


def quantize_module(module: torch.nn.Module, sample: torch.Tensor, bounds: tuple[int, int] | None,
                    settings: ExecuTorchRuntimeOptions, calibration: CalibrationSet | None,
                    info: ModelInfo) -> QuantizedModule:
    """``module`` prepared, calibrated and converted by PT2E for XNNPACK."""
    import torch

    from sr_export.runtimes.executorch.lower import export_program, import_executorch, quiet_deprecations
    from sr_export.runtimes.executorch.sr_regions import float_nodes

    if calibration is None:
        raise SrExportError("an INT8 ExecuTorch program needs calibration: give a recipe (--calib NAME)")
    import_executorch()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with quiet_deprecations():
        graph_module = export_program(module, sample, bounds).module()
        # A recipe that is not SR-aware (naive) quantises every op the quantizer takes, as on the other paths.
        kept = float_nodes(graph_module, settings.keep_float, sr_rules=calibration.recipe.sr_aware)
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        quantizer.set_filter_function(lambda node: node.name not in kept)
        try:
            prepared = prepare_pt2e(graph_module, quantizer)
            with torch.no_grad():
                for batch in calibration:
                    prepared(torch.from_numpy(batch))
            converted = convert_pt2e(prepared)
        except Exception as exc:
            raise StageFailed("quantize", f"PT2E quantisation failed: {first_line(exc)[:300]}") from exc
    return QuantizedModule(converted, calibration.recipe.name, len(calibration), kept)
