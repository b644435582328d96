"""Widen a QDQ graph's convs to channel counts ONNX Runtime's integer kernels run fast, without changing its output.

ONNX Runtime's CPU integer convolution (MLAS, u8 activations with s8
per-channel weights) has a fast path only when a conv's input and output
channel counts are multiples of 4. Otherwise it falls back to a generic kernel
that, measured on the AVX-512 VNNI development machine at 256x256, makes a
50-channel 3x3 conv *slower* than a 52-channel one (22.0 against 14.0 ms).
E-RFDN is built on 50 and 25 channels, so most of its integer convs took the
slow path.

The rewrite appends all-zero filters to such convs (bias 0, so the extra
channels hold 0 before activation) and gives every reader a layout: which
channel of the widened tensor is which original channel, and which are pad.
Convs read pad channels with zero weights, so real channels see exactly the
sums they saw before; per-tensor quantisation and elementwise ops never mix
channels; concatenations interleave the layouts. Anything that could mix pad
into real channels (a channel reduction, a reshape, a graph output, an add of
differently laid-out tensors) makes the convs whose pads reach it stay as
they were. The encodings (activation scales and zero points, weight scales)
are the quantised graph's own: the pad channels get scale 1 and value 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FAST_MULTIPLE = 4
_PAD_WEIGHT_SCALE = 1.0  # the pad filters are 0; any positive scale dequantises them to 0

# One data input (input 0), channels kept in place: the output has the input's layout.
_CHANNELWISE_UNARY = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Clip", "Identity", "Neg", "Abs",
    "Elu", "Selu", "Softplus", "Exp", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Cast",
    "QuantizeLinear", "DequantizeLinear", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
})
_ELEMENTWISE_BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"})
# What a constant per-channel operand of a binary op is padded with: a value that keeps pads finite.
_NEUTRAL = {"Add": 0.0, "Sub": 0.0, "Mul": 0.0, "Div": 1.0, "Max": 0.0, "Min": 0.0, "Pow": 1.0}


@dataclass(frozen=True)
class ChannelPadding:
    """What :func:`pad_channels` did: convs widened (name -> (channels, padded)) and convs left, with why."""

    widened: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    kept: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        if not self.widened:
            return "no conv widened"
        counts = sorted({f"{a}->{b}" for a, b in self.widened.values()})
        return f"{len(self.widened)} convs widened to a multiple of {FAST_MULTIPLE} channels ({', '.join(counts)})"

    def to_dict(self) -> dict[str, Any]:
        return {"multiple": FAST_MULTIPLE, "widened": {k: list(v) for k, v in self.widened.items()},
                "kept": dict(self.kept)}


class _Conflict(Exception):
    """A padded tensor reached an op that would mix its pad channels into real ones."""

    def __init__(self, sources: frozenset[str], reason: str) -> None:
        super().__init__(reason)
        self.sources, self.reason = sources, reason


@dataclass
class _Graph:
    """Lookups over one ModelProto (built once per pass)."""

    proto: Any
    initialisers: dict[str, Any]
    producers: dict[str, Any]
    readers: dict[str, list[Any]]
    channels: dict[str, int]
    ordered: list[Any]  # nodes in dependency order (a quantiser appends its Q/DQ nodes at the end)

    @classmethod
    def of(cls, proto: Any) -> _Graph:
        import onnx

        inferred = onnx.shape_inference.infer_shapes(proto)
        channels: dict[str, int] = {}
        for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            dims = info.type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].HasField("dim_value"):
                channels[info.name] = dims[1].dim_value
        readers: dict[str, list[Any]] = {}
        for node in proto.graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        producers = {out: n for n in proto.graph.node for out in n.output}
        return cls(proto, {i.name: i for i in proto.graph.initializer}, producers, readers, channels,
                   _dependency_order(proto.graph.node, producers))

    def constant(self, name: str) -> Any:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.initialisers[name]) if name in self.initialisers else None

    def dequantized_constant(self, name: str) -> Any:
        """The DequantizeLinear of an initialiser that ``name`` is, or None."""
        node = self.producers.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.initialisers:
            return node
        return None


def _dependency_order(nodes: Any, producers: Mapping[str, Any]) -> list[Any]:
    ordered: list[Any] = []
    placed: set[int] = set()
    for root in nodes:
        stack = [(root, False)]
        while stack:
            node, inputs_done = stack.pop()
            if id(node) in placed:
                continue
            if inputs_done:
                placed.add(id(node))
                ordered.append(node)
                continue
            stack.append((node, True))
            stack.extend((producers[name], False) for name in node.input if name in producers
                         and id(producers[name]) not in placed)
    return ordered


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _conv_parts(graph: _Graph, conv: Any) -> tuple[str, Any] | None:
    """(weight initialiser name, its DequantizeLinear or None) of a plain conv, or None when it can't be widened."""
    if conv.op_type != "Conv" or _attribute(conv, "group", 1) != 1 or len(conv.input) < 2:
        return None
    weight = conv.input[1]
    dq = graph.dequantized_constant(weight)
    source = dq.input[0] if dq is not None else weight
    if source not in graph.initialisers:
        return None
    if len(graph.readers.get(weight, [])) != 1 or (dq is not None and len(graph.readers.get(source, [])) != 1):
        return None  # a shared weight: widening it would widen its other reader too
    scale = graph.constant(dq.input[1]) if dq is not None else None
    if dq is not None and (scale is None or (_attribute(dq, "axis", 1) != 0 and scale.size != 1)):
        return None
    return source, dq


