"""The edits INT8 makes to a TFLite graph after ai-edge-quantizer: float islands folded, the I/O ends typed.

* folding float islands: ai-edge-quantizer does not know LEAKY_RELU and leaves
  every LeakyReLU as DEQUANTIZE -> float LEAKY_RELU -> QUANTIZE, although the
  LiteRT kernels (and XNNPACK) run it in int8 and int16; the island becomes one
  integer op keeping the calibrated output parameters (:func:`fold_float_islands`);
* the I/O ends: the graph input and output get the requested type with fixed
  pixel parameters (:func:`set_io`), joined to the calibrated interior by
  QUANTIZE / DEQUANTIZE ops.

Each edit changes the :class:`~sr_export.runtimes.tflite.graph.TfliteGraph`
it is given in place (the schema's object API is mutable) and drops the
tensors it left unused; reading the graph stays in
:mod:`sr_export.runtimes.tflite.graph`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tflite.graph import TENSOR_TYPES, Quantization, TfliteGraph

# Elementwise ops the LiteRT integer kernels run but the quantiser leaves in float.
FOLDABLE_OPS = frozenset({"LEAKY_RELU"})


def fold_float_islands(graph: TfliteGraph, kinds: Iterable[str] = FOLDABLE_OPS) -> int:
    """DEQUANTIZE -> float op -> QUANTIZE(s) becomes one integer op; returns how many were folded.

    The folded op reads the integer tensor the DEQUANTIZE read and writes,
    in the same type, the QUANTIZE output of that type (so it keeps its
    calibrated parameters). QUANTIZE ops to the other type (int8 <-> int16
    boundaries of the SR-aware scheme) stay, now requantising its output.
    """
    kinds = set(kinds)
    removed: list[Any] = []
    folded = 0
    for op in graph.ops:
        if graph.op_name(op) not in kinds:
            continue
        dequantize = graph.producer(op.inputs[0])
        users = graph.consumers(op.outputs[0])
        if dequantize is None or graph.op_name(dequantize) != "DEQUANTIZE" or op.outputs[0] == graph.output_index:
            continue
        if not users or any(graph.op_name(user) != "QUANTIZE" for user in users):
            continue
        float_in, integer_in = op.inputs[0], dequantize.inputs[0]
        dtype = graph.dtype(integer_in)
        same = [user for user in users if graph.dtype(user.outputs[0]) == dtype]
        output = same[0].outputs[0] if same else _covering_tensor(graph, [u.outputs[0] for u in users], dtype)
        op.inputs = [integer_in, *list(op.inputs[1:])]
        op.outputs = [output]
        for user in users:
            if same and user is same[0]:
                removed.append(user)
            else:
                user.inputs = [output]
        if not graph.consumers(float_in):
            removed.append(dequantize)
        folded += 1
    graph.subgraph.operators = [op for op in graph.subgraph.operators if not any(op is r for r in removed)]
    drop_unused_tensors(graph)
    return folded


def _covering_tensor(graph: TfliteGraph, tensors: list[int], dtype: str) -> int:
    """A new ``dtype`` tensor shaped like ``tensors[0]`` whose grid covers all their real ranges."""
    ranges = []
    for index in tensors:
        params = graph.quantization(index)
        assert params is not None
        ranges.append(params.real_range(graph.dtype(index)))
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return new_tensor(graph, tensors[0], dtype, Quantization.covering(dtype, low, high))


def set_io(graph: TfliteGraph, dtype: str, data_range: float) -> None:
    """Give the graph input and output ``dtype`` ("float32", "int8" or "uint8").

    Integer I/O carries pixels: [0, data_range] spread over the whole type
    (uint8: scale data_range/255, zero point 0, i.e. raw 0..255 pixel
    values; int8: the same scale, zero point -128). Inside, the calibrated
    tensors stay as the quantiser made them; QUANTIZE ops join the two where
    their types or parameters differ (two where LiteRT's kernel has no
    direct path), and a DEQUANTIZE gives float output.
    """
    if dtype not in ("float32", "int8", "uint8"):
        raise SrExportError(f"TFLite I/O type '{dtype}' is not one of float32, int8, uint8")
    wanted = None if dtype == "float32" else Quantization.for_range(dtype, data_range)
    _set_input(graph, _interior_input(graph), dtype, wanted)
    _set_output(graph, _interior_output(graph), dtype, wanted)
    drop_unused_tensors(graph)


def _interior_input(graph: TfliteGraph) -> int:
    """The tensor the body reads: the graph input itself, or the output of the QUANTIZE that alone reads it."""
    index = graph.input_index
    users = graph.consumers(index)
    if graph.dtype(index) == "float32" and len(users) == 1 and graph.op_name(users[0]) == "QUANTIZE":
        _drop_op(graph, users[0])
        return int(users[0].outputs[0])
    return index


def _interior_output(graph: TfliteGraph) -> int:
    """The tensor the body writes: the graph output itself, or the input of the DEQUANTIZE that writes it."""
    index = graph.output_index
    op = graph.producer(index)
    if op is not None and graph.op_name(op) == "DEQUANTIZE":
        _drop_op(graph, op)
        return int(op.inputs[0])
    return index


def _set_input(graph: TfliteGraph, interior: int, dtype: str, wanted: Quantization | None) -> None:
    original = graph.input_index
    if _matches(graph, interior, dtype, wanted):
        _replace_end(graph, original, interior, is_input=True)
        return
    outer = new_tensor(graph, interior, dtype, wanted)
    chain = [outer, *_steps(graph, interior, outer, dtype, graph.dtype(interior)), interior]
    for position, (source, target) in enumerate(zip(chain, chain[1:])):
        insert_op(graph, position, _conversion(graph, source, target), source, target)
    _replace_end(graph, original, outer, is_input=True)


def _set_output(graph: TfliteGraph, interior: int, dtype: str, wanted: Quantization | None) -> None:
    original = graph.output_index
    if _matches(graph, interior, dtype, wanted):
        _replace_end(graph, original, interior, is_input=False)
        return
    outer = new_tensor(graph, interior, dtype, wanted)
    chain = [interior, *_steps(graph, interior, outer, graph.dtype(interior), dtype), outer]
    for source, target in zip(chain, chain[1:]):
        insert_op(graph, len(graph.subgraph.operators), _conversion(graph, source, target), source, target)
    _replace_end(graph, original, outer, is_input=False)


def _conversion(graph: TfliteGraph, source: int, target: int) -> str:
    # QUANTIZE also requantises integer -> integer; only integer -> float is a DEQUANTIZE.
    return "DEQUANTIZE" if graph.dtype(target) == "float32" else "QUANTIZE"


def _steps(graph: TfliteGraph, interior: int, outer: int, source: str, target: str) -> list[int]:
    """An int8 tensor between uint8 and int16: LiteRT's QUANTIZE kernel has no direct path.

    It keeps the uint8 tensor's scale with the zero point moved by 128, so
    the uint8 <-> int8 hop is exact.
    """
    if {source, target} != {"uint8", "int16"}:
        return []
    params = graph.quantization(outer)
    assert params is not None
    return [new_tensor(graph, interior, "int8", Quantization(params.scale, params.zero_point - 128))]


def _matches(graph: TfliteGraph, index: int, dtype: str, wanted: Quantization | None) -> bool:
    if graph.dtype(index) != dtype:
        return False
    have = graph.quantization(index)
    if wanted is None or have is None:
        return wanted is None and have is None
    return have.zero_point == wanted.zero_point and bool(np.isclose(have.scale, wanted.scale, rtol=1e-6))


def _replace_end(graph: TfliteGraph, old: int, new: int, *, is_input: bool) -> None:
    """Make ``new`` the graph input (or output) in the subgraph and every signature, under ``old``'s name."""
    if old == new:
        return
    if is_input:
        graph.subgraph.inputs = [new if t == old else t for t in graph.subgraph.inputs]
    else:
        graph.subgraph.outputs = [new if t == old else t for t in graph.subgraph.outputs]
    for signature in graph.model.signatureDefs or []:
        for entry in (signature.inputs if is_input else signature.outputs) or []:
            if entry.tensorIndex == old:
                entry.tensorIndex = new
    # Users and tools look the I/O tensors up by the converter's names; the interior gets a telling one.
    name = graph.tensor_name(old)
    graph.tensor(old).name = f"{name}_{graph.dtype(old)}"
    graph.tensor(new).name = name


