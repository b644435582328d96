"""Complexity of a model, counted two ways side by side (``sr-bench profile``).

The AIM/NTIRE counter is what challenge tables use; the ONNX-graph count sees
every op the runtime actually executes (functional convs, matmuls, attention,
elementwise math) that the challenge counter misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from sr_export.bench.complexity import AimCount, count_aim
from sr_export.bench.onnx_count import GraphCount, count_onnx
from sr_export.core.errors import SrExportError
from sr_export.export.budget import DEFAULT_EXPORT_TIMEOUT_S
from sr_export.models.loader import LoadedModel


@dataclass(frozen=True)
class ProfileReport:
    model: str
    scale: int
    input_shape: tuple[int, ...]
    aim: AimCount | None
    aim_unavailable: str | None
    graph: GraphCount | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scale": self.scale,
            "input_shape": list(self.input_shape),
            "aim_counter": self.aim.to_dict() if self.aim else None,
            "aim_counter_definition": "AIM 2020 / NTIRE 2022: MACs of Conv2d/ConvTranspose2d module calls + one op "
            "per output element of activation modules; activations = conv output elements",
            "aim_unavailable": self.aim_unavailable,
            "onnx_graph": self.graph.to_dict() if self.graph else None,
            "onnx_graph_definition": "every op of the exported ONNX graph: MACs of Conv/ConvTranspose/MatMul/Gemm "
            "+ one op per element for elementwise math, reductions, pooling and resizing",
        }


def profile_model(
    model: LoadedModel,
    input_shape: tuple[int, ...],
    *,
    onnx_model: onnx.ModelProto | Path | None = None,
    with_graph: bool = True,
    exporter: str = "auto",
    export_timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
) -> ProfileReport:
    if len(input_shape) != 4 or input_shape[1] != model.info.in_channels:
        raise SrExportError(
            f"input {'x'.join(map(str, input_shape[1:]))} does not fit {model.info.name}, "
            f"which takes {model.info.in_channels} channels"
        )
    aim, unavailable = None, None
    try:
        aim = count_aim(model.module, input_shape)
    except SrExportError as exc:
        unavailable = str(exc)
    graph = None
    if with_graph:
        if onnx_model is None:
            from sr_export.export.onnx import ExportOptions, export_onnx

            # Traced at the counted size: exactly the graph that runs there.
            options = ExportOptions(shape=tuple(input_shape[2:]), simplify=False, exporter=exporter,
                                    timeout=export_timeout)
            onnx_model = export_onnx(model, options).proto
        graph = count_onnx(onnx_model, input_shape)
    return ProfileReport(model.info.name, model.info.scale, tuple(input_shape), aim, unavailable, graph)
