"""Running ONNX files in-process with ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, runtime_error_line
from sr_export.export.session import cpu_session
from sr_export.runtimes.base import Runner


class OnnxRuntimeRunner(Runner):
    def __init__(self, artifact: Artifact, threads: int | None = None, *, label: str = "onnxruntime-cpu") -> None:
        super().__init__()
        self.artifact = artifact
        self.threads = threads
        self.name = f"{label} {artifact.metadata.precision}"
        self.activate()

    def _activate(self) -> None:
        path = self.artifact.path
        try:
            self._session = cpu_session(path, self.threads)
        except Exception as exc:
            raise SrExportError(f"ONNX Runtime cannot load {path}: {runtime_error_line(exc)}") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise SrExportError(f"{path} has {len(inputs)} inputs; an SR model takes one image tensor")
        self._input_name = inputs[0].name
        self._input_shape: list[Any] = list(inputs[0].shape)
        self._output_name = outputs[0].name

    def _deactivate(self) -> None:
        del self._session

    def _infer(self, batch: np.ndarray) -> np.ndarray:
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
                "feed that size (or open the artifact with sr_export.runtimes.open.open_runner, which tiles)"
            )


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))

