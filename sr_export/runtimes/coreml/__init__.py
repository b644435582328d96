"""Core ML: ML Programs (``.mlpackage``) converted from PyTorch with coremltools.

Modules: :mod:`.sizes` (the sizes a program takes), :mod:`.options`,
:mod:`.convert` (conversion), :mod:`.package` (writing), :mod:`.runners`
(Core ML's predict on macOS, :mod:`.reference`'s numpy executor elsewhere),
:mod:`.quiet` (coremltools' output kept off the terminal).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.runtimes.base import Target

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel


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
        from sr_export.runtimes.coreml.convert import convert_model
        from sr_export.runtimes.coreml.options import DEFAULT_DEPLOYMENT_TARGET, CoreMLOptions
        from sr_export.runtimes.coreml.package import default_filename, write_package
        from sr_export.runtimes.coreml.sizes import InputSizes

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
        from sr_export.runtimes.coreml.runners import PredictRunner, ReferenceRunner, can_predict

        use_reference = not can_predict() if reference is None else reference
        return ReferenceRunner(artifact) if use_reference else PredictRunner(artifact)

    def describe(self) -> dict[str, str]:
        from sr_export.runtimes.coreml.quiet import import_coremltools
        from sr_export.runtimes.coreml.runners import can_predict

        ct = import_coremltools()
        if can_predict():
            return {"runtime": f"Core ML (coremltools {ct.__version__})", "device": f"macOS {platform.mac_ver()[0]}"}
        return {"runtime": f"sr-export Core ML reference executor (numpy; coremltools {ct.__version__} for the spec)",
                "device": f"CPU ({platform.machine()}); Core ML predict needs macOS"}
