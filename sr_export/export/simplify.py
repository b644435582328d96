"""onnxsim, trusted only after it is shown not to change the outputs."""

from __future__ import annotations

import numpy as np
import onnx

from sr_export.models.loader import ModelInfo

# Outputs of the simplified graph must match the traced one this closely
# (relative to the data range): simplification only folds constants and
# fuses, so anything larger means a bug in the rewrite.
SIMPLIFY_TOLERANCE = 1e-5


def simplify_checked(proto: onnx.ModelProto, info: ModelInfo) -> tuple[onnx.ModelProto, bool, str | None]:
    """Return (graph to keep, whether it is the simplified one, a note for the user)."""
    import onnxsim

    try:
        simplified, _ = onnxsim.simplify(proto, check_n=0)
    except Exception as exc:
        return proto, False, f"onnxsim failed ({type(exc).__name__}: {exc}); kept the unsimplified graph"
    error = max_output_difference(proto, simplified, info)
    if error is None:
        return proto, False, "onnxsim produced a graph ONNX Runtime cannot run; kept the unsimplified graph"
    if error > SIMPLIFY_TOLERANCE * info.data_range:
        return proto, False, f"onnxsim changed the outputs (max |diff| {error:.3g}); kept the unsimplified graph"
    return simplified, True, None


def max_output_difference(first: onnx.ModelProto, second: onnx.ModelProto, info: ModelInfo) -> float | None:
    """Largest absolute output difference between two graphs on real image inputs."""
    import onnxruntime as ort

    from sr_export.checks.inputs import builtin_parity_inputs

    try:
        sessions = [
            ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"]) for p in (first, second)
        ]
    except Exception:
        return None
    static = _static_hw(first)
    worst = 0.0
    for case in builtin_parity_inputs(info, sizes=[static] if static else None, per_size=1):
        outputs = [s.run(None, {s.get_inputs()[0].name: case.batch})[0] for s in sessions]
        if outputs[0].shape != outputs[1].shape:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(outputs[0] - outputs[1]))))
    return worst


def _static_hw(proto: onnx.ModelProto) -> tuple[int, int] | None:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(dims) == 4 and all(d.dim_value > 0 for d in dims[2:]):
        return dims[2].dim_value, dims[3].dim_value
    return None
