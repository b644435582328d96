"""Building a serialised TensorRT engine from a prepared ONNX graph with TensorRT's Python API.

Every engine gets one bounded optimisation profile, a reused timing cache
and builder progress on the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import RuntimeUnavailable, SrExportError, StageFailed
from sr_export.core.io import atomic_path
from sr_export.core.naming import base_stem, int8_tail
from sr_export.runtimes.tensorrt.loader import tensorrt_major
from sr_export.runtimes.tensorrt.settings import EngineSettings

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet

ENGINE_SUFFIXES = (".engine", ".plan")


Progress = Callable[[str], Any]


def uses_strong_typing(trt: Any, settings: EngineSettings) -> bool:
    """TensorRT 11 has nothing else; TensorRT 10 keeps weak typing so its precision flags and calibrator apply."""
    return tensorrt_major(trt) >= 11


def engine_path(onnx_path: Path, output: Path | None, precision: str, recipe: str | None = None) -> Path:
    """``output`` when it names an engine file, else the default name in it: the ONNX file's model stem, the
    precision and, for INT8, the calibration recipe (given, or the one the QDQ file's name carries):
    'imdn_x2_int8_trt-mixed.onnx' -> 'imdn_x2_int8-mixed.engine'."""
    if output is not None and Path(output).suffix.lower() in ENGINE_SUFFIXES:
        return Path(output)
    folder = Path(output) if output is not None else onnx_path.parent
    stem, named = base_stem(onnx_path.stem)
    tail = int8_tail(recipe or named) if precision == "int8" else f"_{precision}"
    return folder / f"{stem}{tail}.engine"


def recipe_label(calibration: CalibrationSet | None, recipe: str | None) -> str | None:
    """The name of the recipe an INT8 engine is calibrated by, for its file name: the build's calibration
    set's, else the --calib given (read, so a .toml names it as the QDQ file it makes does)."""
    if calibration is not None:
        return calibration.recipe.name
    if recipe is None:
        return None
    from sr_export.quantize.recipes import load_recipe

    return load_recipe(recipe).name


def build_engine(
    trt: Any, onnx: Artifact, settings: EngineSettings, output: Path, *, strongly_typed: bool,
    progress: Progress | None = None, calibration: CalibrationSet | None = None,
) -> tuple[str, str]:
    """Parse ``onnx``, build a serialised engine into ``output``; return its input and output tensor names."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if builder is None:
        raise RuntimeUnavailable("TensorRT found no usable CUDA device; build the engine on a machine with an NVIDIA GPU")
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx.path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise StageFailed("convert", f"TensorRT's ONNX parser rejected {onnx.path.name}: "
                          f"{errors[0] if errors else 'no reason given'}")
    if network.num_inputs != 1:
        raise SrExportError(f"{onnx.path.name} has {network.num_inputs} inputs; an SR model takes one image tensor")
    input_tensor = network.get_input(0)
    channels = onnx.metadata.in_channels
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    if settings.builder_optimization_level is not None:
        config.builder_optimization_level = settings.builder_optimization_level
    profile = builder.create_optimization_profile()
    low, best, high = settings.profile.nchw(1, channels)
    profile.set_shape(input_tensor.name, low, best, high)
    config.add_optimization_profile(profile)
    cache = _timing_cache(config, settings.timing_cache)
    monitor = _progress_monitor(trt, progress)
    if monitor is not None:
        config.progress_monitor = monitor
    if not strongly_typed:
        from sr_export.runtimes.tensorrt.implicit import configure_weakly_typed

        configure_weakly_typed(trt, config, settings, profile, onnx, calibration)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StageFailed("convert", f"TensorRT could not build an engine from {onnx.path.name} "
                          f"(profile {settings.profile.describe()}, workspace {settings.workspace_mb} MB); "
                          "its log lines above say why")
    output.write_bytes(bytes(serialized))
    if settings.timing_cache is not None:
        with atomic_path(settings.timing_cache) as tmp:
            tmp.write_bytes(bytes(cache.serialize()))
    return input_tensor.name, network.get_output(0).name


def _timing_cache(config: Any, path: Path | None) -> Any:
    """Kernel timings from earlier builds (any model), so rebuilding skips the slow tactic search."""
    previous = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(previous)
    # A cache from another TensorRT release or GPU is ignored rather than trusted.
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _progress_monitor(trt: Any, progress: Progress | None) -> Any:
    """A builder progress monitor reporting each phase to ``progress``, where TensorRT has one."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None or progress is None:
        return None

    class PhaseMonitor(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self._steps: dict[str, int] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = num_steps
            progress(f"{phase_name} (0/{num_steps})")

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress(f"{phase_name} ({step + 1}/{self._steps.get(phase_name, '?')})")
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            progress(f"{phase_name} done")

    return PhaseMonitor()
