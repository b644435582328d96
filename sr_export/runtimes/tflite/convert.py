"""PyTorch to TFLite with litert-torch: one fixed LR size per file, SR rewrites first, fp32, fp16 or int8.

litert-torch converts these networks only at fixed input sizes (with a size
range, E-RFDN's attention branch adds shape guards and XNNPACK later rejects
other sizes), so every artifact has one LR size and other sizes run tiled.
The SR-aware rewrites of :mod:`sr_export.rewrites` are applied to the module
first.

The file's I/O is NHWC (what TFLite and its delegates run natively; the
default) or NCHW; ``ArtifactMetadata.input_shape`` stays the logical NCHW
shape and ``layout`` says what the file itself takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.core.artifacts import Artifact, ArtifactMetadata
from sr_export.core.errors import MissingDependencyError, SrExportError, StageFailed, first_line
from sr_export.core.naming import int8_tail
from sr_export.runtimes.tflite.diagnose import diagnose
from sr_export.runtimes.tflite.int8 import TfliteInt8Options, quantize_model
from sr_export.runtimes.tflite.options import LAYOUTS, PRECISIONS
from sr_export.runtimes.tflite.quiet import quiet_litert
from sr_export.runtimes.tflite.releases import Release

if TYPE_CHECKING:
    import torch

    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet


@dataclass(frozen=True)
class TfliteOptions:
    shape: tuple[int, int]
    layout: str = "nhwc"
    precision: str = "fp32"  # fp16: weights stored as float16, compute in float32; int8: see ``int8``
    rewrite: bool = True
    int8: TfliteInt8Options | None = None  # calibration recipe, I/O type and scheme; required for int8
    for_runtime: str | None = None  # NAME==VERSION of the device's runtime: the file is fitted to it or refused

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise SrExportError(f"layout '{self.layout}' is not one of {', '.join(LAYOUTS)}")
        if self.precision not in PRECISIONS:
            raise SrExportError(f"the tflite target converts {', '.join(PRECISIONS)}, not {self.precision}")
        if self.precision == "int8" and self.int8 is None:
            raise SrExportError("full-integer INT8 needs calibration: give a recipe (sr-export tflite --int8 --calib NAME)")
        if self.precision != "int8" and self.int8 is not None:
            raise SrExportError(f"INT8 settings (recipe, I/O type, scheme) apply to int8 files, not {self.precision}")
        if self.for_runtime is not None:
            Release.parse(self.for_runtime)  # a bad name or version fails before the slow conversion


@dataclass(frozen=True)
class ConvertedTflite:
    flatbuffer: bytes
    metadata: ArtifactMetadata
    rewrites: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


# File name variants after "_int8": the default INT8 scheme has none. The recipe follows (sr_export.core.naming).
_INT8_VARIANTS = {"sr-float": "", "sr-int16": "_a16", "full": "_full"}


def default_filename(model: LoadedModel, options: TfliteOptions) -> str:
    height, width = options.shape
    suffix = {"fp32": "", "fp16": "_fp16"}.get(options.precision, "")
    if options.int8 is not None:
        suffix = int8_tail(options.int8.recipe.name, _INT8_VARIANTS[options.int8.resolved_scheme])
    return f"{model.info.name}_x{model.info.scale}_{height}x{width}{suffix}.tflite"


def convert_tflite(
    model: LoadedModel, options: TfliteOptions, *, progress: Callable[[str], Any] | None = None,
    calibration: CalibrationSet | None = None,
) -> ConvertedTflite:
    """Convert ``model`` at ``options.shape``; raises a one-line StageFailed naming what broke."""
    from sr_export.rewrites import apply_rewrites

    height, width = options.shape
    info = model.info
    _check_shape(model, options.shape, "--shape")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    finetuned: dict[str, Any] = {}
    if options.int8 is not None and options.int8.recipe.finetune is not None:
        from sr_export.quantize.calibration_data import CalibrationSet
        from sr_export.quantize.tuned_module import finetuned_model

        recipe = options.int8.recipe
        calibration = calibration if calibration is not None else CalibrationSet(recipe, info)
        # The scheme's float layers are the student's: full-integer trains with none.
        model, finetuned = finetuned_model(model, recipe, calibration,
                                           sr_aware=options.int8.resolved_scheme != "full", say=say)
    module, applied = apply_rewrites(model.module.eval(), "tflite", enabled=options.rewrite)
    flatbuffer = _convert_at(model, module, options, options.shape)
    quantized = None
    if options.precision == "fp16":
        flatbuffer = _fp16_weights(flatbuffer)
    elif options.int8 is not None:
        convert_at = lambda shape: flatbuffer if shape == options.shape else _convert_at(model, module, options, shape)  # noqa: E731
        quantized = quantize_model(model, options.int8, flatbuffer, convert_at, options.layout, options.rewrite, say,
                                   calibration)
        flatbuffer = quantized.flatbuffer
    flatbuffer, requirements, fitted = stamp_requirements(flatbuffer, options.for_runtime)
    seconds = time.perf_counter() - started
    notes = tuple(f"rewrite applied: {entry}" for entry in applied)
    if quantized is not None:
        notes += (quantized.summary(),)
    notes += tuple(fitted)
    metadata = ArtifactMetadata.for_model(
        model,
        format="tflite",
        backend="tflite",
        precision=options.precision,
        layout=options.layout.upper(),
        input_shape=(1, info.in_channels, height, width),
        exporter="litert-torch" if quantized is None else "litert-torch + ai-edge-quantizer",
        verified_sizes=(),
        notes=(*model.notes, *notes),
        quantization={**_quantization(quantized, flatbuffer, bool(fitted)),
                      **({"finetuned": finetuned} if finetuned else {})},
        runtime_requirements=requirements,
    )
    return ConvertedTflite(flatbuffer, metadata, tuple(applied), seconds, notes)


def _quantization(quantized: Any, flatbuffer: bytes, fitted: bool) -> dict[str, Any]:
    """The sidecar's ``quantization``; ops counted again when fitting a runtime kept some in float."""
    if quantized is None:
        return {}
    details = quantized.details()
    if fitted:
        from sr_export.runtimes.tflite.graph import TfliteGraph

        precisions = TfliteGraph.from_bytes(flatbuffer).op_precisions()
        details["op_precisions"] = {dtype: len(ops) for dtype, ops in precisions.items()}
    return details


