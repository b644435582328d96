"""ExecuTorch: ``.pte`` programs exported from PyTorch and lowered to XNNPACK, run with ExecuTorch's runtime.

A program takes any LR size within bounded dynamic height and width (the
profile's ``min_side`` .. ``max_side``; memory is planned for the largest), or
one fixed size (``--shape``) that runs tiled, for models whose shape math
``torch.export`` refuses to keep dynamic. Precisions: fp32, and int8 (PT2E
static quantisation with the XNNPACK quantizer, calibrated on the build's
calibration set, the SR-sensitive layers kept float).

Modules: :mod:`.options`, :mod:`.lower` (export, lowering, delegated op
counts), :mod:`.int8` (PT2E), :mod:`.program` (the format, writing),
:mod:`.runner` (running here) and :mod:`.device` (running on a device).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact, ArtifactMetadata
from sr_export.core.errors import SrExportError, SrExportWarning
from sr_export.core.sizes import Size
from sr_export.runtimes.base import DeviceSession, Runner, Runtime
from sr_export.runtimes.executorch.options import PRECISIONS, ExecuTorchRuntimeOptions
from sr_export.runtimes.executorch.program import PTE

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet


class ExecuTorchRuntime(Runtime):
    name: ClassVar[str] = "executorch"
    label: ClassVar[str] = "ExecuTorch"
    description: ClassVar[str] = "ExecuTorch .pte program, XNNPACK delegate, CPU"
    consumes: ClassVar[str] = "pytorch"
    reads: ClassVar[tuple[str, ...]] = (PTE.name,)
    writes: ClassVar[tuple[str, ...]] = (PTE.name,)
    formats: ClassVar[tuple[Any, ...]] = (PTE,)
    precisions: ClassVar[tuple[str, ...]] = PRECISIONS
    extra: ClassVar[str | None] = "executorch"
    packages: ClassVar[tuple[str, ...]] = ("executorch",)
    options: ClassVar[type] = ExecuTorchRuntimeOptions
    device_session: ClassVar[DeviceSession | None] = DeviceSession("sr_export.runtimes.executorch.device",
                                                                   "ExecuTorchSession")

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        if onnx_artifact.metadata.format == PTE.name:  # already built (sr-bench hands every artifact over)
            return onnx_artifact
        raise SrExportError("ExecuTorch programs are exported from PyTorch, not from ONNX files; "
                            "build from the model (sr-export build --target executorch-xnnpack --model ...)")

    def from_model(self, model: LoadedModel, output: Path, *, precision: str = "fp32", shape: Size | None = None,
                   options: Any = None, calibration: CalibrationSet | None = None) -> Artifact:
        """Export, (quantise,) lower and write ``model`` into ``output`` (a folder, or the .pte file to write)."""
        import warnings

        from sr_export.rewrites import apply_rewrites
        from sr_export.runtimes.executorch.lower import lower_module, sample_input
        from sr_export.runtimes.executorch.program import default_filename, write_program
        from sr_export.runtimes.executorch.runner import dynamic_dim

        self.check_precision(precision)
        self.require_packages()
        settings = self.parse_options(options)
        info = model.info
        module, applied = apply_rewrites(model.module.eval(), "executorch", enabled=settings.rewrite)
        # A dynamic program is traced at 64x64 (or the nearest side its bounds allow): the size only seeds export.
        side = min(max(64, settings.min_side), settings.max_side)
        sample = sample_input(info.in_channels, shape or (side, side), info.data_range)
        # Never below the smallest input the network itself takes (its pooling and strides need it).
        low = min(max(settings.min_side, info.min_input_size), settings.max_side)
        bounds = None if shape is not None else (low, settings.max_side)
        quantized = None
        if precision == "int8":
            from sr_export.runtimes.executorch.int8 import quantize_module

            quantized = quantize_module(module, sample, bounds, settings, calibration, info)
            module = quantized.module
        lowered = lower_module(module, sample, bounds)
        warning = lowered.ops.warning()
        if warning:
            warnings.warn(f"{info.name} x{info.scale}: {warning}", SrExportWarning, stacklevel=2)
        if shape is not None:
            dims: tuple[int | str, ...] = (1, info.in_channels, *shape)
        else:
            dims = (1, info.in_channels, dynamic_dim("height", *bounds), dynamic_dim("width", *bounds))
        notes = (*(f"rewrite applied: {entry}" for entry in applied), lowered.ops.summary())
        if quantized is not None:
            notes += (quantized.summary(),)
        metadata = ArtifactMetadata.for_model(
            model, format=PTE.name, backend=self.name, precision=precision, input_shape=dims,
            exporter="torch.export + executorch (xnnpack)" + (" + pt2e" if quantized else ""),
            notes=(*model.notes, *notes),
            quantization=quantized.details() if quantized else {},
        )
        path = Path(output)
        if path.suffix.lower() != ".pte":
            recipe = quantized.recipe if quantized is not None else None
            path = path / default_filename(info.name, info.scale, shape, precision, recipe)
        written = write_program(lowered.buffer, metadata, path)
        details = {"ops": lowered.ops.to_dict(), "rewrites": list(applied), "notes": list(notes)}
        return Artifact(written.path, written.metadata, details)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        """The program's runner; inputs larger than a dynamic program's bounds run in tiles of its largest size
        (smaller ones are refused in one line)."""
        from sr_export.runtimes.executorch.runner import ExecuTorchRunner, with_tiles_beyond_bounds

        self.require_packages()
        return with_tiles_beyond_bounds(ExecuTorchRunner(artifact, threads))

    def describe(self) -> dict[str, str]:
        from sr_export.runtimes.executorch.device import _version

        return {"runtime": f"ExecuTorch {_version()} (XNNPACK)", "device": f"CPU ({platform.machine()})"}

    def device_job(self, artifact: Artifact, options: Any) -> dict[str, Any]:
        from sr_export.runtimes.executorch.runner import bounds_of

        smallest, largest = bounds_of(artifact.metadata.input_shape)
        return {"smallest": list(smallest) if smallest else None, "largest": list(largest) if largest else None}