def _round_up(value: int) -> int:
    return -(-value // FAST_MULTIPLE) * FAST_MULTIPLE


def _candidates(graph: _Graph) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Convs whose output channel count misses the fast path: those that can be widened, and those that can't."""
    widen, kept = {}, {}
    for node in graph.proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2:
            continue
        parts = _conv_parts(graph, node)
        if parts is not None:
            channels = int(graph.constant(parts[0]).shape[0])
            if channels % FAST_MULTIPLE:
                widen[node.name] = (channels, _round_up(channels))
            continue
        weight = graph.dequantized_constant(node.input[1])
        value = graph.constant(weight.input[0] if weight is not None else node.input[1])
        if value is None or value.shape[0] % FAST_MULTIPLE:
            kept[node.name] = "grouped, shared or non-constant weights"
    return widen, kept


def _layouts(graph: _Graph, widen: Mapping[str, tuple[int, int]]) -> dict[str, tuple[tuple[int, ...], frozenset[str]]]:
    """Tensor -> (layout, convs whose pads it carries) for every widened tensor; raises _Conflict."""
    layouts: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {}
    for node in graph.ordered:
        padded = [name for name in node.input if name in layouts]
        if node.op_type == "Conv" and node.name in widen:
            if padded[1:]:
                raise _Conflict(layouts[padded[-1]][1], f"{node.name} reads a widened tensor as weight or bias")
            channels, wide = widen[node.name]
            layouts[node.output[0]] = (tuple(range(channels)) + (-1,) * (wide - channels), frozenset({node.name}))
            continue
        if not padded:
            continue
        sources = frozenset().union(*(layouts[name][1] for name in padded))
        if node.op_type == "Shape":
            if not _reads_only_spatial_sizes(graph, node):
                raise _Conflict(sources, f"{node.name} (Shape) reads the channel count of a widened tensor")
            continue
        layout = _passed_layout(graph, node, layouts, sources)
        if node.op_type != "Conv":  # a conv absorbs its input's layout in its weights
            layouts[node.output[0]] = (layout, sources)
    outputs = [o.name for o in graph.proto.graph.output if o.name in layouts]
    if outputs:
        raise _Conflict(layouts[outputs[0]][1], f"graph output {outputs[0]} would carry pad channels")
    return layouts


def _passed_layout(graph: _Graph, node: Any, layouts: Mapping[str, Any], sources: frozenset[str]) -> tuple[int, ...]:
    op = node.op_type
    first = layouts.get(node.input[0])
    if op == "Conv":
        if _conv_parts(graph, node) is None or node.input[0] not in layouts or any(i in layouts for i in node.input[1:]):
            raise _Conflict(sources, f"{node.name} cannot read a widened tensor")
        return ()
    if op in _CHANNELWISE_UNARY:
        if first is None or any(name in layouts for name in node.input[1:]):
            raise _Conflict(sources, f"{node.name} ({op}) takes a widened tensor as a parameter")
        if op in ("QuantizeLinear", "DequantizeLinear") and _per_channel(graph, node):
            raise _Conflict(sources, f"{node.name} quantises per channel")
        return first[0]
    if op == "Resize" and first is not None and not any(name in layouts for name in node.input[1:]):
        if len(node.input) > 3 and node.input[3]:
            raise _Conflict(sources, f"{node.name} resizes to explicit sizes, channels included")
        return first[0]
    if op in _ELEMENTWISE_BINARY:
        return _binary_layout(graph, node, layouts, sources)
    if op == "Concat" and _attribute(node, "axis", 0) in (1, -3):
        return _concat_layout(graph, node, layouts, sources)
    raise _Conflict(sources, f"{node.name} ({op}) could mix pad channels into real ones")


def _reads_only_spatial_sizes(graph: _Graph, shape: Any) -> bool:
    """Whether a Shape's result is used for batch or spatial sizes only (an attention resizing to its input)."""
    start = _attribute(shape, "start", 0)
    if start >= 2:
        return True
    for reader in graph.readers.get(shape.output[0], []):
        if reader.op_type == "Gather" and _attribute(reader, "axis", 0) == 0:
            indices = graph.constant(reader.input[1])
            if indices is not None and not {start + int(i) for i in indices.reshape(-1)} & {1, -3}:
                continue
        elif reader.op_type == "Slice" and len(reader.input) >= 3:
            begin, end = graph.constant(reader.input[1]), graph.constant(reader.input[2])
            axes = graph.constant(reader.input[3]) if len(reader.input) > 3 and reader.input[3] else None
            if (begin is not None and end is not None and begin.size == 1 and (axes is None or int(axes[0]) == 0)
                    and (start + int(begin[0]) >= 2 or 0 <= start + int(end[0]) <= 1)):
                continue
        return False
    return True


def _per_channel(graph: _Graph, node: Any) -> bool:
    scale = graph.constant(node.input[1]) if len(node.input) > 1 else None
    return scale is None or scale.size != 1


def _binary_layout(graph: _Graph, node: Any, layouts: Mapping[str, Any], sources: frozenset[str]) -> tuple[int, ...]:
    widened = [layouts[name][0] for name in node.input if name in layouts]
    if any(layout != widened[0] for layout in widened):
        raise _Conflict(sources, f"{node.name} ({node.op_type}) joins tensors widened differently")
    for name in node.input:
        if name in layouts:
            continue
        if _broadcasts_over_channels(graph, name):
            continue
        if _per_channel_constant(graph, name, len([c for c in widened[0] if c >= 0])) is None:
            raise _Conflict(sources, f"{node.name} ({node.op_type}) joins a widened tensor with an unwidened one")
    return widened[0]


def _broadcasts_over_channels(graph: _Graph, name: str) -> bool:
    value = graph.constant(name)
    dq = graph.dequantized_constant(name)
    if value is None and dq is not None:
        value = graph.constant(dq.input[0])
    if value is not None:
        return value.ndim < 3 or (value.ndim >= 3 and value.shape[-3] == 1)
    return graph.channels.get(name) == 1


def _per_channel_constant(graph: _Graph, name: str, channels: int) -> Any:
    value = graph.constant(name)
    if value is not None and value.ndim >= 3 and value.shape[-3] == channels and len(graph.readers[name]) == 1:
        return value
    return None


def _concat_layout(graph: _Graph, node: Any, layouts: Mapping[str, Any], sources: frozenset[str]) -> tuple[int, ...]:
    layout: list[int] = []
    offset = 0
    for name in node.input:
        if name in layouts:
            part = layouts[name][0]
        elif name in graph.channels:
            part = tuple(range(graph.channels[name]))
        else:
            raise _Conflict(sources, f"{node.name} concatenates {name}, whose channel count is unknown")
        layout.extend(c + offset if c >= 0 else -1 for c in part)
        offset += sum(1 for c in part if c >= 0)
    return tuple(layout)


def plan_padding(proto: Any) -> tuple[dict[str, tuple[int, int]], dict[str, str], dict[str, Any]]:
    """Which convs can be widened (name -> (channels, padded)), which can't (name -> why), and the layouts."""
    graph = _Graph.of(proto)
    widen, kept = _candidates(graph)
    while True:
        try:
            return widen, kept, _layouts(graph, widen)
        except _Conflict as conflict:
            for name in conflict.sources:
                kept[name] = f"not widened: {conflict.reason}"
                widen.pop(name, None)


def pad_channels(proto: Any) -> tuple[Any, ChannelPadding]:
    """A copy of QDQ (or float) ``proto`` with its convs widened to multiples of 4 channels; same outputs."""
    import onnx

    widen, kept, layouts = plan_padding(proto)
    result = onnx.ModelProto.FromString(proto.SerializeToString())
    if not widen:
        return result, ChannelPadding({}, kept)
    graph = _Graph.of(result)
    for node in list(result.graph.node):
        if node.op_type == "Conv" and (node.name in widen or node.input[0] in layouts):
            _widen_conv(graph, node, widen.get(node.name), layouts.get(node.input[0], (None,))[0])
        elif node.op_type in _ELEMENTWISE_BINARY and node.output[0] in layouts:
            _widen_constants(graph, node, layouts[node.output[0]][0])
    # Inferred shapes of widened tensors and weights are stale; ONNX Runtime infers them again.
    del result.graph.value_info[:]
    return result, ChannelPadding(dict(widen), {k: v for k, v in kept.items() if k not in widen})


def _replace_initialiser(graph: _Graph, name: str, value: Any) -> None:
    from onnx import numpy_helper

    old = graph.initialisers[name]
    new = numpy_helper.from_array(value.astype(numpy_helper.to_array(old).dtype), name)
    old.CopyFrom(new)


def _expand(value: Any, axis: int, layout: Iterable[int], fill: float) -> Any:
    """``value`` laid out along ``axis`` by ``layout`` (original index, or -1 for a pad filled with ``fill``)."""
    import numpy as np

    layout = list(layout)
    shape = list(value.shape)
    shape[axis] = len(layout)
    result = np.full(shape, fill, dtype=value.dtype)
    for position, original in enumerate(layout):
        if original >= 0:
            index = [slice(None)] * value.ndim
            index[axis] = position
            source = [slice(None)] * value.ndim
            source[axis] = original
            result[tuple(index)] = value[tuple(source)]
    return result


def _widen_conv(graph: _Graph, conv: Any, widen: tuple[int, int] | None, input_layout: Any) -> None:
    parts = _conv_parts(graph, conv)
    assert parts is not None
    weight_name, dq = parts
    weight = graph.constant(weight_name)
    out_layout = tuple(range(weight.shape[0])) + ((-1,) * (widen[1] - widen[0]) if widen else ())
    if input_layout is not None:
        weight = _expand(weight, 1, input_layout, 0)
    weight = _expand(weight, 0, out_layout, 0)
    _replace_initialiser(graph, weight_name, weight)
    if dq is not None and widen:
        scale = graph.constant(dq.input[1])
        if scale.size > 1:
            _replace_initialiser(graph, dq.input[1], _expand(scale, 0, out_layout, _PAD_WEIGHT_SCALE))
            if len(dq.input) > 2 and dq.input[2]:
                _replace_initialiser(graph, dq.input[2], _expand(graph.constant(dq.input[2]), 0, out_layout, 0))
    if widen and len(conv.input) > 2 and conv.input[2]:
        _widen_bias(graph, conv.input[2], out_layout, _input_scale(graph, conv) * _PAD_WEIGHT_SCALE)


def _input_scale(graph: _Graph, conv: Any) -> float:
    dq = graph.producers.get(conv.input[0])
    if dq is None or dq.op_type != "DequantizeLinear":
        return 1.0
    scale = graph.constant(dq.input[1])
    return float(scale.reshape(-1)[0]) if scale is not None else 1.0


def _widen_bias(graph: _Graph, name: str, layout: tuple[int, ...], pad_scale: float) -> None:
    """Zero bias for the pad channels; an INT8 bias's scale is input scale x weight scale, which ONNX Runtime
    checks before it fuses the conv into an integer kernel."""
    dq = graph.dequantized_constant(name)
    if dq is None:
        _replace_initialiser(graph, name, _expand(graph.constant(name), 0, layout, 0))
        return
    _replace_initialiser(graph, dq.input[0], _expand(graph.constant(dq.input[0]), 0, layout, 0))
    scale = graph.constant(dq.input[1])
    if scale.size > 1:
        _replace_initialiser(graph, dq.input[1], _expand(scale, 0, layout, pad_scale))
        if len(dq.input) > 2 and dq.input[2]:
            _replace_initialiser(graph, dq.input[2], _expand(graph.constant(dq.input[2]), 0, layout, 0))


def _widen_constants(graph: _Graph, node: Any, layout: tuple[int, ...]) -> None:
    channels = sum(1 for c in layout if c >= 0)
    for name in node.input:
        value = _per_channel_constant(graph, name, channels)
        if value is not None:
            _replace_initialiser(graph, name, _expand(value, value.ndim - 3, layout, _NEUTRAL[node.op_type]))

