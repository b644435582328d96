"""Where INT8 hurts an SR network: one structural analysis for every graph format.

An SR network's first conv sees raw pixels, the ops reading its features
feed rounding noise to the whole body, the global residual add sums those
shallow features with the body's output, and its last conv and upsampler
write the pixels; ops computing one value per channel (channel attention
after pooling) rescale whole feature maps. Quantising any of these costs far
more PSNR than it saves time. They are found by structure, not by name, so the
rule works for any exporter's or converter's naming and any model.

The analysis reads a :class:`Dataflow`: a small format-free view of a graph
(ops in execution order with a normalised :data:`OpKind`, tensor ids, which
tensors are constants, the shapes known). Each format builds that view (ONNX:
:func:`sr_export.quantize.graph.onnx_dataflow`; TFLite:
``TfliteGraph.dataflow``), so the ONNX Runtime / TensorRT QDQ path and the
TFLite path keep the same layers at higher precision by one rule. Where the
two paths have always merged overlapping findings differently, a
:class:`Conventions` says how, so neither path's files change.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

# What an op does, as far as the SR rules care:
#   conv     a convolution (the layers INT8 quantises for speed)
#   add      an elementwise sum (a residual join)
#   pass     moves, reshapes or pads values without arithmetic (pixel shuffle parts)
#   convert  changes the number format only (QUANTIZE / DEQUANTIZE): no statistic of its own
#   shape    reads only a tensor's shape, none of its values (a dynamic export's Resize sizes)
#   other    everything else
OpKind = Literal["conv", "add", "pass", "convert", "shape", "other"]

# The rules, in the order :func:`findings` applies them (and reasons are first recorded).
Rule = Literal["first conv", "shallow reader", "residual add", "tail", "statistic"]

FIRST_CONV = "first conv (sees raw pixels)"
SHALLOW_READER = "reads the shallow features"
RESIDUAL_ADD = "global residual add"

# The residual add joins the shallow features with the body's output: more than this many convs precede it.
MIN_BODY_CONVS = 2

TensorId = Hashable  # a tensor name (ONNX) or index (TFLite)


@dataclass(frozen=True)
class Op:
    """One op of a :class:`Dataflow`: what the SR rules need of it, nothing format-specific."""

    name: str  # what reasons are reported under (ONNX: the node name; TFLite: the first output's name)
    type: str  # the format's own op type, quoted in reasons ("Conv", "CONV_2D")
    kind: OpKind
    inputs: tuple[TensorId, ...]
    outputs: tuple[TensorId, ...]


@dataclass(frozen=True)
class Dataflow:
    """A graph as the SR rules see it; ``ops`` in execution (topological) order.

    ``shapes`` holds the tensor shapes that are known; a tensor missing from
    it has an unknown shape, and the shape-based rule (per-channel
    statistics) passes it by.
    """

    ops: tuple[Op, ...]
    inputs: tuple[TensorId, ...]
    outputs: tuple[TensorId, ...]
    constants: frozenset[TensorId] = frozenset()
    shapes: Mapping[TensorId, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One rule flagging one op: ``op`` is its position in :attr:`Dataflow.ops`."""

    rule: Rule
    op: int
    reason: str


@dataclass(frozen=True)
class Conventions:
    """How one format's path has always turned findings into reasons (kept so no file changes precision).

    ``overriding``: the rules whose reason replaces one an earlier rule gave the
    same op (the ONNX path lets the shallow-reader and residual-add reasons
    replace earlier ones; the TFLite path keeps the first reason).
    ``tail_by_name``: the tail walk treats ops sharing a name as one op (the
    ONNX path addresses nodes by name; the TFLite path by position).
    """

    overriding: frozenset[Rule] = frozenset()
    tail_by_name: bool = False


def kind_table(
    *,
    conv: Iterable[str],
    add: Iterable[str],
    pass_through: Iterable[str],
    convert: Iterable[str] = (),
    shape: Iterable[str] = (),
) -> dict[str, OpKind]:
    """Op type -> kind, from a format's sets of op types; a type in two sets is a mistake, so it raises."""
    table: dict[str, OpKind] = {}
    groups: tuple[tuple[OpKind, Iterable[str]], ...] = (
        ("conv", conv), ("add", add), ("pass", pass_through), ("convert", convert), ("shape", shape),
    )
    for kind, types in groups:
        for op_type in types:
            if op_type in table:
                raise ValueError(f"op type {op_type} is both {table[op_type]} and {kind}")
            table[op_type] = kind
    return table


def first_convs(graph: Dataflow) -> list[int]:
    """Convs reached from a graph input's values through no other conv.

    A shape read carries no pixel: in a dynamic export, E-RFDN's attention
    resizes to Shape(input), and the conv after that Resize is deep in the body.
    """
    reached = set(graph.inputs)
    firsts = []
    for position, op in enumerate(graph.ops):
        if op.kind == "shape" or not any(t in reached for t in op.inputs):
            continue
        if op.kind == "conv":
            firsts.append(position)
        else:
            reached.update(op.outputs)
    return firsts


def shallow_features(graph: Dataflow) -> set[TensorId]:
    """The first convs' outputs: the shallow feature maps the body and the global residual read."""
    return {t for position in first_convs(graph) for t in graph.ops[position].outputs}


