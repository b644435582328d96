"""The lowest IR version an ONNX graph allows, and the ONNX Runtime its metadata names."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from sr_export.export.onnx_versions import lower_ir_version, lowest_ir_version, requirements


def _graph(opset: int, *, initializer_type: int = TensorProto.FLOAT, domain: str = "") -> onnx.ModelProto:
    weight = helper.make_tensor("w", initializer_type, [1], [1.0] if initializer_type == TensorProto.FLOAT else [0])
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [weight])
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    if domain:
        imports.append(helper.make_opsetid(domain, 3))
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 10  # what onnx 1.16+ stamps
    return model


def test_an_opset_18_graph_needs_ir_8_whatever_onnx_stamped() -> None:
    model = _graph(18)
    assert lower_ir_version(model) == 8 and model.ir_version == 8
    onnx.checker.check_model(model)
    assert requirements(model) == {"runtime": "onnxruntime", "set_by": "IR version 8, opset 18",
                                   "min_runtime": "onnxruntime 1.15"}


def test_newer_opsets_and_types_keep_the_ir_version_they_need() -> None:
    assert lowest_ir_version(_graph(21)) == 10  # opset 21 came with IR 10
    assert lowest_ir_version(_graph(17, initializer_type=TensorProto.FLOAT8E4M3FN)) == 9  # float8: IR 9
    assert lowest_ir_version(_graph(18, domain="ai.onnx.ml")) == 8
    assert lowest_ir_version(_graph(999)) == 10  # an opset onnx does not know: left as it is
    assert requirements(_graph(21))["min_runtime"] == "onnxruntime 1.18"
    assert requirements(_graph(22))["min_runtime"].startswith("unknown")