def new_tensor(graph: TfliteGraph, like: int, dtype: str, params: Quantization | None) -> int:
    schema = _schema()
    template = graph.tensor(like)
    tensor = schema.TensorT()
    tensor.shape = list(template.shape)
    if template.shapeSignature is not None:
        tensor.shapeSignature = list(template.shapeSignature)
    tensor.type = TENSOR_TYPES[dtype]
    tensor.buffer = 0  # the empty buffer: computed at run time
    tensor.name = f"{graph.tensor_name(like)}_{dtype}"
    graph.subgraph.tensors.append(tensor)
    index = len(graph.subgraph.tensors) - 1
    if params is not None:
        quantization = schema.QuantizationParametersT()
        quantization.scale = [float(params.scale)]
        quantization.zeroPoint = [int(params.zero_point)]
        quantization.quantizedDimension = 0
        tensor.quantization = quantization
    return index


def insert_op(graph: TfliteGraph, position: int, kind: str, source: int, target: int) -> None:
    op = _schema().OperatorT()
    op.opcodeIndex = _opcode(graph, kind)
    op.inputs, op.outputs = [source], [target]
    graph.subgraph.operators.insert(position, op)


def _drop_op(graph: TfliteGraph, op: Any) -> None:
    graph.subgraph.operators = [o for o in graph.subgraph.operators if o is not op]


