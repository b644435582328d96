"""onnxsim, trusted only after it is shown not to change the outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from sr_export.core.errors import first_line
from sr_export.data.parity_inputs import ParityInput

# Outputs of the simplified graph must match the traced one this closely
# (relative to the data range): simplification only folds constants and
# fuses, so anything larger means a bug in the rewrite.
SIMPLIFY_TOLERANCE = 1e-5


def simplify_checked(
    proto: onnx.ModelProto, inputs: Sequence[ParityInput], data_range: float
) -> tuple[onnx.ModelProto, bool, str | None]:
    """Return (graph to keep, whether it is the simplified one, a note for the user)."""
    import onnxsim

    from sr_export.export.exporters import quiet

    try:
        with quiet():
            simplified, _ = onnxsim.simplify(proto, check_n=0)
    except Exception as exc:  # onnxsim raises anything; the unsimplified graph is still good
        return proto, False, f"onnxsim failed ({first_line(exc)}); kept the unsimplified graph"
    error = max_output_difference(proto, simplified, inputs)
    if error is None:
        return proto, False, "onnxsim produced a graph ONNX Runtime cannot run; kept the unsimplified graph"
    if error > SIMPLIFY_TOLERANCE * data_range:
        return proto, False, f"onnxsim changed the outputs (max |diff| {error:.3g}); kept the unsimplified graph"
    return simplified, True, None


def max_output_difference(
    first: onnx.ModelProto, second: onnx.ModelProto, inputs: Sequence[ParityInput]
) -> float | None:
    """Largest absolute output difference between two graphs on ``inputs``; None if one cannot run."""
    from sr_export.export.session import cpu_session

    worst = 0.0
    try:
        sessions = [cpu_session(p.SerializeToString()) for p in (first, second)]
        for case in inputs:
            outputs = [s.run(None, {s.get_inputs()[0].name: case.batch})[0] for s in sessions]
            if outputs[0].shape != outputs[1].shape:
                return float("inf")
            worst = max(worst, float(np.max(np.abs(outputs[0] - outputs[1]))))
    except Exception:  # a graph ORT cannot load or run
        return None
    return worst
