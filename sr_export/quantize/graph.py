"""Where INT8 hurts an SR network, found in its ONNX graph: the ONNX view of :mod:`sr_export.quantize.sr_layers`.

The rules (first conv, shallow-feature readers, global residual add, last
conv + upsampler) live in :mod:`~sr_export.quantize.sr_layers`, shared with
the TFLite path; this module turns an ONNX ``GraphProto`` into the rules'
:class:`~sr_export.quantize.sr_layers.Dataflow` and their answers back into
nodes. It also names nodes: exclusions and reports address nodes by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sr_export.quantize import sr_layers
from sr_export.quantize.sr_layers import Conventions, Dataflow, Op

CONV_TYPES = frozenset({"Conv", "ConvTranspose"})
ADD_TYPES = frozenset({"Add", "Sum"})
# Ops that only pass a tensor on (no arithmetic a quantiser would touch): followed from the
# shallow features to the global residual add. DepthToSpace is not among them here (it never was).
PASS_THROUGH_TYPES = frozenset({"Identity", "Cast", "Reshape", "Transpose", "Pad"})
CONVERSION_TYPES = frozenset({"QuantizeLinear", "DequantizeLinear"})
SHAPE_TYPES = frozenset({"Shape", "Size"})
ONNX_KINDS = sr_layers.kind_table(conv=CONV_TYPES, add=ADD_TYPES, pass_through=PASS_THROUGH_TYPES,
                                  convert=CONVERSION_TYPES, shape=SHAPE_TYPES)
# The ONNX path's reasons: the shallow-reader and residual-add reasons replace a first-conv one, and
# the tail walk addresses nodes by name (what it always did; the QDQ plans key nodes by name).
ONNX_CONVENTIONS = Conventions(overriding=frozenset({"shallow reader", "residual add"}), tail_by_name=True)


def onnx_dataflow(graph: Any) -> Dataflow:
    """The SR rules' view of an ONNX graph: tensors by name, initialisers as constants, no shapes.

    No shapes: the per-channel-statistic rule on ops is the TFLite path's only
    (giving it ``value_info`` shapes would change which nodes QDQ files keep in
    float); the ONNX path's opt-in counterpart is :func:`statistic_tensors`.
    """
    ops = tuple(
        Op(name=node.name, type=node.op_type, kind=ONNX_KINDS.get(node.op_type, "other"),
           inputs=tuple(node.input), outputs=tuple(node.output))
        for node in graph.node
    )
    return Dataflow(
        ops=ops,
        inputs=tuple(i.name for i in graph.input),
        outputs=tuple(o.name for o in graph.output),
        constants=frozenset(init.name for init in graph.initializer),
    )


def statistic_tensors(proto: Any, side: int = 64) -> list[str]:
    """Activation tensors holding one value per channel (channel attention after pooling), in graph order.

    Found by ONNX shape inference with the input's symbolic height and width
    set to ``side``: a rank-4 op output whose height and width are both 1
    while the input's are not. The same per-channel-statistic rule the
    TFLite path applies to ops (:func:`sr_layers.statistic_ops`), applied
    here to tensors, so that QDQ files keep those edges float.
    """
    import onnx

    copy = onnx.ModelProto.FromString(proto.SerializeToString())
    del copy.graph.value_info[:]
    for dim in copy.graph.input[0].type.tensor_type.shape.dim[2:]:
        if not dim.HasField("dim_value"):
            dim.dim_value = side
    try:
        inferred = onnx.shape_inference.infer_shapes(copy).graph
    except Exception:  # noqa: BLE001 - a graph shape inference cannot follow has no statistics we can find
        return []
    input_hw = [d.dim_value for d in inferred.input[0].type.tensor_type.shape.dim[2:]]
    if input_hw == [1, 1]:
        return []
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in inferred.value_info}
    constants = {init.name for init in proto.graph.initializer}
    pooled = {out for node in proto.graph.node for out in node.output
              if out not in constants and len(shapes.get(out, [])) == 4 and shapes[out][2:] == [1, 1]}
    readers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    # Only where every reader computes another statistic: a statistic that scales or shifts a full feature map
    # (the attention's output, a mean subtracted from the map) keeps its Q/DQ, or that full-resolution op would
    # lose its integer kernel (IMDN x4: 2.04x -> 1.87x FP32 at 256x256 with every statistic float).
    outputs = {o.name for o in proto.graph.output}
    return [out for node in proto.graph.node for out in node.output
            if out in pooled and out not in outputs and readers.get(out)
            and all(all(o in pooled for o in reader.output) for reader in readers[out])]


def conv_nodes(graph: Any) -> list[Any]:
    return [n for n in graph.node if n.op_type in CONV_TYPES]


def first_convs(graph: Any) -> list[Any]:
    """Convs reached from the graph input through no other conv."""
    return _nodes(graph, sr_layers.first_convs(onnx_dataflow(graph)))


def tail_nodes(graph: Any) -> list[Any]:
    """Every node from the last convs to the output: last conv, pixel shuffle, clamp, trailing adds."""
    return _nodes(graph, sr_layers.tail_ops(onnx_dataflow(graph), by_name=ONNX_CONVENTIONS.tail_by_name))


def global_residual_adds(graph: Any) -> list[Any]:
    """The Add that joins a first conv's features with the body's output (the latest such Add)."""
    return _nodes(graph, sr_layers.global_residual_adds(onnx_dataflow(graph)))


def shallow_feature_readers(graph: Any) -> list[Any]:
    """Nodes that read the first convs' output directly (see :func:`sr_layers.shallow_readers`)."""
    return _nodes(graph, sr_layers.shallow_readers(onnx_dataflow(graph)))


def sr_float_nodes(graph: Any) -> dict[str, str]:
    """Node name -> why it stays in float, for the SR-aware default."""
    return sr_layers.sr_sensitive(onnx_dataflow(graph), ONNX_CONVENTIONS)


def ensure_node_names(graph: Any) -> None:
    """Give unnamed nodes stable names: exclusions and reports address nodes by name."""
    used = {n.name for n in graph.node if n.name}
    for index, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def unknown_nodes(graph: Any, names: Iterable[str]) -> list[str]:
    known = {n.name for n in graph.node}
    return [name for name in names if name not in known]


def _nodes(graph: Any, positions: Iterable[int]) -> list[Any]:
    nodes = list(graph.node)
    return [nodes[position] for position in positions]
