"""onnxsim is trusted only when the simplified graph computes the same outputs."""

from __future__ import annotations

import onnx

from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.export.onnx import ExportOptions, export_onnx
from sr_export.export.simplify import max_output_difference, simplify_checked
from sr_export.models.loader import ModelRequest, load_model


def test_an_unchanged_graph_is_kept_simplified() -> None:
    model = load_model(ModelRequest("imdn", scale=2))
    raw = export_onnx(model, ExportOptions(simplify=False, exporter="legacy")).proto
    inputs = builtin_parity_inputs(model.info, [(32, 40), (45, 71)], per_size=1)
    simplified, used, note = simplify_checked(raw, inputs, model.info.data_range)
    assert used and note is None
    assert max_output_difference(raw, simplified, inputs) < 1e-6


def test_a_graph_that_computes_something_else_is_detected() -> None:
    model = load_model(ModelRequest("imdn", scale=2))
    raw = export_onnx(model, ExportOptions(simplify=False, exporter="legacy")).proto
    inputs = builtin_parity_inputs(model.info, [(32, 40)], per_size=1)
    changed = onnx.ModelProto()
    changed.CopyFrom(raw)
    weight = next(t for t in changed.graph.initializer if len(t.dims) == 4)
    values = onnx.numpy_helper.to_array(weight) * 1.01
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    difference = max_output_difference(raw, changed, inputs)
    assert difference is not None and difference > 1e-4