def stamp_requirements(flatbuffer: bytes, for_runtime: str | None) -> tuple[bytes, dict[str, Any], list[str]]:
    """Fit the file to ``for_runtime`` (NAME==VERSION; None: as it is), give every op the version it needs and
    record the oldest runtime that loads it: (file, what the metadata records, what fitting did)."""
    from sr_export.runtimes.tflite.compat import fit_to_runtime, requirements, write_min_runtime
    from sr_export.runtimes.tflite.graph import TfliteGraph
    from sr_export.runtimes.tflite.op_versions import write_versions

    target = Release.parse(for_runtime) if for_runtime else None
    graph = TfliteGraph.from_bytes(flatbuffer)
    fitted = fit_to_runtime(graph, target) if target is not None else []
    write_versions(graph)
    write_min_runtime(graph)
    return graph.to_bytes(), requirements(graph, target), fitted


def _check_shape(model: LoadedModel, shape: tuple[int, int], what: str) -> None:
    height, width = shape
    info = model.info
    if min(height, width) < info.min_input_size:
        raise SrExportError(f"{what} {height}x{width} is below {info.name}'s minimum input of {info.min_input_size} px")
    if model.size_multiple > 1 and (height % model.size_multiple or width % model.size_multiple):
        raise SrExportError(f"{what} {height}x{width}: {info.name} needs sides in multiples of {model.size_multiple}")


def _convert_at(model: LoadedModel, module: torch.nn.Module, options: TfliteOptions, shape: tuple[int, int]) -> bytes:
    from sr_export.models.loader import example_input

    sample = example_input((1, model.info.in_channels, *shape), model.info.data_range)
    return _convert_module(module, sample, options.layout, rewrites_on=options.rewrite)


def write_tflite(converted: ConvertedTflite, path: Path) -> Artifact:
    """Write the flatbuffer (atomically) and its metadata sidecar."""
    from sr_export.core.artifacts import build_stamp, write_sidecar
    from sr_export.core.io import atomic_path

    metadata = build_stamp(converted.metadata)
    with atomic_path(path) as tmp:
        tmp.write_bytes(converted.flatbuffer)
        write_sidecar(path, metadata, content=tmp)
    return Artifact(path, metadata)


def _convert_module(module: torch.nn.Module, sample: torch.Tensor, layout: str, *, rewrites_on: bool) -> bytes:
    with quiet_litert():
        litert_torch = _import_litert_torch()
    if layout == "nhwc":
        module = litert_torch.to_channel_last_io(module, args=[0], outputs=[0])
        sample = sample.permute(0, 2, 3, 1).contiguous()
    try:
        with quiet_litert():
            edge_model = litert_torch.convert(module.eval(), (sample,))
            return bytes(edge_model.model_content())
    except Exception as exc:  # the converter raises many types; all mean the same to the user
        raise StageFailed("convert", diagnose(module, sample, exc, rewrites_on=rewrites_on)) from exc


def _import_litert_torch() -> Any:
    try:
        import litert_torch
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("litert-torch", "tflite", purpose="converting to TFLite") from exc
    return litert_torch


def _fp16_weights(flatbuffer: bytes) -> bytes:
    try:
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("ai-edge-quantizer", "tflite", purpose="float16 TFLite weights") from exc
    tool = quantizer.Quantizer(flatbuffer)
    tool.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        granularity=qtyping.QuantGranularity.TENSORWISE,
        algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
    )
    try:
        with quiet_litert():
            result = tool.quantize(enable_progress_report=False)
    except Exception as exc:
        raise StageFailed("convert", f"casting the weights to float16: {first_line(exc)}") from exc
    return bytes(result.quantized_model)
