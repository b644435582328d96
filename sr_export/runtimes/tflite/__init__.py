"""TFLite (LiteRT): converted straight from PyTorch with litert-torch, run with the LiteRT interpreter.

Every artifact has one fixed LR size; other sizes run tiled
(:func:`sr_export.runtimes.open_runner`). Precisions: fp32, fp16 (float16
weights, float compute) and int8 (static quantisation calibrated by a recipe,
integer or float I/O; :mod:`sr_export.runtimes.tflite.int8`). The runner feeds
integer inputs and reads integer outputs with the tensors' own scale and zero
point, so every tool takes float batches whatever the file's I/O type.

Modules: :mod:`.convert` (conversion), :mod:`.int8`, :mod:`.calibration` and
:mod:`.graph` (INT8), :mod:`.diagnose` (converter failures), :mod:`.quiet`
(output silencing), :mod:`.interpreter` and :mod:`.runner` (running).
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
    from sr_export.runtimes.tflite.runner import TfliteRunner


class TfliteTarget(Target):
    name: ClassVar[str] = "tflite"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        # A TFLite file is already built (sr-bench hands every artifact to its profile's target).
        if onnx_artifact.metadata.format == "tflite":
            return onnx_artifact
        raise SrExportError(
            "the tflite target converts from PyTorch, not from ONNX files; use `sr-export tflite --model ...`"
        )

    def from_model(
        self,
        model: LoadedModel,
        output: Path,
        *,
        precision: str = "fp32",
        shape: tuple[int, int] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Convert at ``shape`` (default: the tflite profile's first size) into the folder ``output``.

        ``options``: ``layout`` ("nhwc"/"nchw") and ``rewrite`` (bool); for
        int8, ``calibration`` (recipe name or path, default "default"),
        ``int8_io`` and ``int8_scheme`` (see :mod:`sr_export.runtimes.tflite.int8`).
        """
        settings = dict(options or {})
        int8 = None
        if precision == "int8":
            from sr_export.quantize.recipes import load_recipe
            from sr_export.runtimes.tflite.int8 import DEFAULT_IO, TfliteInt8Options

            int8 = TfliteInt8Options(load_recipe(str(settings.get("calibration", "default"))),
                                     io=str(settings.get("int8_io", DEFAULT_IO)), scheme=settings.get("int8_scheme"))
        from sr_export.runtimes.tflite.convert import (
            TfliteOptions,
            convert_tflite,
            default_filename,
            default_shape,
            write_tflite,
        )

        tflite_options = TfliteOptions(
            shape=shape or default_shape(),
            layout=str(settings.get("layout", "nhwc")).lower(),
            precision=precision,
            rewrite=bool(settings.get("rewrite", True)),
            int8=int8,
        )
        converted = convert_tflite(model, tflite_options)
        return write_tflite(converted, Path(output) / default_filename(model, tflite_options))

    def load(self, artifact: Artifact, *, threads: int | None = None) -> TfliteRunner:
        from sr_export.runtimes.tflite.runner import TfliteRunner

        return TfliteRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        try:
            from ai_edge_litert import __version__ as version

            runtime = f"ai-edge-litert {version}"
        except ImportError:
            import tflite_runtime

            runtime = f"tflite-runtime {tflite_runtime.__version__}"
        return {"runtime": f"{runtime} (XNNPACK)", "device": f"CPU ({platform.machine()})"}
