"""ONNX Runtime on the CPU: the embedded default runtime and every other runtime's reference.

It runs ONNX files as they are (FP32, FP16-typed) and static INT8 QDQ graphs
of either flavour; an INT8 build quantises the proven FP32 export with the
build's calibration set (:mod:`sr_export.quantize.qdq`).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact
from sr_export.core.formats import ONNX, ONNX_QDQ, QDQ_FLAVOURS
from sr_export.runtimes.base import DeviceSession, Runtime

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.runtimes.onnxruntime.runner import OnnxRuntimeRunner


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    calibration: str = "default"  # INT8: a recipe name in calibration/ or a path to one
    keep_float: tuple[str, ...] = ()  # INT8: further node or activation tensor names kept in float
    flavour: str = field(default="onnxruntime", metadata={"choices": QDQ_FLAVOURS})  # INT8: QDQ flavour


class OnnxRuntime(Runtime):
    name: ClassVar[str] = "onnxruntime"
    label: ClassVar[str] = "ONNX Runtime"
    description: ClassVar[str] = "ONNX Runtime, CPU execution provider"
    consumes: ClassVar[str] = "onnx"
    reads: ClassVar[tuple[str, ...]] = (ONNX.name, ONNX_QDQ.name)
    writes: ClassVar[tuple[str, ...]] = (ONNX.name, ONNX_QDQ.name)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")
    packages: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    options: ClassVar[type] = OnnxRuntimeOptions
    # Silent where it is missing: the run itself then says so, with the install line.
    version_probe: ClassVar[str | None] = ("try:\n    import onnxruntime\nexcept ImportError:\n    pass\n"
                                           "else:\n    print('onnxruntime', onnxruntime.__version__)\n")
    device_session: ClassVar[DeviceSession | None] = DeviceSession(
        "sr_export.runtimes.onnxruntime.device", "OnnxRuntimeSession")

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        # ONNX Runtime runs the exported FP32 file as it is; INT8 is a static QDQ graph
        # calibrated with the options' recipe.
        self.check_precision(precision)
        if precision == "fp32":
            return onnx_artifact
        from sr_export.quantize.qdq import quantize_onnx
        from sr_export.quantize.recipes import load_recipe

        settings = self.parse_options(options)
        recipe = calibration.recipe if calibration is not None else load_recipe(settings.calibration)
        folder = Path(output) if output is not None else onnx_artifact.path.parent
        return quantize_onnx(onnx_artifact, recipe, flavour=settings.flavour, keep_float=settings.keep_float,
                             output=folder, calibration=calibration)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> OnnxRuntimeRunner:
        from sr_export.runtimes.onnxruntime.runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        import onnxruntime as ort

        return {"runtime": f"onnxruntime {ort.__version__}", "device": f"CPU ({platform.machine()})"}

    def file_requirements(self, path: Path) -> dict[str, Any]:
        import onnx

        from sr_export.export.onnx_versions import requirements

        return requirements(onnx.load(str(path), load_external_data=False))

    def too_old_for(self, requirements: Mapping[str, Any], found: str) -> str | None:
        from sr_export.export.onnx_versions import too_old_for

        return too_old_for(requirements, found)
