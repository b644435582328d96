"""ONNX Runtime on a device: the session sr-bench's device runner times there.

Copied next to the device runner and loaded by it, so it imports nothing but
the standard library, numpy and onnxruntime (sr-export is not installed on
the device). The harness calls ``prepare(height, width)`` before each size and
``infer(batch)`` with float32 NCHW batches in the model's data range.
"""

from __future__ import annotations

import sys


class OnnxRuntimeSession:
    nhwc = False

    def __init__(self, path, threads=None, **_unused):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeError(f"onnxruntime is not installed for {sys.executable} on the device ({exc})") from exc
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.versions = {"runtime": f"onnxruntime {ort.__version__}", "providers": "CPUExecutionProvider",
                         "threads": str(threads or "all")}

    def prepare(self, height, width):
        return None

    def infer(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]
