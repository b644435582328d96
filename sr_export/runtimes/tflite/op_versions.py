"""The builtin op version each op of a TFLite graph needs, from its tensor types, as LiteRT defines it.

ai-edge-quantizer writes version 1 for every op it quantises (an int8
CONV_2D is version 3 to TF Lite), so a file's own versions understate what
it needs and an old runtime finds out only when a kernel refuses. This
module computes each op's version from its signature, following
``GetBuiltinOperatorVersion`` in LiteRT's
``tflite/tools/versioning/op_version.cc`` for the ops SR graphs use (others
keep the version the file records), and :func:`write_versions` raises the
file's versions to those (what the TF Lite converter's ``UpdateOpVersion``
does). Versions live per opcode, so ops sharing one (a float and an int8
CONV_2D) get the higher.
"""

from __future__ import annotations

from typing import Any

from sr_export.runtimes.tflite.graph import TfliteGraph

# Activation types an op's version depends on (schema TensorType names as TfliteGraph.dtype gives them).
_INT8 = "int8"
_INT16 = "int16"
_FLOAT16 = 1  # schema TensorType.FLOAT16


def tensor_type(graph: TfliteGraph, tensor: int) -> str:
    """The schema type name of a tensor, float16 (weights of --fp16 files) included."""
    return "float16" if graph.tensor(tensor).type == _FLOAT16 else graph.dtype(tensor)


def activation_type(graph: TfliteGraph, op: Any) -> str:
    """The type of the op's first non-constant input (its activation), else of its first input."""
    inputs = [t for t in op.inputs if t >= 0]
    for tensor in inputs:
        if not graph.is_constant(tensor):
            return tensor_type(graph, tensor)
    return tensor_type(graph, inputs[0]) if inputs else "none"


def required_version(graph: TfliteGraph, op: Any) -> int:
    """The version ``op`` needs: the higher of what the file records and what its signature asks for."""
    recorded = int(graph.model.operatorCodes[op.opcodeIndex].version or 1)
    return max(recorded, signature_version(graph, op))


def signature_version(graph: TfliteGraph, op: Any) -> int:
    name = graph.op_name(op)
    inputs = [t for t in op.inputs if t >= 0]
    kind = activation_type(graph, op)
    types = [tensor_type(graph, t) for t in inputs]
    out = tensor_type(graph, op.outputs[0])
    options = op.builtinOptions
    if name == "CONV_2D":
        return _conv_version(graph, inputs, types, out, options)
    if name == "DEPTHWISE_CONV_2D":
        if types[0] == _INT16:
            return 5
        if types[0] == "float32" and types[1] == _INT8:
            return 6 if _per_channel(graph, inputs[1]) else 4
        if types[0] == _INT8:
            return 3
        return 2 if options is not None and (options.dilationWFactor != 1 or options.dilationHFactor != 1) else 1
    if name == "TRANSPOSE_CONV":
        if options is not None and getattr(options, "fusedActivationFunction", 0):
            return 4
        if len(op.inputs) == 4 and op.inputs[3] >= 0:
            return 3
        return 2 if types[1] == _INT8 else 1
    if name == "MUL":
        return _mul_version(graph, inputs, kind, op)
    if name == "ADD":
        if kind == _INT16 and out == _INT16 and options is not None and not getattr(options, "potScaleInt16", True):
            return 3
        return 2 if kind == _INT8 else 1
    if name == "SUB":
        if kind == _INT16 and out == _INT16 and options is not None and not getattr(options, "potScaleInt16", True):
            return 5
        if len(inputs) > 1 and _broadcast_over_4d(graph, inputs):
            return 3
        return 2 if kind == _INT8 else 1
    if name == "TRANSPOSE":
        rank = len(graph.shape(inputs[0]) or ())
        if rank > 5:
            return 6
        if kind == _INT16:
            return 5
        if rank > 4:
            return 4
        return 2 if kind == _INT8 else 1
    if name == "SLICE":
        rank = len(graph.shape(inputs[0]) or ())
        if rank > 4:
            return 5
        return 4 if kind == _INT16 else 2 if kind == _INT8 else 1
    if name in ("PAD", "PADV2"):
        if len(graph.shape(inputs[0]) or ()) > 4:
            return 4
        return 3 if kind == _INT16 else 2 if kind == _INT8 else 1
    if name == "QUANTIZE":
        if _per_channel(graph, op.outputs[0]):
            return 3
        return 2 if out == _INT16 else 1
    if name == "DEQUANTIZE":
        if kind in (_INT16, "float16"):
            return 3
        if kind == _INT8:
            return 5 if _per_channel(graph, inputs[0]) else 2
        return 1
    if name == "RESIZE_BILINEAR":
        if kind == _INT16:
            return 4
        if options is not None and getattr(options, "halfPixelCenters", False):
            return 3
        return 2 if kind == _INT8 else 1
    if name == "RESIZE_NEAREST_NEIGHBOR":
        if kind == _INT16:
            return 4
        if options is not None and (getattr(options, "halfPixelCenters", False) or getattr(options, "alignCorners", False)):
            return 3
        return 2 if kind == _INT8 else 1
    if name == "LEAKY_RELU":
        return 2 if kind == _INT16 else 1
    if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "LOGISTIC", "TANH"):
        return 3 if kind == _INT16 and out == _INT16 else 2 if kind == _INT8 else 1
    if name in ("CONCATENATION", "MEAN", "MIRROR_PAD", "RELU6", "RSQRT"):
        return 3 if kind == _INT16 else 2 if kind == _INT8 else 1
    if name in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SUM", "SQUARED_DIFFERENCE"):
        return 2 if kind == _INT8 else 1
    if name == "RELU":
        return 3 if kind == _INT16 else 2 if kind in (_INT8, "uint8") else 1
    if name in ("MAXIMUM", "MINIMUM"):
        if kind == _INT16 and out == _INT16:
            return 4
        return 2 if kind == _INT8 else 1
    return 1


