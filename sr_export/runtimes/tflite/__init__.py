"""TFLite (LiteRT): converted straight from PyTorch with litert-torch, run with the LiteRT interpreter.

Every artifact has one fixed LR size (one file per size); other sizes run
tiled (:func:`sr_export.runtimes.open.open_runner`). Precisions: fp32, fp16
(float16 weights, float compute) and int8 (static quantisation calibrated on
the build's calibration set, integer or float I/O). Runners, here and on a
device, feed integer inputs and read integer outputs with the tensors' own
scale and zero point, so every tool takes float batches whatever the file's
I/O type.

Modules: :mod:`.options`, :mod:`.convert` (conversion), :mod:`.int8`,
:mod:`.calibration` and :mod:`.graph_edits` (INT8), :mod:`.graph` (reading
a flatbuffer, its SR-sensitive ops), :mod:`.diagnose` (converter failures),
:mod:`.quiet` (output silencing), :mod:`.interpreter` and :mod:`.runner`
(running here), :mod:`.device` (running on a device).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.formats import TFLITE
from sr_export.core.sizes import Size
from sr_export.runtimes.base import DeviceSession, Runtime
from sr_export.runtimes.tflite.options import PRECISIONS, TfliteRuntimeOptions
from sr_export.runtimes.tflite.releases import PROBE

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.runtimes.tflite.runner import TfliteRunner


class TfliteRuntime(Runtime):
    name: ClassVar[str] = "tflite"
    label: ClassVar[str] = "TFLite"
    description: ClassVar[str] = "LiteRT / TFLite interpreter, XNNPACK delegate, CPU"
    consumes: ClassVar[str] = "pytorch"
    reads: ClassVar[tuple[str, ...]] = (TFLITE.name,)
    writes: ClassVar[tuple[str, ...]] = (TFLITE.name,)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str | None] = "tflite"
    packages: ClassVar[tuple[str, ...]] = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")
    options: ClassVar[type] = TfliteRuntimeOptions
    device_session: ClassVar[DeviceSession | None] = DeviceSession("sr_export.runtimes.tflite.device", "LiteRtSession")
    fixed_size: ClassVar[bool] = True
    version_probe: ClassVar[str | None] = PROBE

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        # A TFLite file is already built (sr-bench hands every artifact to its profile's runtime).
        if onnx_artifact.metadata.format == TFLITE.name:
            return onnx_artifact
        raise SrExportError(
            "the tflite target converts from PyTorch, not from ONNX files; use `sr-export tflite --model ...`"
        )

    def from_model(self, model: LoadedModel, output: Path, *, precision: str = "fp32", shape: Size | None = None,
                   options: Any = None, calibration: CalibrationSet | None = None) -> Artifact:
        """Convert at ``shape`` into ``output`` (a folder, or the .tflite file to write)."""
        from sr_export.quantize.recipes import load_recipe
        from sr_export.runtimes.tflite.convert import TfliteOptions, convert_tflite, default_filename, write_tflite
        from sr_export.runtimes.tflite.int8 import TfliteInt8Options

        if shape is None:
            raise SrExportError("a TFLite file has one fixed LR size; give one (--shape HxW)")
        settings = self.parse_options(options)
        int8 = None
        if precision == "int8":
            recipe = calibration.recipe if calibration is not None else load_recipe(settings.calibration)
            int8 = TfliteInt8Options(recipe, io=settings.int8_io, scheme=settings.int8_scheme)
        tflite_options = TfliteOptions(shape=tuple(shape), layout=settings.layout, precision=precision,
                                       rewrite=settings.rewrite, int8=int8, for_runtime=settings.for_runtime)
        converted = convert_tflite(model, tflite_options, calibration=calibration)
        path = Path(output)
        if path.suffix.lower() != ".tflite":
            path = path / default_filename(model, tflite_options)
        written = write_tflite(converted, path)
        details = {"convert_seconds": round(converted.seconds, 2), "rewrites": list(converted.rewrites),
                   "notes": list(converted.notes)}
        return Artifact(written.path, written.metadata, details)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> TfliteRunner:
        from sr_export.runtimes.tflite.runner import TfliteRunner

        return TfliteRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        from sr_export.runtimes.tflite.device import interpreter_module

        module, package = interpreter_module()
        version = getattr(__import__(package), "__version__", "")
        return {"runtime": f"{package} {version} (XNNPACK)".replace("  ", " "), "device": f"CPU ({platform.machine()})"}

    def device_job(self, artifact: Artifact, options: Any) -> dict[str, Any]:
        return {"layout": artifact.metadata.layout}

    def file_requirements(self, path: Path) -> dict[str, Any]:
        from sr_export.runtimes.tflite.compat import file_requirements

        return file_requirements(path)

    def too_old_for(self, requirements: Mapping[str, Any], found: str) -> str | None:
        from sr_export.runtimes.tflite.releases import too_old_for

        return too_old_for(requirements, found)
