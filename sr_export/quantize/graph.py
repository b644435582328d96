"""Where INT8 hurts an SR network, found in its ONNX graph.

An SR network's first conv sees raw pixels, its last conv and pixel shuffle
write them, and the global residual add sums a shallow feature map with the
whole body's output; quantising any of these costs far more PSNR than it
saves time. They are found by structure, not by name, so the rule works for
any exporter's naming and any model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CONV_TYPES = frozenset({"Conv", "ConvTranspose"})
# Ops that only pass a tensor on (no arithmetic a quantiser would touch) when walking the graph.
_PASS_THROUGH = frozenset({"Identity", "Cast", "Reshape", "Transpose", "Pad"})


def conv_nodes(graph: Any) -> list[Any]:
    return [n for n in graph.node if n.op_type in CONV_TYPES]


def first_convs(graph: Any) -> list[Any]:
    """Convs reached from the graph input through no other conv."""
    inputs = {i.name for i in graph.input}
    reached = set(inputs)
    firsts = []
    for node in graph.node:
        if not any(name in reached for name in node.input):
            continue
        if node.op_type in CONV_TYPES:
            firsts.append(node)
        else:
            reached.update(node.output)
    return firsts


def tail_nodes(graph: Any) -> list[Any]:
    """Every node from the last convs to the output: last conv, pixel shuffle, clamp, trailing adds."""
    producer = {out: node for node in graph.node for out in node.output}
    outputs = [o.name for o in graph.output]
    tail: dict[str, Any] = {}
    stack = [producer[name] for name in outputs if name in producer]
    while stack:
        node = stack.pop()
        if node.name in tail:
            continue
        tail[node.name] = node
        if node.op_type in CONV_TYPES:
            continue  # the last conv is in; what feeds it is the body
        stack.extend(producer[name] for name in node.input if name in producer)
    return [n for n in graph.node if n.name in tail]


def global_residual_adds(graph: Any) -> list[Any]:
    """The Add that joins a first conv's features with the body's output (the latest such Add)."""
    firsts = first_convs(graph)
    if not firsts:
        return []
    shallow = {out for node in firsts for out in node.output}
    # Follow pass-through ops and activations applied right on the shallow features.
    for node in graph.node:
        if node.op_type in _PASS_THROUGH and any(i in shallow for i in node.input):
            shallow.update(node.output)
    convs_seen = 0
    last = None
    for node in graph.node:
        if node.op_type in CONV_TYPES:
            convs_seen += 1
        elif node.op_type in ("Add", "Sum") and any(i in shallow for i in node.input) and convs_seen > 2:
            last = node
    return [last] if last is not None else []


def shallow_feature_readers(graph: Any) -> list[Any]:
    """Nodes that read the first convs' output directly.

    Quantising that tensor puts rounding noise in front of the whole body,
    which amplifies it: on E-RFDN x4 it alone costs ~1.7 dB of output PSNR.
    """
    shallow = {out for node in first_convs(graph) for out in node.output}
    return [n for n in graph.node if any(i in shallow for i in n.input)]


def sr_float_nodes(graph: Any) -> dict[str, str]:
    """Node name -> why it stays in float, for the SR-aware default."""
    reasons: dict[str, str] = {}
    for node in first_convs(graph):
        reasons[node.name] = "first conv (sees raw pixels)"
    for node in shallow_feature_readers(graph):
        reasons[node.name] = "reads the shallow features"
    for node in global_residual_adds(graph):
        reasons[node.name] = "global residual add"
    for node in tail_nodes(graph):
        what = "last conv" if node.op_type in CONV_TYPES else "upsampler / output"
        reasons.setdefault(node.name, f"{what} ({node.op_type})")
    return reasons


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
