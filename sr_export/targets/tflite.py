"""TFLite (LiteRT): converted straight from PyTorch with litert-torch, run with the LiteRT interpreter.

litert-torch converts these networks only at fixed input sizes (with a size
range, E-RFDN's attention branch adds shape guards and XNNPACK later rejects
other sizes), so every artifact has one LR size and other sizes run tiled
(:func:`sr_export.targets.open_runner`). The SR-aware rewrites of
:mod:`sr_export.rewrites` are applied to the module first.

The file's I/O is NHWC (what TFLite and its delegates run natively; the
default) or NCHW; ``ArtifactMetadata.input_shape`` stays the logical NCHW
shape and ``layout`` says what the file itself takes.

Precisions: fp32, fp16 (float16 weights, float compute) and int8 (static
quantisation calibrated by a recipe, integer or float I/O; see
:mod:`sr_export.quantize.tflite_int8`). The runner feeds integer inputs and
reads integer outputs with the tensors' own scale and zero point, so every
tool takes float batches whatever the file's I/O type.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sr_export.artifacts import Artifact, ArtifactMetadata, sidecar_path
from sr_export.errors import MissingDependencyError, SrExportError, StageFailed, first_line
from sr_export.targets.base import Target

if TYPE_CHECKING:
    import torch

    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.tflite_int8 import QuantizedTflite, TfliteInt8Options

LAYOUTS = ("nhwc", "nchw")
PRECISIONS = ("fp32", "fp16", "int8")
PROFILE = "tflite"  # the target profile whose first input size is the default shape
FALLBACK_SHAPE = (64, 64)


@dataclass(frozen=True)
class TfliteOptions:
    shape: tuple[int, int]
    layout: str = "nhwc"
    precision: str = "fp32"  # fp16: weights stored as float16, compute in float32; int8: see ``int8``
    rewrite: bool = True
    int8: TfliteInt8Options | None = None  # calibration recipe, I/O type and scheme; required for int8

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise SrExportError(f"layout '{self.layout}' is not one of {', '.join(LAYOUTS)}")
        if self.precision not in PRECISIONS:
            raise SrExportError(f"the tflite target converts {', '.join(PRECISIONS)}, not {self.precision}")
        if self.precision == "int8" and self.int8 is None:
            raise SrExportError("full-integer INT8 needs calibration: give a recipe (sr-export tflite --int8 --calib NAME)")
        if self.precision != "int8" and self.int8 is not None:
            raise SrExportError(f"INT8 settings (recipe, I/O type, scheme) apply to int8 files, not {self.precision}")


@dataclass(frozen=True)
class ConvertedTflite:
    flatbuffer: bytes
    metadata: ArtifactMetadata
    rewrites: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


def default_shape() -> tuple[int, int]:
    """The first input size of the ``tflite`` target profile (a fixed fallback without one)."""
    from sr_export.targets.profiles import available_profiles, load_profile

    if PROFILE in available_profiles():
        return load_profile(PROFILE).input_sizes[0]
    return FALLBACK_SHAPE


# File name suffixes: the default INT8 scheme is plain "_int8".
_INT8_SUFFIXES = {"sr-float": "_int8", "sr-int16": "_int8_a16", "full": "_int8_full"}


def default_filename(model: LoadedModel, options: TfliteOptions) -> str:
    height, width = options.shape
    suffix = {"fp32": "", "fp16": "_fp16"}.get(options.precision, "")
    if options.int8 is not None:
        suffix = _INT8_SUFFIXES[options.int8.resolved_scheme]
    return f"{model.info.name}_x{model.info.scale}_{height}x{width}{suffix}.tflite"


def convert_tflite(
    model: LoadedModel, options: TfliteOptions, *, progress: Callable[[str], Any] | None = None
) -> ConvertedTflite:
    """Convert ``model`` at ``options.shape``; raises a one-line StageFailed naming what broke."""
    from sr_export.rewrites import apply_rewrites

    height, width = options.shape
    info = model.info
    _check_shape(model, options.shape, "--shape")
    module, applied = apply_rewrites(model.module.eval(), "tflite", enabled=options.rewrite)
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    flatbuffer = _convert_at(model, module, options, options.shape)
    quantized = None
    if options.precision == "fp16":
        flatbuffer = _fp16_weights(flatbuffer)
    elif options.int8 is not None:
        quantized = _int8(model, module, flatbuffer, options, say)
        flatbuffer = quantized.flatbuffer
    seconds = time.perf_counter() - started
    notes = tuple(f"rewrite applied: {entry}" for entry in applied)
    if quantized is not None:
        notes += (quantized.summary(),)
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
        quantization=quantized.details() if quantized is not None else {},
    )
    return ConvertedTflite(flatbuffer, metadata, tuple(applied), seconds, notes)


def _check_shape(model: LoadedModel, shape: tuple[int, int], what: str) -> None:
    height, width = shape
    info = model.info
    if min(height, width) < info.min_input_size:
        raise SrExportError(f"{what} {height}x{width} is below {info.name}'s minimum input of {info.min_input_size} px")
    if model.size_multiple > 1 and (height % model.size_multiple or width % model.size_multiple):
        raise SrExportError(f"{what} {height}x{width}: {info.name} needs sides in multiples of {model.size_multiple}")


def _convert_at(model: LoadedModel, module: torch.nn.Module, options: TfliteOptions, shape: tuple[int, int]) -> bytes:
    import torch

    sample = torch.rand(1, model.info.in_channels, *shape) * model.info.data_range
    return _convert_module(module, sample, options.layout, rewrites_on=options.rewrite)


def _ranges_key(model: LoadedModel, options: TfliteOptions) -> dict[str, Any] | None:
    """What determines INT8 calibration ranges: model and weights, layout, rewrites, recipe, converter.

    None for weights without a checksum (random init, a module built in code): nothing to key them by.
    """
    from importlib.metadata import PackageNotFoundError, version

    if not model.weights_sha256 or model.random_init or options.int8 is None:
        return None
    try:
        converter = version("litert-torch")
    except PackageNotFoundError:
        converter = "unknown"
    request = {k: v for k, v in model.request.to_dict().items() if k != "weights"}
    return {"model": json.loads(json.dumps(request, default=str)), "weights": model.weights_sha256,
            "layout": options.layout, "rewrite": options.rewrite, "recipe": options.int8.recipe.statistics_key(),
            "litert_torch": converter}


def _int8(
    model: LoadedModel, module: torch.nn.Module, flatbuffer: bytes, options: TfliteOptions, say: Callable[[str], Any]
) -> QuantizedTflite:
    """Calibrate on the recipe's patches (through a conversion at their size), then quantise ``flatbuffer``."""
    from sr_export.quantize.tflite_calibration import load_cached_ranges, save_ranges
    from sr_export.quantize.tflite_int8 import calibrate_model, quantize_converted

    settings = options.int8
    assert settings is not None
    recipe = settings.recipe

    def convert_at(shape: tuple[int, int]) -> bytes:
        if shape == options.shape:
            return flatbuffer
        say(f"converting at the recipe's {shape[0]}x{shape[1]} patch size for calibration")
        return _convert_at(model, module, options, shape)

    key = _ranges_key(model, options)
    cached = load_cached_ranges(key) if key is not None else None
    if cached is not None:
        ranges, calibration_shape = cached
        say(f"calibration ranges from the cache ({recipe.name})")
    else:
        say(f"calibrating ({recipe.summary()})")
        ranges, calibration_shape = calibrate_model(model, convert_at, recipe, options.layout)
        if key is not None:
            save_ranges(key, ranges, calibration_shape)
    say(f"quantising with ai-edge-quantizer ({settings.resolved_scheme}, {settings.io} I/O)")
    return quantize_converted(flatbuffer, ranges, settings, model.info.data_range, calibration_shape)


