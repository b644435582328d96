"""Spatial means as GlobalAveragePool: IMDN's channel attention, the same output, and nothing else touched."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sr_export.quantize.onnxruntime_kernels import output_change
from sr_export.quantize.spatial_means import spatial_means_as_pooling


def _means(*reductions: tuple[list[int], int]) -> onnx.ModelProto:
    nodes, inits, outputs = [], [], []
    for index, (axes, keepdims) in enumerate(reductions):
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), f"axes{index}"))
        nodes.append(helper.make_node("ReduceMean", ["x", f"axes{index}"], [f"y{index}"], keepdims=keepdims))
        outputs.append(helper.make_tensor_value_info(f"y{index}", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 9, 7])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_only_means_over_height_and_width_that_keep_dims_become_pooling() -> None:
    proto = _means(([2, 3], 1), ([-1, -2], 1), ([1], 1), ([2, 3], 0))
    pooled, count = spatial_means_as_pooling(proto)
    assert count == 2
    assert [n.op_type for n in pooled.graph.node] == ["GlobalAveragePool", "GlobalAveragePool", "ReduceMean",
                                                      "ReduceMean"]
    batch = np.random.default_rng(0).random((1, 6, 9, 7), dtype=np.float32)
    assert output_change(proto, pooled, batch) < 1e-6


def test_imdn_attention_means_are_pooled_with_the_same_output(official_model, tmp_path) -> None:
    from sr_export.export.onnx import ExportOptions, save_export
    from sr_export.quantize.qdq import load_float_proto

    proto = load_float_proto(save_export(official_model("imdn", 2), ExportOptions(exporter="legacy"), tmp_path))
    pooled, count = spatial_means_as_pooling(proto)
    assert count == 12  # mean and variance in each of the 6 blocks' contrast attention
    batch = np.random.default_rng(0).random((1, 3, 20, 24), dtype=np.float32)
    assert output_change(proto, pooled, batch) < 1e-4
