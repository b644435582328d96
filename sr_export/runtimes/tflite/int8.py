"""INT8 TFLite: static quantisation with ai-edge-quantizer, calibrated by a recipe, integer or float I/O.

The float file litert-torch converted is quantised by ai-edge-quantizer (the
maintained LiteRT tooling): int8 weights (per channel when the recipe says
so) and int8 activations whose ranges come from the recipe's calibration
(:mod:`sr_export.runtimes.tflite.calibration`). Then, on the flatbuffer
(:mod:`sr_export.runtimes.tflite.graph_edits`), LeakyReLU islands the quantiser
leaves in float become integer ops and the I/O gets the requested type.

Schemes, i.e. what the SR-sensitive ops (first conv, the ops reading its
features, the global residual add, last conv + upsampler, per-channel
statistics; found by structure by :mod:`sr_export.quantize.sr_layers`, the
rules the ONNX path follows too) compute in:

* ``sr-float`` (the default when the recipe asks for SR-aware precision, as
  the ONNX INT8 path does): those ops stay float, everything else is int8.
  The most accurate and, on CPUs, nearly as fast as full INT8 (XNNPACK runs
  both halves).
* ``sr-int16``: those ops use 16-bit activations with int8 weights (LiteRT's
  16x8 kernels): no float op at all, but XNNPACK has no 16x8 kernels, so on a
  CPU they run on LiteRT's reference kernels, slower than the float model.
  For integer-only accelerators that have 16x8 kernels.
* ``full``: every op int8 (full-integer), what the Mobile AI challenges and
  integer-only NPUs require, and what a recipe with ``sr_aware = false`` asks for.

The input and output ranges are fixed to [0, data_range], not calibrated:
inputs are pixels, and an output outside the pixel range is clamped on the
way to an image anyway, so the clamp is free accuracy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.runtimes.tflite.calibration import TfliteRanges, collect_ranges, nhwc_batches
from sr_export.runtimes.tflite.graph import TfliteGraph
from sr_export.runtimes.tflite.graph_edits import fold_float_islands, set_io
from sr_export.runtimes.tflite.options import DEFAULT_IO, IO_TYPES, SCHEMES

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel

_IO_DTYPES = {"uint8": "uint8", "int8": "int8", "float": "float32"}


@dataclass(frozen=True)
class TfliteInt8Options:
    recipe: CalibrationRecipe
    io: str = DEFAULT_IO
    scheme: str | None = None  # None: sr-float when the recipe is SR-aware, else full

    def __post_init__(self) -> None:
        if self.io not in IO_TYPES:
            raise SrExportError(f"INT8 I/O type '{self.io}' is not one of {', '.join(IO_TYPES)}")
        if self.scheme is not None and self.scheme not in SCHEMES:
            raise SrExportError(f"INT8 scheme '{self.scheme}' is not one of {', '.join(SCHEMES)}")
        recipe = self.recipe
        if recipe.keep_float or recipe.auto_keep_float:
            raise SrExportError(
                f"recipe {recipe.name} names ONNX nodes to keep in float (keep_float / auto_keep_float), which the "
                "tflite target cannot apply; use a recipe without them (the SR-aware layers come from --int8-scheme)"
            )

    @property
    def resolved_scheme(self) -> str:
        if self.scheme is not None:
            return self.scheme
        return "sr-float" if self.recipe.sr_aware else "full"


@dataclass(frozen=True)
class QuantizedTflite:
    flatbuffer: bytes
    options: TfliteInt8Options
    sensitive_ops: Mapping[str, str]  # op output name -> why it is SR-sensitive (empty for full)
    op_precisions: Mapping[str, int]  # activation type -> number of compute ops
    folded: int  # float LeakyReLU islands made integer
    ranges: TfliteRanges
    calibration_shape: tuple[int, int]
    io_quantization: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return self.options.resolved_scheme

    def details(self) -> dict[str, Any]:
        """What the sidecar records under ``quantization``."""
        return {
            "scheme": self.scheme,
            "io": self.options.io,
            "io_quantization": dict(self.io_quantization),
            "recipe": self.options.recipe.to_dict(),
            "calibration": {"method": self.ranges.method, "patches": self.ranges.patches,
                            "patch_shape": list(self.calibration_shape)},
            "op_precisions": dict(self.op_precisions),
            "sensitive_ops": dict(self.sensitive_ops),
            "folded_float_islands": self.folded,
        }

    def summary(self) -> str:
        counts = ", ".join(f"{n} {dtype}" for dtype, n in sorted(self.op_precisions.items()))
        return (f"INT8 {self.scheme}, {self.options.io} I/O, recipe {self.options.recipe.name} "
                f"({self.ranges.method} on {self.ranges.patches} patches): ops {counts}")


def quantize_converted(
    float_flatbuffer: bytes,
    ranges: TfliteRanges,
    options: TfliteInt8Options,
    data_range: float,
    calibration_shape: tuple[int, int],
) -> QuantizedTflite:
    """Quantise a float file with ranges measured on the same graph (at any fixed size)."""
    graph = TfliteGraph.from_bytes(float_flatbuffer)
    scheme = options.resolved_scheme
    sensitive = graph.sr_sensitive_ops() if scheme != "full" else {}
    pixel_tensors = [graph.tensor_name(graph.input_index)] + [graph.tensor_name(t) for t in graph.output_chain()]
    if scheme == "sr-int16":
        # 16 bits resolve the whole observed range: no percentile / entropy clipping around those ops.
        ranges = ranges.with_extremes(graph.tensors_of(sensitive))
    # One input pixel step for tensors that were constant in calibration.
    ranges = ranges.with_fixed(pixel_tensors, 0.0, float(data_range)).with_constant_ranges_opened(data_range / 255)
    missing = ranges.missing([graph.tensor_name(t) for t in graph.activation_tensors()])
    if missing:
        raise StageFailed(
            "calibrate",
            f"{len(missing)} tensors of the converted graph have no calibration range (e.g. {missing[0]}): the graph "
            f"converted at {calibration_shape[0]}x{calibration_shape[1]} for calibration differs from this one; "
            "convert at the recipe's patch size (--shape) or give the recipe patches of this size",
        )
    quantized = _ai_edge_quantize(float_flatbuffer, graph, ranges, options.recipe, sensitive, scheme)
    result = TfliteGraph.from_bytes(quantized)
    folded = fold_float_islands(result)
    set_io(result, _IO_DTYPES[options.io], data_range)
    return QuantizedTflite(
        flatbuffer=result.to_bytes(),
        options=options,
        sensitive_ops=sensitive,
        op_precisions={dtype: len(ops) for dtype, ops in result.op_precisions().items()},
        folded=folded,
        ranges=ranges,
        calibration_shape=calibration_shape,
        io_quantization=_io_quantization(result),
    )


def calibrate_model(
    model: Any,
    convert_at: Callable[[tuple[int, int]], bytes],
    calibration: CalibrationSet | CalibrationRecipe,
    layout: str,
    *,
    progress: Callable[[], Any] | None = None,
) -> tuple[TfliteRanges, tuple[int, int]]:
    """Ranges from the calibration batches through a float conversion at their patch size.

    ``calibration`` is the build's :class:`CalibrationSet` (or a recipe, whose
    set for ``model`` is made); ``convert_at(shape)`` converts the model at a
    fixed size (the caller's converter, so rewrites and layout are those of the artifact).
    """
    if isinstance(calibration, CalibrationRecipe):
        calibration = CalibrationSet(calibration, model.info)
    recipe = calibration.recipe
    size = recipe.patch_size
    info = model.info
    if size < info.min_input_size or (model.size_multiple > 1 and size % model.size_multiple):
        raise SrExportError(
            f"recipe {recipe.name}'s {size}px patches do not fit {info.name} (minimum {info.min_input_size} px, "
            f"sides in multiples of {model.size_multiple}); set patches.size in the recipe"
        )
    shape = (size, size)
    batches = nhwc_batches(list(calibration), layout)
    return collect_ranges(convert_at(shape), batches, recipe, progress=progress), shape


def _ai_edge_quantize(
    float_flatbuffer: bytes,
    graph: TfliteGraph,
    ranges: TfliteRanges,
    recipe: CalibrationRecipe,
    sensitive: Mapping[str, str],
    scheme: str,
) -> bytes:
    try:
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer
    except ModuleNotFoundError as exc:
        from sr_export.core.errors import MissingDependencyError

        raise MissingDependencyError("ai-edge-quantizer", "tflite", purpose="INT8 TFLite files") from exc
    from sr_export.runtimes.tflite.quiet import quiet_litert

    tool = quantizer.Quantizer(bytearray(float_flatbuffer))
    every_op = qtyping.TFLOperationName.ALL_SUPPORTED
    tool.update_quantization_recipe(".*", every_op, _op_config(qtyping, recipe, activation_bits=8))
    for name in sensitive:
        # The quantiser matches an op's "scope": its output tensor names, each followed by ';'.
        scope = f"^{re.escape(name)};"
        if scheme == "sr-int16":
            tool.update_quantization_recipe(scope, every_op, _op_config(qtyping, recipe, activation_bits=16))
        else:
            tool.update_quantization_recipe(scope, every_op, None, algorithm_manager.AlgorithmName.NO_QUANTIZE)
    try:
        with quiet_litert():
            result = tool.quantize(ranges.quantizer_result(graph), enable_progress_bar=False,
                                   enable_progress_report=False)
    except Exception as exc:  # the quantiser raises many types; all mean the same to the user
        raise StageFailed("quantize", f"ai-edge-quantizer: {first_line(exc)}") from exc
    return bytes(result.quantized_model)


def _op_config(qtyping: Any, recipe: CalibrationRecipe, *, activation_bits: int) -> Any:
    granularity = qtyping.QuantGranularity.CHANNELWISE if recipe.per_channel else qtyping.QuantGranularity.TENSORWISE
    # LiteRT's 16-bit kernels take symmetric activations only; 8-bit ones follow the recipe.
    symmetric = activation_bits == 16 or recipe.activations == "symmetric"
    return qtyping.OpQuantizationConfig(
        activation_tensor_config=qtyping.TensorQuantizationConfig(num_bits=activation_bits, symmetric=symmetric),
        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=8, symmetric=True, granularity=granularity),
        compute_precision=qtyping.ComputePrecision.INTEGER,
        explicit_dequantize=False,
    )


def _io_quantization(graph: TfliteGraph) -> dict[str, Any]:
    details = {}
    for end, index in (("input", graph.input_index), ("output", graph.output_index)):
        params = graph.quantization(index)
        details[end] = {"dtype": graph.dtype(index), "scale": params.scale if params else None,
                        "zero_point": params.zero_point if params else None}
    return details


def ranges_key(model: LoadedModel, calibration: CalibrationSet, layout: str, rewrite: bool) -> CalibrationKey | None:
    """The calibration cache key of a TFLite conversion: weights, converter and its settings, calibration set, layout.

    None for weights without a checksum (random init, a module built in code): nothing to key them by.
    """
    from importlib.metadata import PackageNotFoundError, version

    if not model.weights_sha256 or model.random_init:
        return None
    try:
        converter = version("litert-torch")
    except PackageNotFoundError:
        converter = "unknown"
    request = {k: v for k, v in model.request.to_dict().items() if k != "weights"}
    finetune = calibration.recipe.finetune
    graph = json.dumps({"converter": f"litert-torch {converter}", "rewrite": rewrite, "model": request,
                        **({"finetune": finetune.to_dict()} if finetune is not None else {})},
                       sort_keys=True, default=str)
    return CalibrationKey(weights=model.weights_sha256, graph=graph, calibration=calibration.identity, layout=layout)


def quantize_model(
    model: LoadedModel,
    settings: TfliteInt8Options,
    flatbuffer: bytes,
    convert_at: Callable[[tuple[int, int]], bytes],
    layout: str,
    rewrite: bool,
    say: Callable[[str], Any],
    calibration: CalibrationSet | None = None,
) -> QuantizedTflite:
    """Calibrate on ``calibration`` (default: the recipe's set) through ``convert_at`` its patch size,
    then quantise ``flatbuffer``."""
    from sr_export.runtimes.tflite.calibration import load_cached_ranges, save_ranges

    recipe = settings.recipe
    calibration = calibration if calibration is not None else CalibrationSet(recipe, model.info)

    def converted_at(shape: tuple[int, int]) -> bytes:
        say(f"converting at the recipe's {shape[0]}x{shape[1]} patch size for calibration")
        return convert_at(shape)

    key = ranges_key(model, calibration, layout, rewrite)
    cached = load_cached_ranges(key) if key is not None else None
    if cached is not None:
        ranges, calibration_shape = cached
        say(f"calibration ranges from the cache ({recipe.name})")
    else:
        say(f"calibrating ({recipe.summary()})")
        ranges, calibration_shape = calibrate_model(model, converted_at, calibration, layout)
        if key is not None:
            save_ranges(key, ranges, calibration_shape)
    say(f"quantising with ai-edge-quantizer ({settings.resolved_scheme}, {settings.io} I/O)")
    return quantize_converted(flatbuffer, ranges, settings, model.info.data_range, calibration_shape)