def write_tflite(converted: ConvertedTflite, path: Path) -> Artifact:
    """Write the flatbuffer (atomically) and its metadata sidecar."""
    from sr_export.io import atomic_path, write_json_atomic

    with atomic_path(path) as tmp:
        tmp.write_bytes(converted.flatbuffer)
        write_json_atomic(sidecar_path(path), converted.metadata.to_dict())
    return Artifact(path, converted.metadata)


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


# What to suggest when the converter rejects an op: (pattern in the error, PyTorch module type, hint).
_KNOWN_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("lhs_dilation", "ConvTranspose2d",
     "a transposed conv with output_padding; the transposed-conv-output-padding rewrite converts it "
     "(drop --no-rewrite)"),
    ("convolution", "ConvTranspose2d",
     "a transposed conv TFLite's TRANSPOSE_CONV cannot express (e.g. padding beyond its SAME/VALID forms); "
     "use padding=0 and crop after it, or a conv + pixel shuffle"),
    ("guard", "",
     "the model branches on its input size; convert at another --shape (multiples of 8 are safest)"),
)


def diagnose(module: Any, sample: Any, exc: BaseException, *, rewrites_on: bool) -> str:
    """One line naming the op the converter rejected, the PyTorch node(s) behind it and what helps."""
    text = str(exc)
    op = _search(r"operation '([\w.]+)'", text) or _search(r"\b((?:mhlo|stablehlo|tfl|aten)\.[\w.]+)", text)
    where = re.search(r"([^\s:'\"]+\.py):(\d+):\d+:\s*error", text)
    nodes = _nodes_at(module, sample, where.group(1), int(where.group(2))) if where else []
    what = f"op {op}" if op else first_line(exc)
    message = f"litert-torch cannot convert {what}"
    if nodes:
        message += " at " + ", ".join(f"{name} ({kind})" for name, kind in nodes[:3])
    elif where:
        message += f" (from {Path(where.group(1)).name}:{where.group(2)})"
    kinds = {kind for _, kind in nodes}
    for pattern, kind, hint in _KNOWN_FAILURES:
        if pattern in text and (not kind or kind in kinds or not nodes):
            if "drop --no-rewrite" in hint and (rewrites_on or not _has_output_padding(module)):
                continue
            return f"{message}; {hint}"
    if not rewrites_on:
        return f"{message}; try without --no-rewrite"
    return f"{message}; try --layout nchw or another --shape, or rewrite that module (see sr_export.rewrites)"


