"""TFLite on a device: the session sr-bench's device runner times there, and the I/O (de)quantisation
every TFLite runner uses.

Copied next to the device runner and loaded by it, so it imports nothing but
the standard library, numpy and the interpreter (``ai_edge_litert``, or
``tflite_runtime`` on boards that only have that). The in-process runner
(:mod:`sr_export.runtimes.tflite.runner`) quantises inputs and dequantises
outputs with the same two functions, so an INT8 file with integer I/O is fed
the same way here and there.
"""

from __future__ import annotations

import sys

import numpy as np


def quantize_for(values, details):
    """Float values as an input tensor takes them: unchanged for float, q = round(x / scale) + zero_point else."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(values, dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    quantized = np.rint(values.astype(np.float64) / scale) + zero_point
    return np.ascontiguousarray(np.clip(quantized, limits.min, limits.max).astype(dtype))


def dequantize_from(values, details):
    """An output tensor as float32: (q - zero_point) * scale for integer outputs (a copy either way)."""
    if np.dtype(details["dtype"]).kind == "f":
        return np.array(values, np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def interpreter_module():
    """(the Interpreter class, the module's name): ai_edge_litert, else tflite_runtime."""
    try:
        from ai_edge_litert import interpreter as module

        return module, "ai_edge_litert"
    except ImportError:
        from tflite_runtime import interpreter as module  # boards with only the old runtime

        return module, "tflite_runtime"


class LiteRtSession:
    """A fixed-size TFLite file with XNNPACK (LiteRT's built-in kernels where XNNPACK refuses the graph)."""

    def __init__(self, path, threads=None, layout="NHWC", **_unused):
        try:
            module, package = interpreter_module()
        except ImportError as exc:
            raise RuntimeError(f"neither ai_edge_litert nor tflite_runtime is installed for {sys.executable} "
                               "on the device") from exc
        self.delegate = "xnnpack"
        try:
            self.interpreter = module.Interpreter(model_path=path, num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception:  # noqa: BLE001 - XNNPACK refuses some integer graphs; the built-in kernels take them
            self.delegate = "builtin"
            self.interpreter = module.Interpreter(
                model_path=path, num_threads=threads or None,
                experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.nhwc = str(layout).upper() == "NHWC"
        self.shape = tuple(int(v) for v in self.input["shape"])
        self.versions = {"runtime": f"{package} {getattr(sys.modules.get(package), '__version__', '')}".strip(),
                         "delegate": self.delegate, "io": np.dtype(self.input["dtype"]).name}

    def prepare(self, height, width):
        size = self.shape[1:3] if self.nhwc else self.shape[2:4]
        if tuple(size) != (height, width):
            raise RuntimeError(f"the TFLite file takes {size[0]}x{size[1]} only, not {height}x{width} "
                               "(TFLite files have one fixed size: build one per size)")

    def infer(self, batch):
        self.interpreter.set_tensor(self.input["index"], quantize_for(batch, self.input))
        self.interpreter.invoke()
        return dequantize_from(self.interpreter.get_tensor(self.output["index"]), self.output)