def _opcode(graph: TfliteGraph, kind: str) -> int:
    from ai_edge_litert.tools import flatbuffer_utils

    schema = _schema()
    code = getattr(schema.BuiltinOperator, kind)
    for index, opcode in enumerate(graph.model.operatorCodes):
        if flatbuffer_utils.get_builtin_code_from_operator_code(opcode) == code:
            return index
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = code
    opcode.deprecatedBuiltinCode = min(code, 127)  # the schema's placeholder for codes above 127
    opcode.version = 1
    graph.model.operatorCodes.append(opcode)
    return len(graph.model.operatorCodes) - 1


def drop_unused_tensors(graph: TfliteGraph) -> None:
    """Remove tensors no op, graph end or signature refers to (what the edits left behind), renumbering the rest."""
    used = set(graph.subgraph.inputs) | set(graph.subgraph.outputs)
    for op in graph.subgraph.operators:
        used.update(t for t in op.inputs if t >= 0)
        used.update(op.outputs)
    keep = [i for i in range(len(graph.subgraph.tensors)) if i in used]
    if len(keep) == len(graph.subgraph.tensors):
        return
    new_index = {old: new for new, old in enumerate(keep)}
    graph.subgraph.tensors = [graph.subgraph.tensors[i] for i in keep]
    graph.subgraph.inputs = [new_index[t] for t in graph.subgraph.inputs]
    graph.subgraph.outputs = [new_index[t] for t in graph.subgraph.outputs]
    for op in graph.subgraph.operators:
        op.inputs = [new_index[t] if t >= 0 else t for t in op.inputs]
        op.outputs = [new_index[t] for t in op.outputs]
        if op.intermediates is not None:
            op.intermediates = [new_index[t] for t in op.intermediates if t in new_index]
    for signature in graph.model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.tensorIndex = new_index[entry.tensorIndex]


def _schema() -> Any:
    """The LiteRT schema bindings, imported on use (LiteRT is an optional dependency)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated
