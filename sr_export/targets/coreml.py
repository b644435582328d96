"""Core ML: ML Programs (``.mlpackage``) converted from PyTorch with coremltools.

Conversion goes through ``torch.export`` first (it handles every zoo model,
IDN included) and falls back to ``torch.jit.trace``. Programs compute in FP16
by default (what the Neural Engine and GPU run) with float32 inputs and
outputs, and take one fixed size, a few enumerated sizes, or a bounded range.

Core ML's ``predict`` exists only on macOS; elsewhere artifacts are run by the
numpy reference executor in :mod:`sr_export.targets.coreml_reference`, and the
runner's name says which one ran.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import re
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sr_export.artifacts import Artifact, ArtifactMetadata, sidecar_path
from sr_export.errors import MissingDependencyError, SrExportError, StageFailed, first_line
from sr_export.targets.base import Target

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel

DEPLOYMENT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")
DEFAULT_DEPLOYMENT_TARGET = "iOS17"
# Flexible programs take any LR size in this box unless told otherwise.
DEFAULT_RANGE = ((32, 32), (1024, 1024))
INPUT_NAME, OUTPUT_NAME = "input", "output"
ROUTES = ("auto", "export", "trace")

Size = tuple[int, int]


@dataclass(frozen=True)
class InputSizes:
    """The LR sizes a program takes: one fixed size, an enumerated set, or a range (inclusive)."""

    fixed: Size | None = None
    enumerated: tuple[Size, ...] = ()
    lower: Size | None = None
    upper: Size | None = None

    @classmethod
    def from_options(cls, shape: Size | None = None, shapes: tuple[Size, ...] = (),
                     size_range: tuple[Size, Size] | None = None) -> InputSizes:
        given = sum(x is not None and x != () for x in (shape, shapes or None, size_range))
        if given > 1:
            raise SrExportError("give one of --shape, --shapes and --range")
        if shape is not None:
            return cls(fixed=tuple(shape))
        if shapes:
            unique = tuple(dict.fromkeys(tuple(s) for s in shapes))
            return cls(fixed=unique[0]) if len(unique) == 1 else cls(enumerated=unique)
        lower, upper = size_range or DEFAULT_RANGE
        if lower[0] > upper[0] or lower[1] > upper[1]:
            raise SrExportError(f"--range {lower[0]}x{lower[1]}:{upper[0]}x{upper[1]}: the minimum exceeds the maximum")
        return cls(lower=tuple(lower), upper=tuple(upper))

    @property
    def kind(self) -> str:
        return "fixed" if self.fixed else ("enumerated" if self.enumerated else "range")

    @property
    def example(self) -> Size:
        """The size to trace at (any size the program takes would do)."""
        if self.fixed:
            return self.fixed
        if self.enumerated:
            return self.enumerated[0]
        assert self.lower is not None and self.upper is not None
        return tuple(min(max(48, lo), hi) for lo, hi in zip(self.lower, self.upper))  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[Size, Size]:
        if self.fixed:
            return self.fixed, self.fixed
        if self.enumerated:
            return (min(s[0] for s in self.enumerated), min(s[1] for s in self.enumerated)), (
                max(s[0] for s in self.enumerated), max(s[1] for s in self.enumerated))
        assert self.lower is not None and self.upper is not None
        return self.lower, self.upper

    def accepts(self, size: Size) -> bool:
        if self.fixed:
            return tuple(size) == self.fixed
        if self.enumerated:
            return tuple(size) in self.enumerated
        (h0, w0), (h1, w1) = self.bounds
        return h0 <= size[0] <= h1 and w0 <= size[1] <= w1

    def check_sizes(self) -> tuple[Size, ...]:
        """LR sizes at which a parity check should run the program."""
        if self.fixed:
            return (self.fixed,)
        if self.enumerated:
            return self.enumerated
        (h0, w0), (h1, w1) = self.bounds
        # The smallest size, and an odd, non-square one a little above it (large sizes are slow in numpy).
        odd = (min(h0 + 13, h1), min(w0 + 31, w1))
        return tuple(dict.fromkeys(((h0, w0), odd)))

    def describe(self) -> str:
        if self.fixed:
            return f"fixed {self.fixed[0]}x{self.fixed[1]}"
        if self.enumerated:
            return "enumerated " + ", ".join(f"{h}x{w}" for h, w in self.enumerated)
        (h0, w0), (h1, w1) = self.bounds
        return f"range {h0}x{w0} to {h1}x{w1}"


@dataclass(frozen=True)
class CoreMLOptions:
    precision: str = "fp16"  # compute precision: fp16 or fp32
    deployment_target: str = DEFAULT_DEPLOYMENT_TARGET
    sizes: InputSizes = field(default_factory=InputSizes.from_options)
    int8_weights: bool = False
    rewrite: bool = True
    route: str = "auto"  # auto: torch.export, then torch.jit.trace

    @property
    def artifact_precision(self) -> str:
        # The parity tolerance follows the coarsest number format in the program.
        return "int8" if self.int8_weights else self.precision


@dataclass
class ConvertedProgram:
    mlmodel: Any  # coremltools.models.MLModel (not loaded: predict needs macOS)
    metadata: ArtifactMetadata
    route: str  # "torch.export" or "torch.jit.trace"
    seconds: float
    op_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


def import_coremltools() -> Any:
    """coremltools, without the warnings it logs on every non-Mac import."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("coremltools", "coreml", purpose="the coreml target") from exc
    finally:
        log.setLevel(level)
    return coremltools


