"""Tracing a loaded model to an ONNX graph that carries its own metadata."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import onnx
import torch

from sr_export.artifacts import ArtifactMetadata, embed_in_onnx
from sr_export.errors import SrExportError
from sr_export.export.simplify import simplify_checked
from sr_export.models.loader import LoadedModel

INPUT_NAME, OUTPUT_NAME = "input", "output"
DEFAULT_OPSET = 17
TRACE_SIZE = 64  # LR pixels per side used for tracing a dynamic-shape export


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    shape: tuple[int, int] | None = None  # fixed LR height x width; None exports dynamic H/W
    simplify: bool = True


@dataclass
class ExportedOnnx:
    proto: onnx.ModelProto
    metadata: ArtifactMetadata
    notes: list[str] = field(default_factory=list)


def default_filename(model: LoadedModel) -> str:
    return f"{model.info.name}_x{model.info.scale}.onnx"


def export_onnx(model: LoadedModel, options: ExportOptions = ExportOptions()) -> ExportedOnnx:
    info = model.info
    if options.shape and min(options.shape) < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}, "
            f"not {options.shape[0]}x{options.shape[1]}"
        )
    height, width = options.shape or (max(TRACE_SIZE, info.min_input_size),) * 2
    proto = trace_to_onnx(model.module, (1, info.in_channels, height, width), options)
    notes = list(model.notes)
    simplified = False
    if options.simplify:
        proto, simplified, note = simplify_checked(proto, info)
        if note:
            notes.append(note)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    metadata = ArtifactMetadata.for_model(
        model,
        format="onnx",
        backend="onnxruntime",
        precision="fp32",
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        input_shape=tuple(d.dim_param if d.dim_param else d.dim_value for d in dims),
        opset=options.opset,
        simplified=simplified,
        notes=tuple(notes),
    )
    embed_in_onnx(proto, metadata)
    return ExportedOnnx(proto, metadata, notes)


def trace_to_onnx(module: torch.nn.Module, input_shape: tuple[int, ...], options: ExportOptions) -> onnx.ModelProto:
    """Trace with the TorchScript-based exporter and check the result.

    The TorchScript exporter (not the torch.export one) is used because it
    handles the size-dependent interpolation in ESA-style attention with
    dynamic height/width without guards, and needs no extra packages.
    """
    dynamic_axes = None
    if options.shape is None:
        dynamic_axes = {
            INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"},
        }
    buffer = io.BytesIO()
    example = torch.rand(input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about size-dependent Python values
        try:
            torch.onnx.export(
                module,
                (example,),
                buffer,
                dynamo=False,
                opset_version=options.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SrExportError(f"ONNX export failed (opset {options.opset}): {first}") from exc
    proto = onnx.load_from_string(buffer.getvalue())
    try:
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:
        raise SrExportError(f"the exported ONNX graph does not pass onnx.checker: {exc}") from exc
    return proto
