"""The SR-sensitive layers: one structural analysis, read through an ONNX and a TFLite view.

The reference structure is a tiny SR network: a first conv, body convs, a
channel attention (pooling -> 1x1 conv -> sigmoid -> scale), a global
residual add, a last conv and a pixel shuffle. It is written three ways: as a
hand-built :class:`Dataflow`, as an ONNX graph made with ``onnx.helper`` and as
a PyTorch module converted to TFLite with litert-torch; all three must be
found alike.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import onnx
import pytest
from onnx import TensorProto, helper

from sr_export.quantize import sr_layers
from sr_export.quantize.graph import (
    ONNX_CONVENTIONS,
    first_convs,
    global_residual_adds,
    onnx_dataflow,
    shallow_feature_readers,
    sr_float_nodes,
    tail_nodes,
)
from sr_export.quantize.sr_layers import Conventions, Dataflow, Op

FEATURES = (1, 8, 8, 8)
PER_CHANNEL = (1, 8, 1, 1)
FIRST = "first conv (sees raw pixels)"
SHALLOW = "reads the shallow features"
RESIDUAL = "global residual add"


def _op(name: str, kind: str, inputs: tuple[str, ...], output: str, op_type: str | None = None) -> Op:
    return Op(name=name, type=op_type or kind.capitalize(), kind=kind, inputs=inputs, outputs=(output,))


def _sr_net(*, pad_shallow: bool = False) -> Dataflow:
    """The reference structure as a Dataflow (weights are constants ``w*``); optionally a Pad on the shallow features."""
    skip = "s_padded" if pad_shallow else "s"
    ops = [
        _op("head", "conv", ("x", "w_head"), "s", "Conv"),
        _op("body1", "conv", ("s", "w1"), "b1", "Conv"),
        _op("act", "other", ("b1",), "b1r", "Relu"),
        _op("body2", "conv", ("b1r", "w2"), "b2", "Conv"),
        _op("pool", "other", ("b2",), "m", "GlobalAveragePool"),
        _op("squeeze", "conv", ("m", "w3"), "a", "Conv"),
        _op("gate", "other", ("a",), "g", "Sigmoid"),
        _op("scale", "other", ("b2", "g"), "c", "Mul"),
        _op("fuse", "conv", ("c", "w4"), "f", "Conv"),
        *([_op("pad", "pass", ("s",), "s_padded", "Pad")] if pad_shallow else []),
        _op("join", "add", ("f", skip), "r", "Add"),
        _op("tail", "conv", ("r", "w5"), "t", "Conv"),
        _op("shuffle", "pass", ("t",), "y", "DepthToSpace"),
    ]
    shapes = {t: FEATURES for t in ("s", "s_padded", "b1", "b1r", "b2", "c", "f", "r")}
    shapes.update({t: PER_CHANNEL for t in ("m", "a", "g")})
    shapes.update({"t": (1, 12, 8, 8), "y": (1, 3, 16, 16)})
    return Dataflow(ops=tuple(ops), inputs=("x",), outputs=("y",),
                    constants=frozenset({"w_head", "w1", "w2", "w3", "w4", "w5"}), shapes=shapes)


def _names(graph: Dataflow, positions: list[int]) -> list[str]:
    return [graph.ops[p].name for p in positions]


# --- the analysis on a hand-built dataflow ------------------------------------------------------


def test_each_rule_finds_its_part_of_the_sr_network() -> None:
    graph = _sr_net()
    assert _names(graph, sr_layers.first_convs(graph)) == ["head"]
    assert _names(graph, sr_layers.shallow_readers(graph)) == ["body1", "join"]
    assert _names(graph, sr_layers.global_residual_adds(graph)) == ["join"]
    assert _names(graph, sr_layers.tail_ops(graph)) == ["tail", "shuffle"]
    assert _names(graph, sr_layers.statistic_ops(graph)) == ["pool", "squeeze", "gate"]


def test_a_conv_that_reads_only_the_inputs_shape_is_not_a_first_conv() -> None:
    # A dynamic export resizes an attention map to Shape(input) deep in the body (E-RFDN's ESA):
    # the conv after that Resize sees no pixel of the input.
    graph = _sr_net()
    body = list(graph.ops)
    at = next(i for i, op in enumerate(body) if op.name == "fuse")
    body[at:at] = [_op("size", "shape", ("x",), "hw", "Shape"),
                   _op("resize", "other", ("c", "hw"), "c_up", "Resize"),
                   _op("esa_conv", "conv", ("c_up", "w6"), "c2", "Conv")]
    graph = replace(graph, ops=tuple(body))
    assert _names(graph, sr_layers.first_convs(graph)) == ["head"]
    assert "esa_conv" not in sr_layers.sr_sensitive(graph, ONNX_CONVENTIONS)


def test_an_op_found_twice_keeps_the_first_reason_unless_a_convention_overrides() -> None:
    graph = _sr_net()
    first_wins = sr_layers.sr_sensitive(graph, Conventions())
    assert first_wins == {
        "head": FIRST, "body1": SHALLOW, "join": SHALLOW,
        "tail": "last conv (Conv)", "shuffle": "upsampler / output (DepthToSpace)",
        "pool": "per-channel statistic (GlobalAveragePool)", "squeeze": "per-channel statistic (Conv)",
        "gate": "per-channel statistic (Sigmoid)",
    }
    # The ONNX path lets the residual-add reason replace the shallow-reader one; the order stays that of finding.
    overridden = sr_layers.sr_sensitive(graph, ONNX_CONVENTIONS)
    assert overridden == {**first_wins, "join": RESIDUAL}
    assert list(overridden) == list(first_wins)


def test_the_residual_add_is_found_through_pass_through_ops_on_the_shallow_features() -> None:
    graph = _sr_net(pad_shallow=True)
    assert _names(graph, sr_layers.shallow_readers(graph)) == ["body1", "pad"]
    assert _names(graph, sr_layers.global_residual_adds(graph)) == ["join"]
    assert sr_layers.sr_sensitive(graph, Conventions())["join"] == RESIDUAL


def test_the_residual_add_comes_after_more_than_two_convs_and_the_latest_one_counts() -> None:
    early = Dataflow(
        ops=(
            _op("head", "conv", ("x",), "s"),
            _op("body", "conv", ("s",), "b"),
            _op("skip", "add", ("b", "s"), "r"),  # two convs before it: a block's short skip
            _op("tail", "conv", ("r",), "y"),
        ),
        inputs=("x",),
        outputs=("y",),
    )
    assert sr_layers.global_residual_adds(early) == []
    later = replace(early, ops=(*early.ops[:3], _op("body2", "conv", ("r",), "b2"), _op("join", "add", ("b2", "s"), "r2"),
                                _op("join2", "add", ("r2", "s"), "r3"), _op("tail", "conv", ("r3",), "y")))
    assert _names(later, sr_layers.global_residual_adds(later)) == ["join2"]


def test_the_tail_stops_at_convs_takes_trailing_ops_and_never_walks_into_constants() -> None:
    graph = Dataflow(
        ops=(
            _op("head", "conv", ("x",), "s"),
            _op("tail", "conv", ("s",), "t"),
            _op("shape", "other", (), "k", "Shape"),
            _op("reshape", "pass", ("t", "k"), "u", "Reshape"),
            _op("clamp", "other", ("u",), "y", "Clip"),
        ),
        inputs=("x",),
        outputs=("y",),
        constants=frozenset({"k"}),
    )
    assert _names(graph, sr_layers.tail_ops(graph)) == ["tail", "reshape", "clamp"]
    assert _names(graph, sr_layers.first_convs(graph)) == ["head"]


def test_ops_sharing_a_name_are_one_to_the_tail_walk_only_when_the_convention_says_so() -> None:
    # ONNX addresses nodes by name: a body node named like a tail node is taken with it.
    graph = Dataflow(
        ops=(_op("a", "conv", ("x",), "s"), _op("dup", "other", ("s",), "b"), _op("tail", "conv", ("b",), "t"),
             _op("dup", "pass", ("t",), "y")),
        inputs=("x",),
        outputs=("y",),
    )
    assert _names(graph, sr_layers.tail_ops(graph)) == ["tail", "dup"]
    assert _names(graph, sr_layers.tail_ops(graph, by_name=True)) == ["dup", "tail", "dup"]


def test_per_channel_statistics_need_a_known_shape_and_a_compute_op() -> None:
    graph = Dataflow(
        ops=(_op("mean", "other", ("x",), "m", "MEAN"), _op("q", "convert", ("m",), "mq", "QUANTIZE"),
             _op("unknown", "other", ("x",), "u", "MEAN"), _op("scalar", "other", ("x",), "z", "SUM")),
        inputs=("x",),
        outputs=("mq",),
        shapes={"m": (1, 1, 1, 8), "mq": (1, 1, 1, 8), "z": ()},
    )
    assert _names(graph, sr_layers.statistic_ops(graph)) == ["mean"]


def test_a_kind_table_refuses_an_op_type_in_two_sets() -> None:
    assert sr_layers.kind_table(conv={"Conv"}, add={"Add"}, pass_through={"Pad"}) == {
        "Conv": "conv", "Add": "add", "Pad": "pass"}
    with pytest.raises(ValueError, match="Pad is both pass and convert"):
        sr_layers.kind_table(conv=(), add=(), pass_through={"Pad"}, convert={"Pad"})


# --- the ONNX view ------------------------------------------------------------------------------


def _onnx_sr_net() -> onnx.GraphProto:
    """The reference structure as an ONNX graph (NCHW, 3 -> 8 channels, x2 pixel shuffle)."""
    weights = {"w_head": (8, 3, 3, 3), "w1": (8, 8, 3, 3), "w2": (8, 8, 3, 3), "w3": (8, 8, 1, 1),
               "w4": (8, 8, 3, 3), "w5": (12, 8, 3, 3)}
    initializers = [helper.make_tensor(name, TensorProto.FLOAT, dims, [0.0] * (dims[0] * dims[1] * dims[2] * dims[3]))
                    for name, dims in weights.items()]

    def conv(name: str, inputs: list[str], output: str, kernel: int = 3) -> onnx.NodeProto:
        pads = [kernel // 2] * 4
        return helper.make_node("Conv", inputs, [output], name=name, kernel_shape=[kernel, kernel], pads=pads)

    nodes = [
        conv("/head/Conv", ["x", "w_head"], "s"),
        conv("/body1/Conv", ["s", "w1"], "b1"),
        helper.make_node("Relu", ["b1"], ["b1r"], name="/act/Relu"),
        conv("/body2/Conv", ["b1r", "w2"], "b2"),
        helper.make_node("GlobalAveragePool", ["b2"], ["m"], name="/pool/GlobalAveragePool"),
        conv("/squeeze/Conv", ["m", "w3"], "a", kernel=1),
        helper.make_node("Sigmoid", ["a"], ["g"], name="/gate/Sigmoid"),
        helper.make_node("Mul", ["b2", "g"], ["c"], name="/Mul"),
        conv("/fuse/Conv", ["c", "w4"], "f"),
        helper.make_node("Add", ["f", "s"], ["r"], name="/Add"),
        conv("/tail/Conv", ["r", "w5"], "t"),
        helper.make_node("DepthToSpace", ["t"], ["y"], name="/shuffle/DepthToSpace", blocksize=2, mode="CRD"),
    ]
    graph = helper.make_graph(nodes, "tiny_sr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])], initializers)
    onnx.checker.check_graph(graph)
    return graph


def test_the_onnx_rules_find_the_sr_layers_of_a_real_onnx_graph() -> None:
    graph = _onnx_sr_net()
    assert sr_float_nodes(graph) == {
        "/head/Conv": FIRST,
        "/body1/Conv": SHALLOW,
        "/Add": RESIDUAL,  # ONNX: the residual-add reason replaces the shallow-reader one
        "/tail/Conv": "last conv (Conv)",
        "/shuffle/DepthToSpace": "upsampler / output (DepthToSpace)",
    }
    assert [n.name for n in first_convs(graph)] == ["/head/Conv"]
    assert [n.name for n in shallow_feature_readers(graph)] == ["/body1/Conv", "/Add"]
    assert [n.name for n in global_residual_adds(graph)] == ["/Add"]
    assert [n.name for n in tail_nodes(graph)] == ["/tail/Conv", "/shuffle/DepthToSpace"]


def test_the_onnx_view_normalises_op_types_and_knows_no_shapes() -> None:
    view = onnx_dataflow(_onnx_sr_net())
    kinds = {op.type: op.kind for op in view.ops}
    assert kinds["Conv"] == "conv" and kinds["Add"] == "add"
    assert kinds["DepthToSpace"] == "other"  # the ONNX path never followed it to the residual add
    assert view.inputs == ("x",) and view.outputs == ("y",) and "w_head" in view.constants
    assert view.shapes == {} and sr_layers.statistic_ops(view) == []


# --- the TFLite view (a converted file) ---------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_sr_net():
    """The reference structure as a PyTorch module converted with litert-torch (NHWC I/O): a TfliteGraph."""
    pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'sr-export[tflite]')")
    import litert_torch
    import torch
    from torch import nn

    from sr_export.runtimes.tflite.graph import TfliteGraph
    from sr_export.runtimes.tflite.quiet import quiet_litert

    class TinySr(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Conv2d(3, 8, 3, padding=1)
            self.body1 = nn.Conv2d(8, 8, 3, padding=1)
            self.body2 = nn.Conv2d(8, 8, 3, padding=1)
            self.squeeze = nn.Conv2d(8, 8, 1)
            self.fuse = nn.Conv2d(8, 8, 3, padding=1)
            self.tail = nn.Conv2d(8, 12, 3, padding=1)
            self.shuffle = nn.PixelShuffle(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shallow = self.head(x)
            body = self.body2(torch.relu(self.body1(shallow)))
            attention = torch.sigmoid(self.squeeze(body.mean(dim=(2, 3), keepdim=True)))
            return self.shuffle(self.tail(self.fuse(body * attention) + shallow))

    torch.manual_seed(0)
    module = litert_torch.to_channel_last_io(TinySr().eval(), args=[0], outputs=[0])
    with quiet_litert():
        flatbuffer = bytes(litert_torch.convert(module, (torch.rand(1, 8, 8, 3),)).model_content())
    return TfliteGraph.from_bytes(flatbuffer)


def _by_type(graph, ops) -> list[str]:
    return [graph.op_name(op) for op in ops]


def test_the_tflite_graph_finds_the_sr_layers_of_a_converted_file(tflite_sr_net) -> None:
    graph = tflite_sr_net
    convs = [op for op in graph.ops if graph.op_name(op) == "CONV_2D"]
    head, body1, squeeze, tail = convs[0], convs[1], convs[3], convs[5]
    (add,) = [op for op in graph.ops if graph.op_name(op) == "ADD"]
    assert graph.first_convs() == [head]
    assert graph.shallow_readers() == [body1, add]
    assert graph.global_residual_adds() == [add]
    assert graph.tail_ops()[0] is tail and set(_by_type(graph, graph.tail_ops()[1:])) <= {"RESHAPE", "TRANSPOSE"}
    assert _by_type(graph, graph.global_statistic_ops()) == ["MEAN", "CONV_2D", "LOGISTIC"]
    assert squeeze in graph.global_statistic_ops()
    reasons = graph.sr_sensitive_ops()
    assert reasons[graph.output_name(head)] == FIRST
    assert reasons[graph.output_name(add)] == SHALLOW  # TFLite: the first reason found stays
    assert reasons[graph.output_name(tail)] == "last conv (CONV_2D)"
    assert reasons[graph.output_name(graph.ops[-1])] == "upsampler / output (TRANSPOSE)"
    assert reasons[graph.output_name(squeeze)] == "per-channel statistic (CONV_2D)"


def test_the_tflite_view_is_what_the_methods_answer_from(tflite_sr_net) -> None:
    graph = tflite_sr_net
    view = graph.dataflow()
    assert [op.name for op in view.ops] == [graph.output_name(op) for op in graph.ops]
    assert view.inputs == (graph.input_index,) and view.outputs == (graph.output_index,)
    assert all(graph.is_constant(t) for t in view.constants) and view.constants
    assert graph.sr_sensitive_ops() == sr_layers.sr_sensitive(view, Conventions())


# --- one structure, two formats -----------------------------------------------------------------


def _reason_kinds(reasons) -> set[str]:
    """Reasons without the op type in brackets (ONNX says Conv where TFLite says CONV_2D)."""
    return {reason.split(" (")[0] for reason in reasons}


def _compute_ops_per_rule(view: Dataflow, found: list[sr_layers.Finding]) -> dict[str, Counter]:
    """Rule -> how many convs and adds it found (the data-movement ops of a pixel shuffle differ by converter)."""
    counts: dict[str, Counter] = {}
    for finding in found:
        kind = view.ops[finding.op].kind
        counts.setdefault(finding.rule, Counter())
        if kind in ("conv", "add"):
            counts[finding.rule][kind] += 1
    return counts


def test_onnx_and_tflite_views_of_the_same_network_give_the_same_findings(tflite_sr_net) -> None:
    onnx_view, tflite_view = onnx_dataflow(_onnx_sr_net()), tflite_sr_net.dataflow()
    onnx_found, tflite_found = sr_layers.findings(onnx_view), sr_layers.findings(tflite_view)
    # The statistic rule needs shapes, which only the TFLite view has.
    assert _reason_kinds(f.reason for f in tflite_found) == _reason_kinds(f.reason for f in onnx_found) | {
        "per-channel statistic"}
    assert _reason_kinds(f.reason for f in onnx_found) == {
        "first conv", "reads the shallow features", "global residual add", "last conv", "upsampler / output"}
    onnx_counts = _compute_ops_per_rule(onnx_view, onnx_found)
    tflite_counts = _compute_ops_per_rule(tflite_view, tflite_found)
    assert tflite_counts.pop("statistic") == Counter(conv=1)
    assert onnx_counts == tflite_counts == {
        "first conv": Counter(conv=1), "shallow reader": Counter(conv=1, add=1), "residual add": Counter(add=1),
        "tail": Counter(conv=1)}


def test_onnx_and_tflite_reasons_differ_only_where_each_path_always_merged_them_differently(tflite_sr_net) -> None:
    onnx_reasons = sr_float_nodes(_onnx_sr_net())
    tflite_reasons = tflite_sr_net.sr_sensitive_ops()
    # The residual add also reads the shallow features: ONNX reports the later reason, TFLite the first.
    assert _reason_kinds(onnx_reasons.values()) - _reason_kinds(tflite_reasons.values()) == {RESIDUAL}
    assert _reason_kinds(tflite_reasons.values()) - _reason_kinds(onnx_reasons.values()) == {"per-channel statistic"}
