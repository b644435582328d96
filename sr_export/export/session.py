"""ONNX Runtime on the CPU: how every ONNX graph sr-export makes is run on this machine.

Export proves graphs in it, quantisation calibrates and scores with it, and the
``onnxruntime`` runtime runs artifacts with it: one session loader for all.
(The device runner that sr-bench copies to boards carries its own, because it
must not need sr-export there.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cpu_session(model: str | Path | bytes, threads: int | None = None, *, optimize: bool = True,
                optimized_model_path: Path | None = None) -> Any:
    """An ONNX Runtime CPU session that keeps ORT's own log lines off the user's terminal.

    ``model`` is a file path or a serialised ModelProto; ``optimize`` False keeps
    the graph as written (for reading its intermediate tensors); ``optimized_model_path``
    saves the graph ORT actually runs (its fused kernels) there. Raises whatever ORT raises.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else level.ORT_DISABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # ORT prints kernel failures to stderr before raising; the raised error is reported instead.
    options.log_severity_level = 4
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
