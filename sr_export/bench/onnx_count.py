"""Complexity counted from the exported ONNX graph, where every op is visible.

The AIM/NTIRE counter (:mod:`sr_export.bench.complexity`) hooks
``nn.Conv2d``/``nn.ConvTranspose2d`` and activation modules, so functional
convs, matmuls, attention and elementwise math count zero there. This module
counts what the runtime executes: each node of the graph, at one fixed input
shape, by these rules (``N`` = batch, included everywhere as a multiplier):

- ``Conv``: MACs = kh*kw*(C_in/groups)*C_out*H_out*W_out*N (bias not counted).
- ``ConvTranspose``: MACs = kh*kw*C_in*(C_out/groups)*H_in*W_in*N, the real
  work: every *input* pixel scatters a kernel. The AIM counter uses
  kh*kw*C_in*C_out/groups*H_out*W_out, which is the same number only for
  stride 1 (for stride s it is s*s times larger).
- ``MatMul``/``Gemm``: MACs = elements of the output * K (the contracted
  dimension), batch dims included; Gemm's bias is not counted. ``Einsum``:
  product of the sizes of all its index labels (a two-operand contraction).
- Elementwise arithmetic and activations (Add, Sub, Mul, Div, Pow, Sqrt, Exp,
  Log, Relu, LeakyRelu, PRelu, Sigmoid, HardSigmoid, Tanh, Clip, Erf, Max,
  Min, Neg, Abs, Reciprocal, Where, other activations and comparisons): one op
  per output element (n-input Max/Min/Sum/Mean: n-1). Softmax/LogSoftmax: 3
  (exp, sum, divide). BatchNormalization: 2 (scale and shift, as folded at
  inference). Layer/Instance/GroupNormalization: 7 (the mean, subtract,
  square, variance, divide, scale and shift of their decomposition).
- Reductions (ReduceMean, ReduceSum, ReduceMax, ReduceL2, GlobalAveragePool,
  ...): one op per *input* element.
- ``MaxPool``/``AveragePool``/``LpPool``: kh*kw per output element.
- ``Resize``: per output element 2**d for linear and 4**d for cubic
  interpolation over the d axes whose size changes (4 and 16 for an image),
  0 for nearest (a gather, not arithmetic).
- Data movement (Reshape, Transpose, DepthToSpace, SpaceToDepth, Concat,
  Slice, Split, Gather, Pad, Cast, Identity, Expand, Flatten, ...): zero ops,
  still listed with their calls and output elements.
- Anything else counts zero and is named in :attr:`GraphCount.uncounted` so
  reports can warn. Nodes inside If/Loop/Scan bodies are not visited (the
  control-flow node itself is listed as uncounted).

Nodes whose outputs are fixed once the input *shape* is fixed (Shape and the
integer arithmetic that turns it into Resize sizes or Reshape targets, Constant
nodes, preprocessing of weights) are what a runtime or onnxsim folds into
constants before it runs an image; they are not counted (their number is
:attr:`GraphCount.folded_nodes`), so a graph exported with dynamic height and
width counts the same as one exported at that size.

Shapes: the graph's single data input is fixed to the requested shape and ONNX
shape inference with data propagation gives every tensor a static shape for
the usual exports. Where it cannot (shape arithmetic it does not propagate,
e.g. ``Mod`` in pad-to-a-multiple code), ONNX Runtime runs the graph once on a
zero input to read the values of the folded shape tensors, which are put in
as constants before inferring again; whatever is still unknown is read from a
second run that returns those tensors. Shapes are never guessed: if one stays
unknown the count fails with :class:`~sr_export.core.errors.SrExportError`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import onnx

from sr_export.core.errors import SrExportError
from sr_export.core.io import require_file
from sr_export.export.session import cpu_session

Shape = tuple[int, ...]

CONV_OPS = frozenset({"Conv", "ConvTranspose"})
MATMUL_OPS = frozenset({"MatMul", "Gemm", "Einsum"})

# Ops per output element.
ELEMENTWISE_COST: Mapping[str, int] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Where",
                "Floor", "Ceil", "Round", "Sign", "Mod", "Sin", "Cos", "Erf",
                "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "Tanh", "Clip", "Elu", "Selu", "Celu",
                "HardSwish", "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu",
                "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor",
            ),
            1,
        ),
        "Softmax": 3,
        "LogSoftmax": 3,
        "BatchNormalization": 2,
        "LayerNormalization": 7,
        "InstanceNormalization": 7,
        "GroupNormalization": 7,
    }
)
# Elementwise ops that take any number of inputs: n inputs cost n-1 per element.
VARIADIC_OPS = frozenset({"Max", "Min", "Sum", "Mean"})
# One op per input element.
REDUCTION_OPS = frozenset(
    {
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "GlobalAveragePool", "GlobalMaxPool",
        "GlobalLpPool", "ArgMax", "ArgMin", "LpNormalization",
    }
)
POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})
RESIZE_OPS = frozenset({"Resize", "Upsample"})
DATA_MOVEMENT_OPS = frozenset(
    {
        "Reshape", "Transpose", "DepthToSpace", "SpaceToDepth", "Concat", "Slice", "Split", "Gather",
        "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Shape", "Size", "Constant",
        "ConstantOfShape", "Unsqueeze", "Squeeze", "Pad", "Cast", "CastLike", "Identity", "Expand", "Flatten",
        "Tile", "Range", "Dropout",
    }
)
# Outputs that depend on the input's shape only, never on its values.
SHAPE_OPS = frozenset({"Shape", "Size"})
# Input slots that hold settings (sizes, limits, exponents), not learned weights.
SETTING_INPUTS: Mapping[str, frozenset[int]] = MappingProxyType(
    {
        "Resize": frozenset({1, 2, 3}),
        "Upsample": frozenset({1}),
        "Clip": frozenset({1, 2}),
        "Pad": frozenset({1, 2, 3}),
        "Pow": frozenset({1}),
        "Dropout": frozenset({1, 2}),
    }
)
FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
)


@dataclass(frozen=True)
class OpCount:
    """Totals of one ONNX op type, so reports can show where the work is."""

    op_type: str
    calls: int
    macs: int  # multiply-accumulates (Conv, ConvTranspose, MatMul, Gemm, Einsum), bias not counted
    elementwise: int  # every other arithmetic op, by the rules of the module docstring
    output_elements: int


@dataclass(frozen=True)
class GraphCount:
    """Complexity of an ONNX graph at one input shape, every op included."""

    input_shape: tuple[int, ...]
    params: int  # elements of float initializers that feed nodes as weights (not settings, not 0-d literals)
    macs: int
    other_ops: int  # sum of OpCount.elementwise
    conv_activations: int  # output elements of Conv/ConvTranspose nodes, like the AIM 'activations'
    conv_count: int
    by_op: tuple[OpCount, ...]  # most work first
    uncounted: tuple[str, ...] = ()  # op types with no rule here: counted as zero work
    folded_nodes: int = 0  # shape/constant nodes fixed by the input shape, not counted

    @property
    def flops(self) -> int:
        """MAC-based like the AIM counter, plus one op per element for everything else."""
        return self.macs + self.other_ops

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "params": self.params,
            "flops": self.flops,
            "macs": self.macs,
            "other_ops": self.other_ops,
            "conv_activations": self.conv_activations,
            "conv_count": self.conv_count,
            "folded_nodes": self.folded_nodes,
            "uncounted": list(self.uncounted),
            "by_op": [asdict(row) for row in self.by_op],
        }


@dataclass(frozen=True)
class _NodeCount:
    macs: int
    elementwise: int
    counted: bool  # False: no rule for this op type


def count_onnx(model: onnx.ModelProto | str | Path, input_shape: tuple[int, ...]) -> GraphCount:
    """Count ``model`` with its data input fixed to ``input_shape`` (dynamic H/W graphs included)."""
    proto = model if isinstance(model, onnx.ModelProto) else _load(Path(model))
    shape = tuple(int(d) for d in input_shape)
    fixed = with_fixed_input(proto, shape)
    graph = fixed.graph
    folded = folded_node_indices(graph)
    computed = [node for i, node in enumerate(graph.node) if i not in folded]
    needed = {name for node in computed for name in (*node.input, *node.output) if name}
    shapes = resolve_shapes(fixed, needed, folded)

    rows: dict[str, list[int]] = {}
    uncounted: set[str] = set()
    conv_activations = conv_count = 0
    for node in computed:
        op = _op_name(node)
        cost = node_cost(node, shapes)
        if not cost.counted:
            uncounted.add(op)
        outputs = sum(math.prod(shapes[name]) for name in node.output if name)
        if outputs == 0 and (op in CONV_OPS or op in POOL_OPS):
            raise SrExportError(
                f"input {_fmt(shape)} is too small for this model: its {op} node '{node.name}' "
                "would produce an empty tensor"
            )
        row = rows.setdefault(op, [0, 0, 0, 0])
        row[0] += 1
        row[1] += cost.macs
        row[2] += cost.elementwise
        row[3] += outputs
        if op in CONV_OPS:
            conv_count += 1
            conv_activations += math.prod(shapes[node.output[0]])
    by_op = sorted(
        (OpCount(op, calls, macs, elementwise, outputs) for op, (calls, macs, elementwise, outputs) in rows.items()),
        key=lambda r: (-(r.macs + r.elementwise), -r.calls, r.op_type),
    )
    return GraphCount(
        input_shape=shape,
        params=count_params(graph),
        macs=sum(r.macs for r in by_op),
        other_ops=sum(r.elementwise for r in by_op),
        conv_activations=conv_activations,
        conv_count=conv_count,
        by_op=tuple(by_op),
        uncounted=tuple(sorted(uncounted)),
        folded_nodes=len(folded),
    )


def _load(path: Path) -> onnx.ModelProto:
    require_file(path, "ONNX model")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise SrExportError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from exc


def _op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"


# ---------------------------------------------------------------- the graph at one input shape


def data_input(graph: onnx.GraphProto) -> onnx.ValueInfoProto:
    """The one graph input that is not an initializer (older exports list weights as inputs too)."""
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise SrExportError(f"the ONNX counter needs a graph with exactly one data input, this one has: {names}")
    return inputs[0]


def with_fixed_input(model: onnx.ModelProto, input_shape: Shape) -> onnx.ModelProto:
    """A copy whose data input has ``input_shape`` and whose other shapes are left to inference.

    Stored intermediate and output shapes carry the export's symbolic dims
    ('height', 'width'), which would clash with the fixed ones, so they go.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    value = data_input(fixed.graph)
    dims = value.type.tensor_type.shape.dim
    declared = "x".join(str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?" for d in dims)
    fits = len(dims) == len(input_shape) and all(
        size > 0 and (not dim.HasField("dim_value") or dim.dim_value == size) for dim, size in zip(dims, input_shape)
    )
    if not fits:
        raise SrExportError(
            f"input shape {_fmt(input_shape)} does not fit the graph input '{value.name}', which is {declared}"
        )
    for dim, size in zip(dims, input_shape):
        dim.Clear()
        dim.dim_value = size
    del fixed.graph.value_info[:]
    for output in fixed.graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")
    return fixed


def folded_node_indices(graph: onnx.GraphProto) -> frozenset[int]:
    """Nodes whose outputs are fixed by the input shape alone (graph nodes are topologically sorted)."""
    fixed: set[str] = {init.name for init in graph.initializer} | {""}
    folded: set[int] = set()
    for index, node in enumerate(graph.node):
        has_body = any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute)
        if not has_body and (node.op_type in SHAPE_OPS or all(name in fixed for name in node.input)):
            folded.add(index)
            fixed.update(node.output)
    return frozenset(folded)


