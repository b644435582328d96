"""TensorRT engines (``.engine`` / ``.plan``) through TensorRT's Python API, for TensorRT 10 and 11.

TensorRT 11 builds strongly typed networks only: precision comes from the
prepared ONNX graph (FP16-typed, or INT8 QDQ; see
:mod:`sr_export.targets.tensorrt_onnx`). TensorRT 10 (JetPack 6) builds the
same graphs with its precision builder flags, and can also calibrate the
FP32 graph implicitly (:mod:`sr_export.targets.tensorrt_implicit`, names
that exist in TensorRT 10 only). This module uses only API names both
releases have; ``make test`` checks that against the real bindings.

Every engine gets one bounded optimisation profile, a reused timing cache,
builder progress on the terminal, metadata in ``<engine>.json`` and a
platform manifest in ``<engine>.manifest.json``.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from sr_export.artifacts import Artifact, sidecar_path
from sr_export.errors import RuntimeUnavailable, SrExportError, StageFailed
from sr_export.io import atomic_path, write_json_atomic
from sr_export.targets.base import Target
from sr_export.targets.tensorrt_manifest import EngineManifest, file_sha256, write_manifest
from sr_export.targets.tensorrt_settings import EngineSettings, settings_from_options

NOT_INSTALLED = "TensorRT not installed: install sr-export[tensorrt] on a machine with an NVIDIA GPU"
ENGINE_SUFFIXES = (".engine", ".plan")

Progress = Callable[[str], Any]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or RuntimeUnavailable (exit 4) saying where to build."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: bindings present, libnvinfer missing
        raise RuntimeUnavailable(NOT_INSTALLED) from exc
    return trt


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def uses_strong_typing(trt: Any, settings: EngineSettings) -> bool:
    """TensorRT 11 has nothing else; TensorRT 10 keeps weak typing so its precision flags and calibrator apply."""
    return tensorrt_major(trt) >= 11


def engine_path(onnx_path: Path, output: Path | None, precision: str) -> Path:
    if output is not None and Path(output).suffix.lower() in ENGINE_SUFFIXES:
        return Path(output)
    folder = Path(output) if output is not None else onnx_path.parent
    stem = onnx_path.stem
    for tail in ("_fp16", "_int8"):
        stem = stem.removesuffix(tail)
    return folder / f"{stem}_{precision}.engine"


class TensorRTTarget(Target):
    name: ClassVar[str] = "tensorrt"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Mapping[str, Any] | None = None,
        settings: EngineSettings | None = None,
        progress: Progress | None = None,
    ) -> Artifact:
        from sr_export.targets.tensorrt_onnx import prepare_onnx

        meta = onnx_artifact.metadata
        settings = settings or settings_from_options(options, precision, min_input_size=meta.min_input_size)
        target = engine_path(onnx_artifact.path, output, settings.precision)
        prepared = prepare_onnx(onnx_artifact, settings, target.parent)
        trt = import_tensorrt()
        from sr_export.targets.tensorrt_runner import current_platform

        here = current_platform(trt)
        strongly_typed = uses_strong_typing(trt, settings)
        if settings.calibrator == "entropy" and strongly_typed:
            raise SrExportError(f"TensorRT {trt.__version__} has no implicit calibrators; build INT8 from a QDQ "
                                "ONNX (--int8 --calib RECIPE or --int8 --from model_qdq.onnx)")
        with atomic_path(target) as tmp:
            input_name, output_name = build_engine(trt, prepared, settings, tmp, strongly_typed=strongly_typed,
                                                   progress=progress)
        metadata = replace(
            prepared.metadata, format=target.suffix.lstrip("."), backend=self.name, precision=settings.precision,
            input_name=input_name, output_name=output_name,
            input_shape=(1, meta.in_channels, "height", "width") if not settings.profile.static
            else (1, meta.in_channels, *settings.profile.opt),
            notes=(*prepared.metadata.notes, f"TensorRT {trt.__version__} engine, profile "
                   f"{settings.profile.describe()}, built on {here.gpu_name} (sm {here.compute_capability})"),
        )
        write_json_atomic(sidecar_path(target), metadata.to_dict())
        write_manifest(target, EngineManifest(
            platform=here, precision=settings.precision, strongly_typed=strongly_typed, profile=settings.profile,
            onnx_sha256=file_sha256(prepared.path), onnx_file=str(prepared.path), input_name=input_name,
            output_name=output_name, settings=settings.to_dict(),
        ))
        return Artifact(target, metadata)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Any:
        from sr_export.targets.tensorrt_runner import TensorRTRunner

        return TensorRTRunner(artifact)

    def describe(self) -> dict[str, str]:
        trt = import_tensorrt()
        from sr_export.targets.tensorrt_runner import current_platform

        here = current_platform(trt)
        return {"runtime": f"tensorrt {trt.__version__}",
                "device": f"{here.gpu_name} (sm {here.compute_capability}, {platform.machine()} host)"}


def build_engine(
    trt: Any, onnx: Artifact, settings: EngineSettings, output: Path, *, strongly_typed: bool,
    progress: Progress | None = None,
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
        from sr_export.targets.tensorrt_implicit import configure_weakly_typed

        configure_weakly_typed(trt, config, settings, profile, onnx)
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
