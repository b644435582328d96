"""TensorRT engines (``.engine`` / ``.plan``) through TensorRT's Python API, for TensorRT 10 and 11.

TensorRT 11 builds strongly typed networks only: precision comes from the
prepared ONNX graph (FP16-typed, or INT8 QDQ; see
:mod:`sr_export.runtimes.tensorrt.onnx`). TensorRT 10 (JetPack 6) builds the
same graphs with its precision builder flags, and can also calibrate the
FP32 graph implicitly (:mod:`sr_export.runtimes.tensorrt.implicit`, names
that exist in TensorRT 10 only). The other modules use only API names both
releases have; ``make test`` checks that against the real bindings.

Every engine gets metadata in ``<engine>.json`` and a platform manifest in
``<engine>.manifest.json``.
"""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact, build_stamp, write_sidecar
from sr_export.core.errors import SrExportError
from sr_export.core.formats import ONNX, ONNX_QDQ, TENSORRT_ENGINE
from sr_export.core.io import atomic_path
from sr_export.runtimes.base import DeviceSession, Runtime
from sr_export.runtimes.tensorrt.build import (
    Progress,
    build_engine,
    engine_path,
    recipe_label,
    uses_strong_typing,
)
from sr_export.runtimes.tensorrt.loader import current_platform, import_tensorrt
from sr_export.runtimes.tensorrt.manifest import EngineManifest, file_sha256, write_manifest
from sr_export.runtimes.tensorrt.settings import EngineSettings, TensorRTRuntimeOptions, settings_from_options

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet


def engine_requirements(tensorrt_version: str, compute_capability: str) -> dict[str, Any]:
    """What an engine needs: exactly the TensorRT release that built it (plans are not portable across releases;
    the manifest also holds the GPU), so a board with another release rebuilds from the prepared ONNX."""
    return {"runtime": "tensorrt", "min_runtime": f"TensorRT {tensorrt_version}",
            "set_by": f"a TensorRT plan runs only on the release that built it, on sm {compute_capability} GPUs",
            "exact": True}


