"""Widening convs for ONNX Runtime's integer kernels: multiples of 4 channels, the same output, and faster.

ONNX Runtime's u8s8 conv has a fast path only for channel counts that are
multiples of 4; E-RFDN's 50 and 25 channels missed it. The rewrite adds
all-zero filters, and readers ignore them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sr_export.quantize.channel_padding import FAST_MULTIPLE, pad_channels
from sr_export.quantize.onnxruntime_kernels import output_change
from sr_export.quantize.qdq import load_float_proto
from sr_export.quantize.qdq_graph import quantized_proto
from sr_export.quantize.recipes import load_recipe


def _conv_channels(proto: onnx.ModelProto) -> dict[str, tuple[int, int]]:
    """Conv name -> (input channels, output channels), read off its weight (through a DequantizeLinear)."""
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producers = {out: n for n in proto.graph.node for out in n.output}
    result = {}
    for node in proto.graph.node:
        if node.op_type == "Conv":
            weight = node.input[1]
            weight = producers[weight].input[0] if weight in producers else weight
            result[node.name] = (inits[weight].shape[1], inits[weight].shape[0])
    return result


def _qlinear_convs(proto: onnx.ModelProto, tmp_path: Path) -> int:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sum(n.op_type == "QLinearConv" for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node)


@pytest.fixture(scope="module")
def all_integer_erfdn(erfdn_float, erfdn_statistics, tiny_recipe_path: Path) -> onnx.ModelProto:
    recipe = replace(load_recipe(tiny_recipe_path), sr_aware=False)
    return quantized_proto(load_float_proto(erfdn_float), erfdn_statistics, recipe)


def test_every_erfdn_conv_but_the_image_reader_gets_multiples_of_4_channels_and_the_same_integer_output(
        all_integer_erfdn, tmp_path: Path) -> None:
    widened, padding = pad_channels(all_integer_erfdn)
    before, after = _conv_channels(all_integer_erfdn), _conv_channels(widened)
    assert set(padding.widened.values()) == {(25, 28), (50, 52)}
    assert {name for name, (_, out) in before.items() if out % FAST_MULTIPLE} == set(padding.widened)
    for name, (inputs, outputs) in after.items():
        assert outputs % FAST_MULTIPLE == 0, name
        assert inputs % FAST_MULTIPLE == 0 or inputs == before[name][0] == 3, name  # the RGB input stays RGB
    # Integer kernels add only zeros for the pad channels: bit-identical, not merely close.
    batch = np.random.default_rng(0).random((1, 3, 40, 36), dtype=np.float32)
    assert output_change(all_integer_erfdn, widened, batch) == 0.0
    # And ONNX Runtime still fuses every conv into an integer kernel (the pad bias scale is input x weight scale).
    assert _qlinear_convs(widened, tmp_path) == _qlinear_convs(all_integer_erfdn, tmp_path) == 64


def _conv(name: str, source: str, channels_in: int, channels_out: int, seed: int) -> tuple[onnx.NodeProto, list]:
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((channels_out, channels_in, 3, 3)).astype(np.float32),
                                     f"{name}.w")
    bias = numpy_helper.from_array(rng.standard_normal(channels_out).astype(np.float32), f"{name}.b")
    node = helper.make_node("Conv", [source, weight.name, bias.name], [name], name=name, pads=[1, 1, 1, 1])
    return node, [weight, bias]


def _graph(nodes_and_inits: list, extra: list, output: str, channels_out: int) -> onnx.ModelProto:
    nodes = [n for n, _ in nodes_and_inits] + extra
    inits = [i for _, pair in nodes_and_inits for i in pair]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, channels_out, 16, 16])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_concatenated_widened_tensors_are_read_through_their_interleaved_layouts() -> None:
    proto = _graph([_conv("a", "x", 4, 5, 1), _conv("b", "x", 4, 5, 2), _conv("c", "cat", 10, 8, 3)],
                   [helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
                    helper.make_node("Relu", ["c"], ["y"])], "y", 8)
    widened, padding = pad_channels(proto)
    assert dict(padding.widened) == {"a": (5, 8), "b": (5, 8)}
    assert _conv_channels(widened)["c"] == (16, 8)
    batch = np.random.default_rng(0).random((1, 4, 16, 16), dtype=np.float32)
    assert output_change(proto, widened, batch) < 1e-4


@pytest.mark.parametrize("reader, why", [
    (helper.make_node("ReduceMean", ["a"], ["y"], axes=[1], keepdims=1), "ReduceMean"),
    (helper.make_node("Relu", ["a"], ["y"]), "graph output"),
])
def test_a_conv_whose_pad_channels_would_reach_a_channel_mix_or_the_output_is_left_as_it_was(
        reader: onnx.NodeProto, why: str) -> None:
    proto = _graph([_conv("a", "x", 4, 5, 1)], [reader], "y", 1 if why == "ReduceMean" else 5)
    widened, padding = pad_channels(proto)
    assert padding.widened == {} and why in padding.kept["a"]
    assert _conv_channels(widened)["a"] == (4, 5)