def _has_output_padding(module: Any) -> bool:
    from sr_export.rewrites.transposed_conv import rewritable

    return any(rewritable(m) for m in module.modules())


def _nodes_at(module: Any, sample: Any, filename: str, line: int) -> list[tuple[str, str]]:
    """PyTorch modules whose traced ops come from ``filename:line`` (found by re-exporting; best effort)."""
    import torch

    try:
        graph = torch.export.export(module, (sample,)).graph
    except Exception:  # the converter's own export failed too: nothing more to learn here
        return []
    found: list[tuple[str, str]] = []
    for node in graph.nodes:
        trace = node.meta.get("stack_trace") or ""
        stack = node.meta.get("nn_module_stack") or {}
        if f'{filename}", line {line}' in trace and stack:
            path, kind = list(stack.values())[-1]
            kind_name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1].strip("'>")
            entry = (_module_path(path) or node.name, kind_name)
            if entry not in found:
                found.append(entry)
    return found


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


@contextlib.contextmanager
def quiet_litert() -> Iterator[None]:
    """Keep litert-torch's and LiteRT's chatter (progress lines, C++ logs, library warnings) off the terminal.

    Their C++ parts write to file descriptors 1 and 2 directly, so those are
    pointed at a scratch file for the duration; failures still arrive as exceptions.
    """
    saved_env = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    logging.disable(logging.WARNING)
                    try:
                        yield
                    finally:
                        logging.disable(logging.NOTSET)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved_fds[0], 1)
                os.dup2(saved_fds[1], 2)
    finally:
        for fd in saved_fds:
            os.close(fd)
        if saved_env is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved_env


def _import_litert_torch() -> Any:
    try:
        import litert_torch
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("litert-torch", "tflite", purpose="converting to TFLite") from exc
    return litert_torch