class _WithoutProgressBars(io.TextIOBase):
    """stderr minus coremltools' tqdm bars (drawn for every pass; sr-export shows its own progress)."""

    MARKERS = ("MIL Ops:", "pipeline:", "passes/s", " ops/s")

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text == "\n" or any(marker in text for marker in self.MARKERS):
            return len(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """Run coremltools without its progress bars, version warnings and log lines."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(_WithoutProgressBars(sys.stderr)):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def convert_model(model: LoadedModel, options: CoreMLOptions) -> ConvertedProgram:
    """Convert ``model`` to an ML Program (not yet written anywhere)."""
    import torch

    info = model.info
    if options.precision not in ("fp16", "fp32"):
        raise SrExportError(f"Core ML programs compute in fp16 or fp32, not {options.precision}")
    if options.deployment_target not in DEPLOYMENT_TARGETS:
        raise SrExportError(
            f"unknown deployment target '{options.deployment_target}'; choose from {', '.join(DEPLOYMENT_TARGETS)}"
        )
    if options.route not in ROUTES:
        raise SrExportError(f"route must be one of {', '.join(ROUTES)}, not '{options.route}'")
    smallest = min(min(options.sizes.bounds[0]), min(options.sizes.example))
    if smallest < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}; "
            f"{options.sizes.describe()} goes below that"
        )
    ct = import_coremltools()
    module = model.module
    notes: list[str] = []
    if options.rewrite:
        from sr_export.rewrites.coreml import rewrite_for_coreml

        module, applied = rewrite_for_coreml(module)
        notes.extend(f"rewrite: {name}" for name in applied)
    example = torch.rand(1, info.in_channels, *options.sizes.example)
    routes = ("export", "trace") if options.route == "auto" else (options.route,)
    failures: list[str] = []
    started = time.perf_counter()
    mlmodel, used = None, ""
    for route in routes:
        try:
            with _quiet_converter():
                mlmodel = _convert(ct, module, example, options, route)
            used = "torch.export" if route == "export" else "torch.jit.trace"
            break
        except SrExportError:
            raise
        except Exception as exc:  # the user's model, torch.export and coremltools can raise anything
            failures.append(f"{'torch.export' if route == 'export' else 'torch.jit.trace'}: {first_line(exc)}")
    if mlmodel is None:
        raise StageFailed("convert", "; ".join(failures) + f"; {conversion_hint(' '.join(failures), options)}")
    if len(failures):
        notes.append(f"converted with {used} after {failures[0]}")
    if options.int8_weights:
        mlmodel = _quantize_weights(ct, mlmodel)
    seconds = time.perf_counter() - started
    op_counts = count_ops(mlmodel.get_spec())
    batch, channels = 1, info.in_channels
    sizes = options.sizes
    if sizes.fixed:
        input_shape: tuple[int | str, ...] = (batch, channels, *sizes.fixed)
    else:
        input_shape = (batch, channels, "height", "width")
    notes.append(f"Core ML {options.deployment_target}, {options.precision} compute, "
                 f"{'8-bit weights, ' if options.int8_weights else ''}inputs: {sizes.describe()}")
    metadata = ArtifactMetadata.for_model(
        model,
        format="mlpackage",
        backend="coreml",
        precision=options.artifact_precision,
        input_shape=input_shape,
        exporter=used,
        notes=tuple(model.notes) + tuple(notes),
    )
    return ConvertedProgram(mlmodel, metadata, used, seconds, op_counts, notes)


def _convert(ct: Any, module: Any, example: Any, options: CoreMLOptions, route: str) -> Any:
    import torch

    sizes = options.sizes
    channels = example.shape[1]
    dynamic = sizes.kind != "fixed"
    if route == "export":
        dynamic_shapes = None
        if dynamic:
            (h0, w0), (h1, w1) = sizes.bounds
            height = torch.export.Dim("height", min=h0, max=h1) if h0 != h1 else None
            width = torch.export.Dim("width", min=w0, max=w1) if w0 != w1 else None
            dims = {axis: dim for axis, dim in ((2, height), (3, width)) if dim is not None}
            dynamic_shapes = (dims,) if dims else None
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes, strict=False)
        source = program.run_decompositions({})
    else:
        with torch.no_grad():
            source = torch.jit.trace(module, example)
    if sizes.fixed:
        shape: Any = (1, channels, *sizes.fixed)
    elif sizes.enumerated:
        shape = ct.EnumeratedShapes(shapes=[(1, channels, h, w) for h, w in sizes.enumerated],
                                    default=(1, channels, *sizes.example))
    else:
        (h0, w0), (h1, w1) = sizes.bounds
        default_h, default_w = sizes.example
        shape = ct.Shape((1, channels, ct.RangeDim(h0, h1, default_h), ct.RangeDim(w0, w1, default_w)))
    if options.precision == "fp16":
        precision: Any = ct.transform.FP16ComputePrecision(op_selector=computes_on_feature_maps)
    else:
        precision = ct.precision.FLOAT32
    try:
        return ct.convert(
            source,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, options.deployment_target),
            skip_model_load=True,
        )
    except Exception as exc:
        where = offending_nodes(source, str(exc)) if route == "export" else ""
        if where:
            raise RuntimeError(f"{first_line(exc)} (at {where})") from exc
        raise


def computes_on_feature_maps(op: Any) -> bool:
    """Which ops an FP16 program runs in float16: those producing feature maps (rank 3 and up).

    Size, index and coordinate arithmetic (rank 0-2: shapes, ``range_1d``,
    resize coordinates) stays float32: float16 cannot count past 2048 nor
    resolve sub-pixel positions in large images.
    """
    return all(getattr(out, "rank", 0) >= 3 for out in op.outputs)


# Words in coremltools' failure messages -> the aten ops they are about.
_OP_WORDS = {"upsample": "upsample", "interpolate": "upsample", "resize": "upsample", "pixel_shuffle": "pixel_shuffle",
             "conv_transpose": "convolution", "deconv": "convolution"}


def offending_nodes(program: Any, message: str) -> str:
    """The graph nodes (and the modules they come from) a converter message is about, if it names an op."""
    named = re.findall(r"op '([\w.]+)'", message)
    keys = [name.split(".")[-1] for name in named]
    keys += [op for word, op in _OP_WORDS.items() if word in message.lower()]
    if not keys:
        return ""
    found = []
    for node in program.graph.nodes:
        target = str(getattr(node, "target", ""))
        if node.op == "call_function" and any(key in target for key in keys):
            stack = node.meta.get("nn_module_stack") or {}
            module = list(stack.values())[-1][0] if stack else ""
            found.append(f"node '{node.name}'" + (f" in module '{module}'" if module else ""))
    return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")


def _quantize_weights(ct: Any, mlmodel: Any) -> Any:
    from coremltools.optimize import coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))
    try:
        with _quiet_converter():
            return cto.linear_quantize_weights(mlmodel, config)
    except Exception as exc:
        raise StageFailed("convert", f"8-bit weight quantisation: {first_line(exc)}; drop --int8-weights") from exc


# Known converter failures -> what the user can do about them.
_HINTS = (
    (re.compile(r"upsample|interpolate|resize", re.I),
     "the model resizes to a size computed from its input (like E-RFDN's spatial attention): keep the default "
     "rewrites (no --no-rewrite) or convert a fixed size with --shape HxW"),
    (re.compile(r"Constraints violated|guard|specialized", re.I),
     "torch.export cannot keep H/W dynamic for this model: use --shape HxW (other sizes then run in tiles) or "
     "raise the lower bound of --range / --shapes"),
    (re.compile(r"convert function for op '([\w.]+)' not implemented", re.I),
     "coremltools has no conversion for that PyTorch op: rewrite the layer with standard ops, or register a "
     "coremltools op (ct.converters.mil.frontend.torch.register_torch_op)"),
)


def conversion_hint(message: str, options: CoreMLOptions) -> str:
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return "try --fp32, a fixed --shape, or SR_EXPORT_DEBUG=1 for the converter's traceback"


def count_ops(spec: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        counts[op.type] = counts.get(op.type, 0) + 1
    return counts


def package_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def save_program(converted: ConvertedProgram, target: Path) -> None:
    """Write the package itself into ``target`` (a path that does not exist yet)."""
    with _quiet_converter():
        converted.mlmodel.save(str(target))


def write_sidecar(path: Path, metadata: ArtifactMetadata) -> None:
    from sr_export.io import write_json_atomic

    write_json_atomic(sidecar_path(path), metadata.to_dict())


def write_package(converted: ConvertedProgram, output: Path) -> Artifact:
    """Write ``converted`` to ``output`` (.mlpackage) atomically, with its metadata sidecar."""
    from sr_export.io import atomic_directory

    with atomic_directory(output) as tmp:
        save_program(converted, tmp)
    write_sidecar(output, converted.metadata)
    return Artifact(output, converted.metadata)


def default_filename(model: LoadedModel) -> str:
    return f"{model.info.name}_x{model.info.scale}.mlpackage"


# --- running -----------------------------------------------------------------


def program_sizes(spec: Any) -> InputSizes:
    """The sizes a saved program's input takes, read off its spec."""
    array = spec.description.input[0].type.multiArrayType
    kind = array.WhichOneof("ShapeFlexibility")
    if kind == "enumeratedShapes":
        shapes = tuple((int(s.shape[2]), int(s.shape[3])) for s in array.enumeratedShapes.shapes)
        return InputSizes(enumerated=shapes)
    if kind == "shapeRange":
        ranges = array.shapeRange.sizeRanges
        upper = tuple(int(r.upperBound) if r.upperBound > 0 else 1 << 30 for r in ranges[2:4])
        return InputSizes(lower=(int(ranges[2].lowerBound), int(ranges[3].lowerBound)), upper=upper)  # type: ignore[arg-type]
    return InputSizes(fixed=(int(array.shape[2]), int(array.shape[3])))


def can_predict() -> bool:
    """Whether Core ML itself can run here (macOS with coremltools' native module)."""
    if sys.platform != "darwin":
        return False
    try:
        import_coremltools()
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False
    return True


class _CoreMLRunnerBase(ABC):
    name: str
    sizes: InputSizes
    scale: int

    def infer(self, batch: np.ndarray) -> np.ndarray:
        size = tuple(batch.shape[2:])
        if self.sizes.accepts(size):  # type: ignore[arg-type]
            return np.concatenate([self._run(batch[i:i + 1]) for i in range(batch.shape[0])])
        if self.sizes.enumerated:
            # Any other size runs in tiles of the first enumerated one.
            from sr_export.targets.tiling import TiledRunner

            tile = self.sizes.enumerated[0]
            inner = _SizeRestricted(self)
            return TiledRunner(inner, tile, self.scale, self._overlap).infer(batch)
        raise SrExportError(
            f"the Core ML program takes {self.sizes.describe()}, not {size[0]}x{size[1]}; "
            "open it with sr_export.targets.open_runner (tiles fixed sizes) or re-export with --range"
        )

    _overlap: int = 8

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch of a size the program takes."""


class _SizeRestricted:
    """The exact-size part of a runner, for TiledRunner to drive."""

    def __init__(self, runner: _CoreMLRunnerBase) -> None:
        self.runner, self.name = runner, runner.name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.runner._run(batch)


class ReferenceRunner(_CoreMLRunnerBase):
    """Runs the saved ML Program with the numpy reference executor (any OS)."""

    def __init__(self, artifact: Artifact) -> None:
        from sr_export.targets.coreml_reference import MilProgram, load_spec

        self.program = MilProgram.from_package(artifact.path)
        self.sizes = program_sizes(load_spec(artifact.path))
        self.scale = artifact.metadata.scale
        self._overlap = artifact.metadata.receptive_field or 8
        self.name = f"coreml-reference-executor (numpy, not Core ML) {artifact.metadata.precision}"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.program.run({INPUT_NAME: batch})
        return np.asarray(outputs[OUTPUT_NAME], np.float32)


class PredictRunner(_CoreMLRunnerBase):
    """Runs the package with Core ML itself (macOS only)."""

    def __init__(self, artifact: Artifact, compute_units: str = "ALL") -> None:
        ct = import_coremltools()
        with _quiet_converter():
            self.model = ct.models.MLModel(str(artifact.path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.sizes = program_sizes(self.model.get_spec())
        self.scale = artifact.metadata.scale
        self._overlap = artifact.metadata.receptive_field or 8
        self.name = f"coreml-predict {compute_units} {artifact.metadata.precision}"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            result = self.model.predict({INPUT_NAME: np.ascontiguousarray(batch, np.float32)})
        except Exception as exc:
            raise StageFailed("check", f"Core ML predict failed: {first_line(exc)}") from exc
        return np.asarray(result[OUTPUT_NAME], np.float32)


class CoreMLTarget(Target):
    name: ClassVar[str] = "coreml"
    precisions: ClassVar[tuple[str, ...]] = ("fp16", "fp32")

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp16",
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        raise SrExportError(
            "coremltools no longer converts ONNX; Core ML programs are converted from the PyTorch model "
            "(sr-export coreml --model ...)"
        )

    def from_model(
        self,
        model: LoadedModel,
        output: Path,
        *,
        precision: str = "fp16",
        shape: tuple[int, int] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Convert and write ``model``; ``output`` is a folder or a ``.mlpackage`` path.

        ``options`` may hold ``shapes``, ``range``, ``deployment_target``,
        ``int8_weights`` and ``rewrite`` (as on the command line).
        """
        options = dict(options or {})
        sizes = InputSizes.from_options(shape, tuple(options.get("shapes", ())), options.get("range"))
        coreml_options = CoreMLOptions(
            precision=precision,
            deployment_target=options.get("deployment_target", DEFAULT_DEPLOYMENT_TARGET),
            sizes=sizes,
            int8_weights=bool(options.get("int8_weights", False)),
            rewrite=bool(options.get("rewrite", True)),
        )
        converted = convert_model(model, coreml_options)
        path = Path(output)
        if path.suffix.lower() != ".mlpackage":
            path = path / default_filename(model)
        return write_package(converted, path)

    def load(self, artifact: Artifact, *, threads: int | None = None, reference: bool | None = None) -> Any:
        use_reference = not can_predict() if reference is None else reference
        return ReferenceRunner(artifact) if use_reference else PredictRunner(artifact)

    def describe(self) -> dict[str, str]:
        ct = import_coremltools()
        if can_predict():
            return {"runtime": f"Core ML (coremltools {ct.__version__})", "device": f"macOS {platform.mac_ver()[0]}"}
        return {"runtime": f"sr-export Core ML reference executor (numpy; coremltools {ct.__version__} for the spec)",
                "device": f"CPU ({platform.machine()}); Core ML predict needs macOS"}