def shallow_readers(graph: Dataflow) -> list[int]:
    """Ops that read the first convs' output directly.

    Quantising that tensor puts rounding noise in front of the whole body,
    which amplifies it: on E-RFDN x4 it alone costs ~1.7 dB of output PSNR.
    """
    shallow = shallow_features(graph)
    return [position for position, op in enumerate(graph.ops) if any(t in shallow for t in op.inputs)]


def global_residual_adds(graph: Dataflow) -> list[int]:
    """The latest add that joins the shallow features (or a pass-through of them) with the body's output.

    An add counts only after more than :data:`MIN_BODY_CONVS` convs, so the
    short skips inside the first blocks are not taken for the global one.
    """
    shallow = _passed_on(graph, shallow_features(graph))
    convs_seen, last = 0, None
    for position, op in enumerate(graph.ops):
        if op.kind == "conv":
            convs_seen += 1
        elif op.kind == "add" and any(t in shallow for t in op.inputs) and convs_seen > MIN_BODY_CONVS:
            last = position
    return [last] if last is not None else []


def tail_ops(graph: Dataflow, *, by_name: bool = False) -> list[int]:
    """Every op from the last conv(s) to the outputs: last conv, pixel shuffle, clamp, trailing adds.

    The walk goes back from the outputs through producers, stopping at convs
    (what feeds the last conv is the body) and never into constants.
    ``by_name``: ops sharing a name count as one (see :class:`Conventions`).
    """
    producer = _producers(graph)

    def key(position: int) -> Hashable:
        return graph.ops[position].name if by_name else position

    seen: set[Hashable] = set()
    stack = [producer[t] for t in graph.outputs if t in producer]
    while stack:
        position = stack.pop()
        if key(position) in seen:
            continue
        seen.add(key(position))
        op = graph.ops[position]
        if op.kind == "conv":
            continue  # the last conv is in; what feeds it is the body
        stack.extend(producer[t] for t in op.inputs if t in producer and t not in graph.constants)
    return [position for position in range(len(graph.ops)) if key(position) in seen]


def statistic_ops(graph: Dataflow) -> list[int]:
    """Ops whose output has one value per channel of a whole feature map (channel attention after pooling).

    The attention they drive rescales whole feature maps, so INT8 steps there
    shift entire channels (IMDN's contrast attention: ~6 dB of output PSNR),
    while they cost next to nothing in float. Needs shapes: ops whose output
    shape is unknown are passed by.
    """
    found = []
    for position, op in enumerate(graph.ops):
        shape = graph.shapes.get(op.outputs[0]) if op.outputs else None
        if shape and math.prod(shape) == max(shape) and op.kind != "convert":
            found.append(position)
    return found


def findings(graph: Dataflow, *, tail_by_name: bool = False) -> list[Finding]:
    """Every rule's findings, rule by rule (in :data:`Rule` order), each in execution order.

    An op may be found by several rules; :func:`merge_reasons` picks its reason.
    """
    found = [Finding("first conv", p, FIRST_CONV) for p in first_convs(graph)]
    found += [Finding("shallow reader", p, SHALLOW_READER) for p in shallow_readers(graph)]
    found += [Finding("residual add", p, RESIDUAL_ADD) for p in global_residual_adds(graph)]
    found += [Finding("tail", p, tail_reason(graph.ops[p])) for p in tail_ops(graph, by_name=tail_by_name)]
    found += [Finding("statistic", p, statistic_reason(graph.ops[p])) for p in statistic_ops(graph)]
    return found


def tail_reason(op: Op) -> str:
    """The reason names the op type: a report then tells the last conv from the upsampler's reshapes."""
    what = "last conv" if op.kind == "conv" else "upsampler / output"
    return f"{what} ({op.type})"


def statistic_reason(op: Op) -> str:
    return f"per-channel statistic ({op.type})"


def merge_reasons(graph: Dataflow, found: Iterable[Finding], conventions: Conventions) -> dict[str, str]:
    """Op name -> one reason: the first one found, unless a later rule overrides (ordered by first finding)."""
    reasons: dict[str, str] = {}
    for finding in found:
        name = graph.ops[finding.op].name
        if finding.rule in conventions.overriding:
            reasons[name] = finding.reason
        else:
            reasons.setdefault(name, finding.reason)
    return reasons


def sr_sensitive(graph: Dataflow, conventions: Conventions) -> dict[str, str]:
    """Op name -> why it is SR-sensitive (what the SR-aware schemes keep at higher precision)."""
    return merge_reasons(graph, findings(graph, tail_by_name=conventions.tail_by_name), conventions)


def _producers(graph: Dataflow) -> dict[TensorId, int]:
    """Tensor -> position of the op writing it (in a well-formed graph there is one; the last one wins)."""
    return {t: position for position, op in enumerate(graph.ops) for t in op.outputs}


def _passed_on(graph: Dataflow, tensors: set[TensorId]) -> set[TensorId]:
    """``tensors`` and what pass-through ops make of them (same values, moved), followed in execution order."""
    reached = set(tensors)
    for op in graph.ops:
        if op.kind == "pass" and any(t in reached for t in op.inputs):
            reached.update(op.outputs)
    return reached
