"""Why litert-torch refused a model: the op, the PyTorch module behind it and what helps, in one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sr_export.core.errors import first_line

# What to suggest when the converter rejects an op: (pattern in the error, PyTorch module type, hint).
_KNOWN_FAILURES: tuple[tuple[str, str, str], ...] = (
    ("lhs_dilation", "ConvTranspose2d",
     "a transposed conv with output_padding; the transposed-conv-output-padding rewrite converts it "
     "(drop --no-rewrite)"),
    ("convolution", "ConvTranspose2d",
     "a transposed conv TFLite's TRANSPOSE_CONV cannot express (e.g. padding beyond its SAME/VALID forms); "
     "use padding=0 and crop after it, or a conv + pixel shuffle"),
    ("guard", "",
     "the model branches on its input size; convert at another --shape (multiples of 8 are safest)"),
)


def diagnose(module: Any, sample: Any, exc: BaseException, *, rewrites_on: bool) -> str:
    """One line naming the op the converter rejected, the PyTorch node(s) behind it and what helps."""
    text = str(exc)
    op = _search(r"operation '([\w.]+)'", text) or _search(r"\b((?:mhlo|stablehlo|tfl|aten)\.[\w.]+)", text)
    where = re.search(r"([^\s:'\"]+\.py):(\d+):\d+:\s*error", text)
    nodes = _nodes_at(module, sample, where.group(1), int(where.group(2))) if where else []
    what = f"op {op}" if op else first_line(exc)
    message = f"litert-torch cannot convert {what}"
    if nodes:
        message += " at " + ", ".join(f"{name} ({kind})" for name, kind in nodes[:3])
    elif where:
        message += f" (from {Path(where.group(1)).name}:{where.group(2)})"
    kinds = {kind for _, kind in nodes}
    for pattern, kind, hint in _KNOWN_FAILURES:
        if pattern in text and (not kind or kind in kinds or not nodes):
            if "drop --no-rewrite" in hint and (rewrites_on or not _has_output_padding(module)):
                continue
            return f"{message}; {hint}"
    if not rewrites_on:
        return f"{message}; try without --no-rewrite"
    return f"{message}; try --layout nchw or another --shape, or rewrite that module (see sr_export.rewrites)"


def _has_output_padding(module: Any) -> bool:
    from sr_export.rewrites.transposed_conv import rewritable

    return any(rewritable(m) for m in module.modules())


def _nodes_at(module: Any, sample: Any, filename: str, line: int) -> list[tuple[str, str]]:
    """PyTorch modules whose traced ops come from ``filename:line`` (found by re-exporting; best effort)."""
    import torch

    try:
        graph = torch.export.export(module, (sample,)).graph
    except Exception:  # the converter's own export failed too: nothing more to learn here
        return []
    found: list[tuple[str, str]] = []
    for node in graph.nodes:
        trace = node.meta.get("stack_trace") or ""
        stack = node.meta.get("nn_module_stack") or {}
        if f'{filename}", line {line}' in trace and stack:
            path, kind = list(stack.values())[-1]
            kind_name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1].strip("'>")
            entry = (_module_path(path) or node.name, kind_name)
            if entry not in found:
                found.append(entry)
    return found


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def _module_path(path: str) -> str:
    """``L['self'].wrapped.body.conv`` -> ``body.conv`` (without the export root and the NHWC I/O wrapper)."""
    path = re.sub(r"^L\['self'\]\.?", "", path)
    return path.removeprefix("wrapped.") if path != "wrapped" else ""