def _conv_version(graph: TfliteGraph, inputs: list[int], types: list[str], out: str, options: Any) -> int:
    if types[0] == _INT16 and types[1] == _INT8 and out == _INT16 and getattr(options, "quantizedBiasType", 0):
        return 8
    input_shape, filter_shape = graph.shape(inputs[0]), graph.shape(inputs[1])
    if input_shape and filter_shape and input_shape[-1] != filter_shape[-1]:
        return 6  # grouped convolution
    # op_version.cc has no version of its own for int16 activations with int8 weights (the 16x8 kernels);
    # they came with version 4 (int16) in TF Lite 2.3, which is what is asked for here.
    if types[0] == _INT16:
        return 4
    if types[0] == _INT8 and types[1] == _INT8 and out == _INT8:
        return 3
    if types[0] == "float32" and types[1] == _INT8 and out == "float32":
        return 5 if _per_channel(graph, inputs[1]) else 2
    return 1


def _mul_version(graph: TfliteGraph, inputs: list[int], kind: str, op: Any) -> int:
    if kind == _INT16:
        return 4
    if kind == _INT8 and len(inputs) > 1:
        params = [graph.quantization(t) for t in (*inputs[:2], op.outputs[0])]
        if all(p is not None and p.scale for p in params):
            first, second, output = (p.scale for p in params)  # type: ignore[union-attr]
            if first * second / output >= 1.0:
                return 3
        return 2
    return 1


def _per_channel(graph: TfliteGraph, tensor: int) -> bool:
    params = graph.tensor(tensor).quantization
    return params is not None and params.scale is not None and len(params.scale) > 1


def _broadcast_over_4d(graph: TfliteGraph, inputs: list[int]) -> bool:
    shapes = [graph.shape(t) or () for t in inputs]
    return shapes[0] != shapes[1] and max(len(s) for s in shapes) > 4


def write_versions(graph: TfliteGraph) -> int:
    """Raise each opcode's version to the highest any of its ops needs; returns how many opcodes changed."""
    needed: dict[int, int] = {}
    for op in graph.ops:
        needed[op.opcodeIndex] = max(needed.get(op.opcodeIndex, 1), required_version(graph, op))
    changed = 0
    for index, version in needed.items():
        opcode = graph.model.operatorCodes[index]
        if version > int(opcode.version or 1):
            opcode.version = version
            changed += 1
    return changed
