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
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from sr_export.core.artifacts import Artifact, sidecar_path
from sr_export.core.errors import SrExportError
from sr_export.core.io import atomic_path, write_json_atomic
from sr_export.runtimes.base import Target
from sr_export.runtimes.tensorrt.build import Progress, build_engine, engine_path, uses_strong_typing
from sr_export.runtimes.tensorrt.loader import current_platform, import_tensorrt
from sr_export.runtimes.tensorrt.manifest import EngineManifest, file_sha256, write_manifest
from sr_export.runtimes.tensorrt.settings import EngineSettings, settings_from_options


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
        from sr_export.runtimes.tensorrt.onnx import prepare_onnx

        meta = onnx_artifact.metadata
        settings = settings or settings_from_options(options, precision, min_input_size=meta.min_input_size)
        target = engine_path(onnx_artifact.path, output, settings.precision)
        prepared = prepare_onnx(onnx_artifact, settings, target.parent)
        trt = import_tensorrt()
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
        from sr_export.runtimes.tensorrt.runner import TensorRTRunner

        return TensorRTRunner(artifact)

    def describe(self) -> dict[str, str]:
        trt = import_tensorrt()
        here = current_platform(trt)
        return {"runtime": f"tensorrt {trt.__version__}",
                "device": f"{here.gpu_name} (sm {here.compute_capability}, {platform.machine()} host)"}