class TensorRTRuntime(Runtime):
    name: ClassVar[str] = "tensorrt"
    label: ClassVar[str] = "TensorRT"
    description: ClassVar[str] = "TensorRT engine on an NVIDIA GPU (trtexec on boards)"
    consumes: ClassVar[str] = "onnx"
    reads: ClassVar[tuple[str, ...]] = (TENSORRT_ENGINE.name,)
    writes: ClassVar[tuple[str, ...]] = (ONNX.name, ONNX_QDQ.name, TENSORRT_ENGINE.name)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")
    extra: ClassVar[str | None] = "tensorrt"
    packages: ClassVar[tuple[str, ...]] = ("tensorrt",)
    options: ClassVar[type] = TensorRTRuntimeOptions
    keeps_export: ClassVar[bool] = True  # the FP32 ONNX every precision is prepared from stays beside the engine
    # On a device the engine is built and timed by trtexec from the prepared ONNX (see device.py).
    device_session: ClassVar[DeviceSession | None] = DeviceSession("sr_export.runtimes.tensorrt.device",
                                                                   "TrtexecSession", takes="prepared")

    def settings(self, onnx_artifact: Artifact, precision: str, options: Any) -> EngineSettings:
        return settings_from_options(self.parse_options(options), precision,
                                     min_input_size=onnx_artifact.metadata.min_input_size)

    def prepare(self, onnx_artifact: Artifact, folder: Path, *, precision: str = "fp32", options: Any = None,
                calibration: CalibrationSet | None = None, settings: EngineSettings | None = None) -> Artifact:
        """The FP32, FP16-typed or INT8 QDQ (TensorRT flavour) ONNX the engine is built from, proven on a CPU first."""
        from sr_export.runtimes.tensorrt.onnx import prepare_onnx

        settings = settings or self.settings(onnx_artifact, precision, options)
        return prepare_onnx(onnx_artifact, settings, Path(folder), calibration=calibration)

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Any = None,
        calibration: CalibrationSet | None = None,
        settings: EngineSettings | None = None,
        progress: Progress | None = None,
    ) -> Artifact:
        meta = onnx_artifact.metadata
        settings = settings or self.settings(onnx_artifact, precision, options)
        target = engine_path(onnx_artifact.path, output, settings.precision,
                             recipe_label(calibration, settings.calibration))
        prepared = self.prepare(onnx_artifact, target.parent, settings=settings, calibration=calibration)
        trt = import_tensorrt()
        here = current_platform(trt)
        strongly_typed = uses_strong_typing(trt, settings)
        if settings.calibrator == "entropy" and strongly_typed:
            raise SrExportError(f"TensorRT {trt.__version__} has no implicit calibrators; build INT8 from a QDQ "
                                "ONNX (--int8 --calib RECIPE or --int8 --from model_qdq.onnx)")
        with atomic_path(target) as tmp:
            input_name, output_name = build_engine(trt, prepared, settings, tmp, strongly_typed=strongly_typed,
                                                   progress=progress, calibration=calibration)
        metadata = build_stamp(replace(
            prepared.metadata, format=TENSORRT_ENGINE.name, flavour=None, backend=self.name,
            runtimes=(self.name,), precision=settings.precision, input_name=input_name, output_name=output_name,
            input_shape=(1, meta.in_channels, "height", "width") if not settings.profile.static
            else (1, meta.in_channels, *settings.profile.opt),
            notes=(*prepared.metadata.notes, f"TensorRT {trt.__version__} engine, profile "
                   f"{settings.profile.describe()}, built on {here.gpu_name} (sm {here.compute_capability})"),
            runtime_requirements=engine_requirements(trt.__version__, here.compute_capability),
        ))
        write_sidecar(target, metadata)
        write_manifest(target, EngineManifest(
            platform=here, precision=settings.precision, strongly_typed=strongly_typed, profile=settings.profile,
            onnx_sha256=file_sha256(prepared.path), onnx_file=str(prepared.path), input_name=input_name,
            output_name=output_name, settings=settings.to_dict(),
        ))
        return Artifact(target, metadata)

    def device_job(self, artifact: Artifact, options: Any) -> dict[str, Any]:
        """trtexec's command lines for the board: build the engine from ``artifact`` (the prepared ONNX) with
        the profile's settings, one line per TensorRT major version, then time it at a size."""
        from sr_export.runtimes.tensorrt.trtexec import benchmark_command, build_command

        meta = artifact.metadata
        # The board has its own home and caches: no timing cache path of this machine goes there.
        settings = replace(self.settings(artifact, meta.precision, options), timing_cache=None)
        if settings.calibrator != "none":
            raise SrExportError("the entropy calibrator runs in TensorRT's Python API, which boards timed over "
                                "trtexec lack; build INT8 from a QDQ ONNX (options.calibration = a recipe)")
        onnx, engine = Path(artifact.path.name), Path(f"{artifact.path.stem}.engine")
        build = {str(major): build_command(onnx, engine, settings, input_name=meta.input_name,
                                           channels=meta.in_channels, tensorrt_major=major, trtexec="{trtexec}")
                 for major in (10, 11)}
        timing = benchmark_command(engine, ("{height}", "{width}"), input_name=meta.input_name,  # type: ignore[arg-type]
                                   channels=meta.in_channels, iterations="{runs}", trtexec="{trtexec}")  # type: ignore[arg-type]
        return {"trtexec": {"build": build, "benchmark": timing, "engine": str(engine)}}

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Any:
        from sr_export.runtimes.tensorrt.runner import TensorRTRunner

        return TensorRTRunner(artifact)

    def describe(self) -> dict[str, str]:
        trt = import_tensorrt()
        here = current_platform(trt)
        return {"runtime": f"tensorrt {trt.__version__}",
                "device": f"{here.gpu_name} (sm {here.compute_capability}, {platform.machine()} host)"}