def interpreter_class() -> Any:
    """LiteRT's Interpreter, or tflite_runtime's on boards that only have that."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ModuleNotFoundError as exc:
            raise MissingDependencyError("ai-edge-litert", "tflite", purpose="running TFLite models") from exc
    return Interpreter


class TfliteRunner:
    """One fixed-size TFLite model on the CPU, XNNPACK on (the interpreter's default delegate).

    Files XNNPACK refuses to prepare (it takes some integer graphs it then
    cannot build, e.g. a requantisation scale beyond its range) run on LiteRT's
    built-in kernels instead; ``delegate`` and the runner's name say which.
    Integer I/O is fed and read with the tensors' own scale and zero point.
    """

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        self.delegate, self.fallback_reason = "xnnpack", ""
        try:
            self._interpreter = _open_interpreter(artifact.path, threads, xnnpack=True)
        except Exception as exc:
            self.delegate, self.fallback_reason = "builtin", first_line(exc)
            try:
                self._interpreter = _open_interpreter(artifact.path, threads, xnnpack=False)
            except Exception as retry:
                raise SrExportError(f"LiteRT cannot load {artifact.path}: {first_line(retry)}") from retry
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise SrExportError(f"{artifact.path} has {len(inputs)} inputs and {len(outputs)} outputs; an SR model has one each")
        self._input, self._output = inputs[0], outputs[0]
        self.channels_last = artifact.metadata.layout.upper() == "NHWC"
        self.threads = threads
        meta = artifact.metadata
        io = np.dtype(self._input["dtype"]).name
        precision = meta.precision if meta.precision != "int8" else f"int8 {meta.quantization.get('scheme', '')}".strip()
        self.name = f"tflite-{self.delegate} {precision}" + (f" ({io} I/O)" if io != "float32" else "")

    @property
    def io_details(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The interpreter's own input and output details (dtype, shape, quantization)."""
        return dict(self._input), dict(self._output)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        expected = tuple(int(d) for d in self._input["shape"])
        outputs = []
        for sample in np.asarray(batch, np.float32):
            fed = sample.transpose(1, 2, 0)[None] if self.channels_last else sample[None]
            if fed.shape != expected:
                shown = "x".join(map(str, batch.shape))
                raise SrExportError(
                    f"input {shown} does not fit the TFLite model's {'x'.join(map(str, expected))} "
                    f"({'NHWC' if self.channels_last else 'NCHW'}); open it with sr_export.targets.open_runner, which tiles"
                )
            try:
                self._interpreter.set_tensor(self._input["index"], quantize_for(fed, self._input))
                self._interpreter.invoke()
                out = dequantize_from(self._interpreter.get_tensor(self._output["index"]), self._output)
            except Exception as exc:
                raise StageFailed("check", f"LiteRT failed on a {'x'.join(map(str, fed.shape))} input: {first_line(exc)}") from exc
            outputs.append(out.transpose(0, 3, 1, 2) if self.channels_last else out)
        return np.concatenate(outputs, axis=0)


def _open_interpreter(path: Path, threads: int | None, *, xnnpack: bool) -> Any:
    interpreter = interpreter_class()
    options: dict[str, Any] = {}
    if not xnnpack:
        from ai_edge_litert.interpreter import OpResolverType

        options["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with quiet_litert():
        opened = interpreter(model_path=str(path), num_threads=threads or None, **options)
        opened.allocate_tensors()
    return opened


def quantize_for(values: np.ndarray, details: Mapping[str, Any]) -> np.ndarray:
    """Float values as an input tensor takes them: unchanged for float, q = round(x / scale) + zero_point else."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(values, dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    quantized = np.rint(values.astype(np.float64) / scale) + zero_point
    return np.ascontiguousarray(np.clip(quantized, limits.min, limits.max).astype(dtype))


def dequantize_from(values: np.ndarray, details: Mapping[str, Any]) -> np.ndarray:
    """An output tensor as float32: (q - zero_point) * scale for integer outputs (a copy either way)."""
    if np.dtype(details["dtype"]).kind == "f":
        return np.array(values, np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


class TfliteTarget(Target):
    name: ClassVar[str] = "tflite"
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        # A TFLite file is already built (sr-bench hands every artifact to its profile's target).
        if onnx_artifact.metadata.format == "tflite":
            return onnx_artifact
        raise SrExportError(
            "the tflite target converts from PyTorch, not from ONNX files; use `sr-export tflite --model ...`"
        )

    def from_model(
        self,
        model: LoadedModel,
        output: Path,
        *,
        precision: str = "fp32",
        shape: tuple[int, int] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Convert at ``shape`` (default: the tflite profile's first size) into the folder ``output``.

        ``options``: ``layout`` ("nhwc"/"nchw") and ``rewrite`` (bool); for
        int8, ``calibration`` (recipe name or path, default "default"),
        ``int8_io`` and ``int8_scheme`` (see :mod:`sr_export.quantize.tflite_int8`).
        """
        settings = dict(options or {})
        int8 = None
        if precision == "int8":
            from sr_export.quantize.recipes import load_recipe
            from sr_export.quantize.tflite_int8 import DEFAULT_IO, TfliteInt8Options

            int8 = TfliteInt8Options(load_recipe(str(settings.get("calibration", "default"))),
                                     io=str(settings.get("int8_io", DEFAULT_IO)), scheme=settings.get("int8_scheme"))
        tflite_options = TfliteOptions(
            shape=shape or default_shape(),
            layout=str(settings.get("layout", "nhwc")).lower(),
            precision=precision,
            rewrite=bool(settings.get("rewrite", True)),
            int8=int8,
        )
        converted = convert_tflite(model, tflite_options)
        return write_tflite(converted, Path(output) / default_filename(model, tflite_options))

    def load(self, artifact: Artifact, *, threads: int | None = None) -> TfliteRunner:
        return TfliteRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        try:
            from ai_edge_litert import __version__ as version

            runtime = f"ai-edge-litert {version}"
        except ImportError:
            import tflite_runtime

            runtime = f"tflite-runtime {tflite_runtime.__version__}"
        return {"runtime": f"{runtime} (XNNPACK)", "device": f"CPU ({platform.machine()})"}


def _module_path(path: str) -> str:
    """``L['self'].wrapped.body.conv`` -> ``body.conv`` (without the export root and the NHWC I/O wrapper)."""
    path = re.sub(r"^L\['self'\]\.?", "", path)
    return path.removeprefix("wrapped.") if path != "wrapped" else ""
