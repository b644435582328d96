"""Core ML: ML Programs (``.mlpackage``) converted from PyTorch with coremltools.

Modules: :mod:`.sizes` (the sizes a program takes), :mod:`.options`,
:mod:`.convert` (conversion), :mod:`.package` (writing), :mod:`.runners`
(Core ML's predict on macOS, :mod:`.reference`'s numpy executor elsewhere),
:mod:`.quiet` (coremltools' output kept off the terminal).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.formats import MLPACKAGE
from sr_export.core.sizes import Size
from sr_export.runtimes.base import Runner, Runtime
from sr_export.runtimes.coreml.options import CoreMLRuntimeOptions

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet


class CoreMLRuntime(Runtime):
    name: ClassVar[str] = "coreml"
    label: ClassVar[str] = "Core ML"
    description: ClassVar[str] = "Core ML ML Program (predict on macOS; numpy reference executor elsewhere)"
    consumes: ClassVar[str] = "pytorch"
    reads: ClassVar[tuple[str, ...]] = (MLPACKAGE.name,)
    writes: ClassVar[tuple[str, ...]] = (MLPACKAGE.name,)
    precisions: ClassVar[tuple[str, ...]] = ("fp16", "fp32")
    extra: ClassVar[str | None] = "coreml"
    packages: ClassVar[tuple[str, ...]] = ("coremltools",)
    options: ClassVar[type] = CoreMLRuntimeOptions
    dataset_check: ClassVar[bool] = False  # the numpy reference executor is too slow for whole images
    # No device session: Core ML runs on Apple devices, where sr-bench does not copy a Python runner.

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp16", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        raise SrExportError(
            "coremltools no longer converts ONNX; Core ML programs are converted from the PyTorch model "
            "(sr-export coreml --model ...)"
        )

    def from_model(self, model: LoadedModel, output: Path, *, precision: str = "fp16", shape: Size | None = None,
                   options: Any = None, calibration: CalibrationSet | None = None) -> Artifact:
        """Convert and write ``model``; ``output`` is a folder or a ``.mlpackage`` path."""
        from sr_export.runtimes.coreml.convert import convert_model
        from sr_export.runtimes.coreml.options import CoreMLOptions
        from sr_export.runtimes.coreml.package import default_filename, package_size, write_package

        self.check_precision(precision)
        settings = self.parse_options(options)
        coreml_options = CoreMLOptions(precision=precision, deployment_target=settings.target(),
                                       sizes=settings.input_sizes(shape), int8_weights=settings.int8_weights,
                                       rewrite=settings.rewrite, route=settings.route, built_for=settings.for_runtime)
        converted = convert_model(model, coreml_options)
        path = Path(output)
        if path.suffix.lower() != ".mlpackage":
            path = path / default_filename(model, precision, settings.int8_weights)
        written = write_package(converted, path)
        details = {"route": converted.route, "convert_seconds": round(converted.seconds, 2),
                   "ops": converted.op_counts, "size_bytes": package_size(written.path), "notes": list(converted.notes)}
        return Artifact(written.path, written.metadata, details)

    def load(self, artifact: Artifact, *, threads: int | None = None, reference: bool | None = None) -> Runner:
        from sr_export.runtimes.coreml.runners import PredictRunner, ReferenceRunner, can_predict, with_enumerated_tiles

        use_reference = not can_predict() if reference is None else reference
        return with_enumerated_tiles(ReferenceRunner(artifact) if use_reference else PredictRunner(artifact))

    def check_sizes(self, artifact: Artifact) -> tuple[Size, ...]:
        """The program's own sizes (its smallest and an odd one above for ranges): numpy execution is slow."""
        from sr_export.runtimes.coreml.reference import load_spec
        from sr_export.runtimes.coreml.sizes import program_sizes

        return program_sizes(load_spec(artifact.path)).check_sizes()

    def file_requirements(self, path: Path) -> dict[str, Any]:
        from sr_export.runtimes.coreml.reference import load_spec
        from sr_export.runtimes.coreml.requirements import program_requirements

        return program_requirements(load_spec(Path(path)))

    def describe(self) -> dict[str, str]:
        from sr_export.runtimes.coreml.quiet import import_coremltools
        from sr_export.runtimes.coreml.runners import can_predict

        ct = import_coremltools()
        if can_predict():
            return {"runtime": f"Core ML (coremltools {ct.__version__})", "device": f"macOS {platform.mac_ver()[0]}"}
        return {"runtime": f"sr-export Core ML reference executor (numpy; coremltools {ct.__version__} for the spec)",
                "device": f"CPU ({platform.machine()}); Core ML predict needs macOS"}
