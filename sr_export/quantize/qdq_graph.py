"""QDQ graphs built with ONNX Runtime's quantiser, and the edits mixed precision makes to them.

Two flavours of the same calibration:

* ``onnxruntime``: uint8 asymmetric activations, per-channel int8 weights,
  int32 bias; what ONNX Runtime's CPU kernels run fastest and most accurately.
* ``tensorrt``: what TensorRT's ONNX parser wants: symmetric int8 activations
  and weights (zero points 0), per-channel weights, bias left in float (TensorRT
  folds it itself). Proven by running it in ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sr_export.core.errors import SrExportError, stage
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics, quiet_ort_quantization

FLAVOURS = ("onnxruntime", "tensorrt")


def quantized_activations(proto: Any) -> list[str]:
    """Activation tensors that carry a QuantizeLinear in a QDQ graph, in graph order."""
    constants = {init.name for init in proto.graph.initializer}
    return list(dict.fromkeys(node.input[0] for node in proto.graph.node
                              if node.op_type == "QuantizeLinear" and node.input[0] not in constants))


def requantised_float_convs(proto: Any, nodes: Sequence[str]) -> list[str]:
    """Output tensors of the float convs among ``nodes`` that ONNX Runtime would turn into integer kernels.

    A float-weight conv that reads a DequantizeLinear and feeds only
    QuantizeLinear is quantised by ONNX Runtime itself at load time (its
    weight and bias quantisation, then QLinearConv), so leaving it out of the
    quantiser keeps nothing in float. Keeping its output float breaks that
    pattern; the conv's readers then take the float tensor.
    """
    wanted = set(nodes)
    producers = {out: node for node in proto.graph.node for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in proto.graph.output}
    pinned = []
    for node in proto.graph.node:
        if node.name not in wanted or node.op_type not in ("Conv", "ConvTranspose") or not node.input:
            continue
        source = producers.get(node.input[0])
        out = node.output[0]
        read_by = readers.get(out, [])
        if (source is not None and source.op_type == "DequantizeLinear" and out not in outputs and read_by
                and all(r.op_type == "QuantizeLinear" for r in read_by)):
            pinned.append(out)
    return pinned


def keep_tensors_float(proto: Any, tensors: Sequence[str], float_proto: Any) -> Any:
    """A copy of QDQ ``proto`` where each of ``tensors`` loses its Q/DQ pairs: readers get the float tensor.

    ONNX Runtime then runs the producer and readers of that edge in float
    (their other inputs are still dequantised), and keeps INT8 kernels
    everywhere else. ONNX Runtime's quantiser folds a Relu or Clip into the
    range of the Q that follows a conv (uint8 clips for free); such an
    activation is put back from ``float_proto``, or the float edge would skip it.
    """
    import onnx

    wanted = set(tensors)
    result = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = result.graph
    quantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in wanted}
    dequantized = {n.output[0]: quantized[n.input[0]] for n in graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in quantized}
    outputs = {o.name for o in graph.output}
    if outputs & (set(quantized) | set(dequantized)):
        raise SrExportError("a graph output cannot be kept float by removing its Q/DQ pair")
    kept = [n for n in graph.node
            if not (n.op_type == "QuantizeLinear" and n.output[0] in quantized)
            and not (n.op_type == "DequantizeLinear" and n.output[0] in dequantized)]
    for node in kept:
        node.input[:] = [dequantized.get(name, name) for name in node.input]
    nodes = _restore_folded_activations(kept, set(quantized.values()), float_proto.graph, graph)
    del graph.node[:]
    graph.node.extend(nodes)
    return result


_FOLDABLE_ACTIVATIONS = frozenset({"Relu", "Clip"})


def _restore_folded_activations(nodes: list[Any], tensors: set[str], float_graph: Any, graph: Any) -> list[Any]:
    """Re-insert the float graph's Relu/Clip in front of each of ``tensors`` that the quantiser folded away."""
    import onnx

    float_producer = {out: n for n in float_graph.node for out in n.output}
    present = {n.name for n in nodes}
    constants = {init.name for init in graph.initializer}
    float_constants = {init.name: init for init in float_graph.initializer}
    result = []
    for node in nodes:
        result.append(node)
        for index, out in enumerate(node.output):
            folded = float_producer.get(out)
            if out not in tensors or folded is None or folded.op_type not in _FOLDABLE_ACTIVATIONS:
                continue
            if folded.name in present:
                continue  # the activation is still there: nothing was folded
            node.output[index] = f"{out}_before_{folded.op_type.lower()}"
            activation = onnx.NodeProto.FromString(folded.SerializeToString())
            activation.input[0] = node.output[index]
            for name in activation.input[1:]:
                if name and name not in constants and name in float_constants:
                    graph.initializer.append(float_constants[name])
                    constants.add(name)
            result.append(activation)
    return result


def quantized_proto(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    *,
    flavour: str = "onnxruntime",
    exclude: Sequence[str] = (),
    only: Sequence[str] = (),
    data_range: float | None = None,
    float_tensors: Sequence[str] = (),
) -> Any:
    """A QDQ ModelProto of ``proto``; ``only`` restricts quantisation to those nodes (for sensitivity).

    ``exclude`` nodes are left unquantised; ``float_tensors`` lose their Q/DQ
    pair after quantisation, and so does the output of an excluded conv that
    ONNX Runtime would quantise by itself (:func:`requantised_float_convs`).
    """
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import save_and_reload_model_with_shape_infer
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if flavour not in FLAVOURS:
        raise SrExportError(f"unknown INT8 flavour '{flavour}'; known: {', '.join(FLAVOURS)}")
    symmetric = flavour == "tensorrt" or recipe.activations == "symmetric"
    options: dict[str, Any] = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if flavour == "tensorrt":
        options["QuantizeBias"] = False
    op_types = sorted(set(QDQRegistry) | set(QLinearOpsRegistry))
    with stage("quantize", f"building the {flavour} QDQ graph"), quiet_ort_quantization():
        model = save_and_reload_model_with_shape_infer(onnx.ModelProto.FromString(proto.SerializeToString()))
        quantizer = QDQQuantizer(
            model, recipe.per_channel or flavour == "tensorrt", False, QuantType.QInt8,
            QuantType.QInt8 if symmetric else QuantType.QUInt8, statistics.to_tensors_data(),
            list(only), list(exclude), op_types, options,
        )
        result = quantizer.quantize_model()
    float_tensors = [*float_tensors, *requantised_float_convs(result, exclude)]
    if float_tensors:
        result = keep_tensors_float(result, float_tensors, proto)
    if data_range is not None:
        append_output_clamp(result, data_range)
    return result


def append_output_clamp(proto: Any, data_range: float) -> None:
    """Clip the graph output to [0, data_range] in float: INT8 overshoot must not wrap or band."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = proto.graph
    output = graph.output[0].name
    raw = f"{output}_unclamped"
    for node in graph.node:
        node.output[:] = [raw if o == output else o for o in node.output]
        node.input[:] = [raw if i == output else i for i in node.input]
    low, high = f"{output}_clamp_low", f"{output}_clamp_high"
    graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), low),
                              numpy_helper.from_array(np.array(data_range, np.float32), high)])
    graph.node.append(helper.make_node("Clip", [raw, low, high], [output], name="sr_export_output_clamp"))