def resolve_shapes(model: onnx.ModelProto, needed: Collection[str], folded: Collection[int]) -> dict[str, Shape]:
    """Static shapes of the ``needed`` tensors of a graph whose input shape is fixed.

    Cheapest first: shape inference with data propagation; then one ONNX
    Runtime run for the folded shape tensors, put back as constants; then one
    run for whatever is still unknown (only those tensors are kept in memory).
    """
    shapes = inferred_shapes(model)
    if all(name in shapes for name in needed):
        return shapes
    graph = model.graph
    boundary = _fold_boundary(graph, folded)
    if boundary:
        values = _run_graph(model, sorted(boundary))
        shapes.update({name: tuple(value.shape) for name, value in values.items()})
        shapes.update(inferred_shapes(_folded_model(model, folded, values)))
    missing = sorted(set(needed) - shapes.keys())
    if missing:
        shapes.update({name: tuple(value.shape) for name, value in _run_graph(model, missing).items()})
    return shapes


def inferred_shapes(model: onnx.ModelProto) -> dict[str, Shape]:
    """Every fully static shape ONNX shape inference finds (none if it fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # an inference error only means falling back to the runtime
        inferred = model
    graph = inferred.graph
    shapes: dict[str, Shape] = {init.name: tuple(init.dims) for init in graph.initializer}
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            dims = tensor.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def _fold_boundary(graph: onnx.GraphProto, folded: Collection[int]) -> set[str]:
    """Outputs of folded nodes that computed nodes read (Resize sizes, Reshape targets, ...)."""
    produced = {name for i, node in enumerate(graph.node) if i in folded for name in node.output}
    return {
        name for i, node in enumerate(graph.node) if i not in folded for name in node.input if name in produced
    } | {output.name for output in graph.output if output.name in produced}


def _folded_model(model: onnx.ModelProto, folded: Collection[int], values: Mapping[str, Any]) -> onnx.ModelProto:
    """The graph with its folded nodes replaced by the constants they produced."""
    from onnx import numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    kept = [node for i, node in enumerate(model.graph.node) if i not in folded]
    del result.graph.node[:]
    result.graph.node.extend(kept)
    result.graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in values.items())
    return result


def _run_graph(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, Any]:
    """Run the graph once on a zero input and return the tensors ``names``."""
    import numpy as np

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    value = data_input(probe.graph)
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value for d in tensor.shape.dim)
    try:
        session = cpu_session(probe.SerializeToString(), optimize=False)
        feed = np.zeros(shape, dtype=onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        results = session.run(list(names), {value.name: feed})
    except Exception as exc:
        raise SrExportError(
            f"could not read the graph's tensor shapes at input {_fmt(shape)}: ONNX Runtime failed "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return {name: np.asarray(result) for name, result in zip(names, results)}


# ---------------------------------------------------------------- per-node rules


def node_cost(node: onnx.NodeProto, shapes: Mapping[str, Shape]) -> _NodeCount:
    """MACs and other ops of one node, by the rules in the module docstring."""
    op = _op_name(node)

    def shape(name: str) -> Shape:
        if name not in shapes:
            raise SrExportError(f"no static shape for tensor '{name}' of {op} node '{node.name}'")
        return shapes[name]

    def out_elements() -> int:
        return math.prod(shape(node.output[0]))

    if op == "Conv":
        return _NodeCount(out_elements() * math.prod(shape(node.input[1])[1:]), 0, True)
    if op == "ConvTranspose":
        return _NodeCount(math.prod(shape(node.input[0])) * math.prod(shape(node.input[1])[1:]), 0, True)
    if op == "MatMul":
        return _NodeCount(out_elements() * shape(node.input[0])[-1], 0, True)
    if op == "Gemm":
        a = shape(node.input[0])
        contracted = a[0] if _attribute(node, "transA", 0) else a[1]
        return _NodeCount(out_elements() * contracted, 0, True)
    if op == "Einsum":
        operands = [shape(name) for name in node.input]
        return einsum_cost(str(_attribute(node, "equation", "")), operands, out_elements())
    if op in ELEMENTWISE_COST:
        return _NodeCount(0, ELEMENTWISE_COST[op] * out_elements(), True)
    if op in VARIADIC_OPS:
        return _NodeCount(0, max(1, len([n for n in node.input if n]) - 1) * out_elements(), True)
    if op in REDUCTION_OPS:
        return _NodeCount(0, math.prod(shape(node.input[0])), True)
    if op in POOL_OPS:
        return _NodeCount(0, math.prod(_attribute(node, "kernel_shape", ())) * out_elements(), True)
    if op in RESIZE_OPS:
        resized = sum(a != b for a, b in zip(shape(node.input[0]), shape(node.output[0])))
        mode = _attribute(node, "mode", "nearest")
        per_element = {"linear": 2**resized, "bilinear": 2**resized, "cubic": 4**resized}.get(mode, 0)
        return _NodeCount(0, per_element * out_elements() if resized else 0, True)
    return _NodeCount(0, 0, op in DATA_MOVEMENT_OPS)


def einsum_cost(equation: str, operands: Sequence[Shape], out_elements: int) -> _NodeCount:
    """Einsum: a contraction of n operands costs (n-1) * product of all label sizes in MACs."""
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    if len(inputs) != len(operands):
        return _NodeCount(0, 0, False)
    sizes: dict[str, int] = {}
    for term, dims in zip(inputs, operands):
        before, _, after = term.partition("...")
        if "..." not in term and len(term) != len(dims):
            return _NodeCount(0, 0, False)
        ellipsis = len(dims) - len(before) - len(after)
        # Broadcast ellipsis dims line up from the right across operands.
        labels = [*before, *(f"...{ellipsis - i}" for i in range(ellipsis)), *after]
        for label, size in zip(labels, dims):
            sizes[label] = max(sizes.get(label, 1), size)
    if len(operands) == 1:  # a permutation (free) or a reduction (one op per input element)
        reduces = math.prod(operands[0]) != out_elements
        return _NodeCount(0, math.prod(operands[0]) if reduces else 0, True)
    return _NodeCount((len(operands) - 1) * math.prod(sizes.values()), 0, True)


def count_params(graph: onnx.GraphProto) -> int:
    """Elements of the float initializers nodes read as weights, each counted once.

    Integer tensors (shapes, indices), setting inputs (Resize scales, Clip
    limits, Pad values, Pow exponents) and 0-d literals from the model's code
    (``x * 0.2``) are not parameters.
    """
    floats = {init.name: init for init in graph.initializer if init.data_type in FLOAT_TYPES and init.dims}
    used: set[str] = set()
    for node in _all_nodes(graph):
        settings = SETTING_INPUTS.get(node.op_type, frozenset())
        used.update(name for slot, name in enumerate(node.input) if name in floats and slot not in settings)
    return sum(math.prod(floats[name].dims) for name in used)


def _all_nodes(graph: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    """Nodes of the graph and of the bodies of its control-flow nodes (they may read weights)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for body in (*([attr.g] if attr.type == onnx.AttributeProto.GRAPH else []), *attr.graphs):
                yield from _all_nodes(body)


def _attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            value = onnx.helper.get_attribute_value(attr)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)
