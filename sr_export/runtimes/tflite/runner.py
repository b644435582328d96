"""Running a TFLite file: the LiteRT interpreter with XNNPACK, integer I/O quantised with the tensors' own parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.runtimes.base import Runner
from sr_export.runtimes.tflite.device import dequantize_from, quantize_for
from sr_export.runtimes.tflite.interpreter import open_interpreter


class TfliteRunner(Runner):
    """One fixed-size TFLite model on the CPU, XNNPACK on (the interpreter's default delegate).

    Files XNNPACK refuses to prepare (it takes some integer graphs it then
    cannot build, e.g. a requantisation scale beyond its range) run on LiteRT's
    built-in kernels instead; ``delegate`` and the runner's name say which.
    Integer I/O is fed and read with the tensors' own scale and zero point.
    """

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        super().__init__()
        self.artifact = artifact
        self.threads = threads
        self.channels_last = artifact.metadata.layout.upper() == "NHWC"
        self.activate()
        meta = artifact.metadata
        io = np.dtype(self._input["dtype"]).name
        precision = meta.precision if meta.precision != "int8" else f"int8 {meta.quantization.get('scheme', '')}".strip()
        self.name = f"tflite-{self.delegate} {precision}" + (f" ({io} I/O)" if io != "float32" else "")

    def _activate(self) -> None:
        path, threads = self.artifact.path, self.threads
        self.delegate, self.fallback_reason = "xnnpack", ""
        try:
            self._interpreter = open_interpreter(path, threads, xnnpack=True)
        except Exception as exc:
            self.delegate, self.fallback_reason = "builtin", first_line(exc)
            try:
                self._interpreter = open_interpreter(path, threads, xnnpack=False)
            except Exception as retry:
                raise SrExportError(f"LiteRT cannot load {path}: {first_line(retry)}") from retry
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise SrExportError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an SR model has one each")
        self._input, self._output = inputs[0], outputs[0]

    def _deactivate(self) -> None:
        del self._interpreter

    @property
    def io_details(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The interpreter's own input and output details (dtype, shape, quantization)."""
        return dict(self._input), dict(self._output)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        expected = tuple(int(d) for d in self._input["shape"])
        outputs = []
        for sample in np.asarray(batch, np.float32):
            fed = sample.transpose(1, 2, 0)[None] if self.channels_last else sample[None]
            if fed.shape != expected:
                shown = "x".join(map(str, batch.shape))
                raise SrExportError(
                    f"input {shown} does not fit the TFLite model's {'x'.join(map(str, expected))} "
                    f"({'NHWC' if self.channels_last else 'NCHW'}); open it with sr_export.runtimes.open.open_runner, which tiles"
                )
            try:
                self._interpreter.set_tensor(self._input["index"], quantize_for(fed, self._input))
                self._interpreter.invoke()
                out = dequantize_from(self._interpreter.get_tensor(self._output["index"]), self._output)
            except Exception as exc:
                raise StageFailed("check", f"LiteRT failed on a {'x'.join(map(str, fed.shape))} input: {first_line(exc)}") from exc
            outputs.append(out.transpose(0, 3, 1, 2) if self.channels_last else out)
        return np.concatenate(outputs, axis=0)
