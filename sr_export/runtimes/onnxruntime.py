"""ONNX Runtime on the CPU: the embedded default target and every other target's reference."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, runtime_error_line
from sr_export.export.session import cpu_session
from sr_export.runtimes.base import Target


class OnnxRuntimeRunner:
    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        try:
            self._session = cpu_session(artifact.path, threads)
        except Exception as exc:
            raise SrExportError(f"ONNX Runtime cannot load {artifact.path}: {runtime_error_line(exc)}") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise SrExportError(f"{artifact.path} has {len(inputs)} inputs; an SR model takes one image tensor")
        self._input_name = inputs[0].name
        self._input_shape: list[Any] = list(inputs[0].shape)
        self._output_name = outputs[0].name
        self.name = f"onnxruntime-cpu {artifact.metadata.precision}"
        self.threads = threads

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._check_shape(batch.shape)
        try:
            (output,) = self._session.run([self._output_name], {self._input_name: np.ascontiguousarray(batch, np.float32)})
        except Exception as exc:
            raise StageFailed(
                "check", f"ONNX Runtime failed on a {_shape(batch.shape)} input: {runtime_error_line(exc)}"
            ) from exc
        return output

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        expected = self._input_shape
        fits = len(shape) == len(expected) and all(
            not isinstance(e, int) or e <= 0 or e == s for e, s in zip(expected, shape)
        )
        if not fits:
            wanted = "x".join(str(e) if isinstance(e, int) else "?" for e in expected)
            raise SrExportError(
                f"input {_shape(shape)} does not fit the model's input {wanted}; "
                "feed that size (or open the artifact with sr_export.runtimes.open_runner, which tiles)"
            )


class OnnxRuntimeTarget(Target):
    name: ClassVar[str] = "onnxruntime"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        # ONNX Runtime runs the exported FP32 file as it is; INT8 is a static QDQ graph
        # calibrated with the profile's recipe (options: calibration, keep_float).
        if precision not in self.precisions:
            raise SrExportError(f"the onnxruntime target runs {', '.join(self.precisions)}, not {precision}")
        if precision == "fp32":
            return onnx_artifact
        from sr_export.quantize.qdq import quantize_onnx
        from sr_export.quantize.recipes import load_recipe

        settings = dict(options or {})
        recipe = load_recipe(str(settings.get("calibration", "default")))
        folder = Path(output) if output is not None else onnx_artifact.path.parent
        return quantize_onnx(onnx_artifact, recipe, flavour="onnxruntime",
                             keep_float=tuple(settings.get("keep_float", ())), output=folder)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> OnnxRuntimeRunner:
        return OnnxRuntimeRunner(artifact, threads)

    def describe(self) -> dict[str, str]:
        import onnxruntime as ort

        return {"runtime": f"onnxruntime {ort.__version__}", "device": f"CPU ({platform.machine()})"}


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))

