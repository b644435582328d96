"""Running a TFLite file: the LiteRT interpreter with XNNPACK, integer I/O quantised with the tensors' own parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.runtimes.tflite.interpreter import open_interpreter


class TfliteRunner:
    """One fixed-size TFLite model on the CPU, XNNPACK on (the interpreter's default delegate).

    Files XNNPACK refuses to prepare (it takes some integer graphs it then
    cannot build, e.g. a requantisation scale beyond its range) run on LiteRT's
    built-in kernels instead; ``delegate`` and the runner's name say which.
    Integer I/O is fed and read with the tensors' own scale and zero point.
    """

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        self.delegate, self.fallback_reason = "xnnpack", ""
        try:
            self._interpreter = open_interpreter(artifact.path, threads, xnnpack=True)
        except Exception as exc:
            self.delegate, self.fallback_reason = "builtin", first_line(exc)
            try:
                self._interpreter = open_interpreter(artifact.path, threads, xnnpack=False)
            except Exception as retry:
                raise SrExportError(f"LiteRT cannot load {artifact.path}: {first_line(retry)}") from retry
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise SrExportError(f"{artifact.path} has {len(inputs)} inputs and {len(outputs)} outputs; an SR model has one each")
        self._input, self._output = inputs[0], outputs[0]
        self.channels_last = artifact.metadata.layout.upper() == "NHWC"
        self.threads = threads
        meta = artifact.metadata
        io = np.dtype(self._input["dtype"]).name
        precision = meta.precision if meta.precision != "int8" else f"int8 {meta.quantization.get('scheme', '')}".strip()
        self.name = f"tflite-{self.delegate} {precision}" + (f" ({io} I/O)" if io != "float32" else "")

    @property
    def io_details(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The interpreter's own input and output details (dtype, shape, quantization)."""
        return dict(self._input), dict(self._output)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        expected = tuple(int(d) for d in self._input["shape"])
        outputs = []
        for sample in np.asarray(batch, np.float32):
            fed = sample.transpose(1, 2, 0)[None] if self.channels_last else sample[None]
            if fed.shape != expected:
                shown = "x".join(map(str, batch.shape))
                raise SrExportError(
                    f"input {shown} does not fit the TFLite model's {'x'.join(map(str, expected))} "
                    f"({'NHWC' if self.channels_last else 'NCHW'}); open it with sr_export.runtimes.open_runner, which tiles"
                )
            try:
                self._interpreter.set_tensor(self._input["index"], quantize_for(fed, self._input))
                self._interpreter.invoke()
                out = dequantize_from(self._interpreter.get_tensor(self._output["index"]), self._output)
            except Exception as exc:
                raise StageFailed("check", f"LiteRT failed on a {'x'.join(map(str, fed.shape))} input: {first_line(exc)}") from exc
            outputs.append(out.transpose(0, 3, 1, 2) if self.channels_last else out)
        return np.concatenate(outputs, axis=0)


def quantize_for(values: np.ndarray, details: Mapping[str, Any]) -> np.ndarray:
    """Float values as an input tensor takes them: unchanged for float, q = round(x / scale) + zero_point else."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(values, dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    quantized = np.rint(values.astype(np.float64) / scale) + zero_point
    return np.ascontiguousarray(np.clip(quantized, limits.min, limits.max).astype(dtype))


def dequantize_from(values: np.ndarray, details: Mapping[str, Any]) -> np.ndarray:
    """An output tensor as float32: (q - zero_point) * scale for integer outputs (a copy either way)."""
    if np.dtype(details["dtype"]).kind == "f":
        return np.array(values, np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
