"""OpenVINO: IRs (``.xml`` + ``.bin``) converted from the proven ONNX export, run on CPUs, Intel GPUs and NPUs.

Precisions: ``fp32``; ``bf16``, the FP32 IR compiled with the CPU's
inference-precision hint (refused where the CPU has no native BF16); ``int8``,
quantised with NNCF under the recipe's accuracy budget (:mod:`.int8`).
Height and width stay dynamic. Modules: :mod:`.options`, :mod:`.ir`
(conversion, writing), :mod:`.int8`, :mod:`.runner` (here), :mod:`.device`
(compiling, on a board and here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact
from sr_export.core.sizes import Size
from sr_export.runtimes.base import DeviceSession, Runtime
from sr_export.runtimes.openvino.ir import OPENVINO_IR
from sr_export.runtimes.openvino.options import PRECISIONS, OpenVinoOptions

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.runtimes.openvino.runner import OpenVinoRunner

# Square, odd, and not a multiple of 8: the sizes the ONNX export was proven at, and the IR is checked at.
CHECK_SIZES: tuple[Size, ...] = ((64, 64), (45, 71), (100, 37))


class OpenVinoRuntime(Runtime):
    name: ClassVar[str] = "openvino"
    label: ClassVar[str] = "OpenVINO"
    description: ClassVar[str] = "OpenVINO IR; CPU (FP32, BF16, INT8 via NNCF), Intel GPU and NPU"
    consumes: ClassVar[str] = "onnx"
    reads: ClassVar[tuple[str, ...]] = (OPENVINO_IR.name,)
    writes: ClassVar[tuple[str, ...]] = (OPENVINO_IR.name,)
    formats: ClassVar[tuple[Any, ...]] = (OPENVINO_IR,)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str | None] = "openvino"
    packages: ClassVar[tuple[str, ...]] = ("openvino",)
    options: ClassVar[type] = OpenVinoOptions
    device_session: ClassVar[DeviceSession | None] = DeviceSession("sr_export.runtimes.openvino.device",
                                                                   "OpenVinoSession")

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        """The IR of ``onnx_artifact`` (an IR given as the source is returned as it is)."""
        from sr_export.runtimes.openvino.ir import convert_onnx, ir_metadata, target_path, write_ir

        if onnx_artifact.metadata.format == OPENVINO_IR.name:
            return onnx_artifact
        self.check_precision(precision)
        self.require_packages()
        settings = self.parse_options(options)
        model = convert_onnx(onnx_artifact.path)
        notes: tuple[str, ...] = (f"OpenVINO IR from the ONNX export, proven on {settings.device}",)
        quantization: dict[str, Any] = {}
        recipe = None
        if precision == "int8":
            from sr_export.runtimes.openvino.int8 import quantize_ir

            model, quantization = quantize_ir(model, onnx_artifact, settings, calibration)
            recipe = quantization["recipe"]
        elif precision == "bf16":
            notes = (*notes, "BF16: the FP32 weights compiled with INFERENCE_PRECISION_HINT bf16")
        target = target_path(onnx_artifact.path, output, precision, recipe)
        metadata = ir_metadata(onnx_artifact.metadata, precision, notes, CHECK_SIZES, quantization)
        return write_ir(model, target, metadata, device=settings.device)

    def check_sizes(self, artifact: Artifact) -> tuple[Size, ...] | None:
        return CHECK_SIZES

    def load(self, artifact: Artifact, *, threads: int | None = None) -> OpenVinoRunner:
        from sr_export.runtimes.openvino.runner import OpenVinoRunner

        self.require_packages()
        return OpenVinoRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        import openvino as ov

        core = ov.Core()
        return {"runtime": f"openvino {ov.__version__}",
                "device": f"CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')}); present: "
                          f"{', '.join(core.available_devices)}"}

    def device_job(self, artifact: Artifact, options: Any) -> dict[str, Any]:
        """The compile settings the board's session uses: the profile's device, streams and hint, and the
        artifact's precision (BF16 is a compile-time hint, not in the IR)."""
        settings = self.parse_options(options)
        return {"device": settings.device, "streams": settings.streams,
                "performance_hint": settings.performance_hint, "precision": artifact.metadata.precision}


__all__ = ["OpenVinoRuntime"]
