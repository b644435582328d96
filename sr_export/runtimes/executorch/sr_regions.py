"""The SR-sensitive ops of an exported PyTorch graph, found by :mod:`sr_export.quantize.sr_layers`' rules.

PT2E quantises a ``torch.export`` graph (aten ops). This module views that
graph as a :class:`~sr_export.quantize.sr_layers.Dataflow`, so the same
structural rules that pick the float layers of the ONNX and TFLite INT8 paths
(first conv, the ops reading its features, the global residual add, the last
conv and upsampler, per-channel statistics) pick them here; the XNNPACK
quantizer is then told, through its node filter, to leave them float.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sr_export.quantize.sr_layers import Conventions, Dataflow, Op, OpKind, kind_table, sr_sensitive

# aten op packets (the overload's name without its variant) by what the SR rules care about.
KINDS: dict[str, OpKind] = kind_table(
    conv=("aten.conv2d", "aten.convolution", "aten.conv_transpose2d"),
    add=("aten.add", "aten.add_"),
    pass_through=("aten.view", "aten.reshape", "aten.permute", "aten.pixel_shuffle", "aten.slice", "aten.split",
                  "aten.split_with_sizes", "aten.contiguous", "aten.clone", "aten.pad", "aten.constant_pad_nd",
                  "aten.unsqueeze", "aten.squeeze", "getitem"),
    shape=("aten.sym_size",),
)
CONVENTIONS = Conventions()


def packet_name(target: Any) -> str:
    """'aten.conv2d' for ``torch.ops.aten.conv2d.default``; 'getitem' for operator.getitem."""
    name = getattr(target, "__name__", "")
    if name == "getitem":
        return name
    text = str(target)
    return text.rsplit(".", 1)[0] if text.startswith("aten.") else text


def dataflow(graph_module: Any) -> Dataflow:
    """``graph_module``'s graph (an exported module) as the SR rules' format-free view."""
    ops, constants, shapes = [], set(), {}
    inputs, outputs = [], []
    for node in graph_module.graph.nodes:
        value = node.meta.get("val")
        shape = tuple(getattr(value, "shape", ()) or ())
        if shape and all(isinstance(d, int) for d in shape):
            shapes[node.name] = shape
        if node.op == "get_attr":
            constants.add(node.name)
        elif node.op == "placeholder":
            inputs.append(node.name)
        elif node.op == "output":
            outputs.extend(n.name for n in node.all_input_nodes)
        elif node.op == "call_function":
            packet = packet_name(node.target)
            ops.append(Op(node.name, packet, KINDS.get(packet, "other"),
                          tuple(n.name for n in node.all_input_nodes), (node.name,)))
    return Dataflow(tuple(ops), tuple(inputs), tuple(outputs), frozenset(constants), shapes)


def float_nodes(graph_module: Any, keep_modules: Iterable[str] = (), *, sr_rules: bool = True) -> dict[str, str]:
    """Node name -> why it stays float: the SR rules' findings (``sr_rules``), plus every node inside
    ``keep_modules`` (dotted module names as ``named_modules`` gives them)."""
    reasons = sr_sensitive(dataflow(graph_module), CONVENTIONS) if sr_rules else {}
    wanted = tuple(keep_modules)
    if wanted:
        for node in graph_module.graph.nodes:
            stack = node.meta.get("nn_module_stack") or {}
            paths = {str(path) for path, _ in stack.values()}
            hit = next((m for m in wanted if any(p == m or p.startswith(f"{m}.") for p in paths)), None)
            if node.op == "call_function" and hit is not None:
                reasons.setdefault(node.name, f"inside {hit} (keep_float)")
    return reasons
