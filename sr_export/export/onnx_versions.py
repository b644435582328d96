"""The ONNX IR version a graph needs, and the oldest ONNX Runtime measured to load sr-export's files.

The onnx package stamps every graph with its own newest IR version (10 with
onnx 1.16+), and ONNX Runtime before 1.18 refuses such a file outright
("Unsupported model IR version: 10, max supported IR version: 9"), whatever
its opset, although nothing in an SR graph needs IR 10. So every ONNX file
sr-export writes carries the lowest IR version its opsets and tensor types
allow (:func:`lower_ir_version`; onnx's own release table pairs each opset
with its IR version: opset 18 came with IR 8), and its metadata records what
it needs (:func:`requirements`).

Measured (IMDN x2 FP32 and E-RFDN x4 INT8 QDQ at opset 18, IR 8, on one
input each against ONNX Runtime 1.32): onnxruntime 1.15.1, 1.16.3, 1.17.3
and 1.18.0 load and run both (the same outputs as one another; 1.14.1 did not
install for Python 3.11 here). At IR 10 only 1.18.0 does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Tensor element types that came with a later IR version (onnx.TensorProto codes): float8 (IR 9), 4-bit (IR 10).
_TYPE_IR = {17: 9, 18: 9, 19: 9, 20: 9, 21: 10, 22: 10}
_DOMAIN_COLUMN = {"": 2, "ai.onnx": 2, "ai.onnx.ml": 3}
# (the highest IR version, the highest default-domain opset measured) -> the oldest release measured to load it
MEASURED_ORT = (((9, 18), "onnxruntime 1.15"), ((10, 21), "onnxruntime 1.18"))


def lowest_ir_version(proto: Any) -> int:
    """The lowest IR version ``proto``'s opsets and tensor types allow (never above the one it has)."""
    from onnx import helper

    needed = 3
    for entry in proto.opset_import:
        column = _DOMAIN_COLUMN.get(entry.domain)
        if column is None:
            continue  # contrib domains (com.microsoft) are ONNX Runtime's own, not versioned by IR
        pairs = [row[1] for row in helper.VERSION_TABLE if row[column] == entry.version]
        if not pairs:
            return int(proto.ir_version)  # an opset onnx does not know yet: keep what it has
        needed = max(needed, min(pairs))
    for elem_type in _element_types(proto.graph):
        needed = max(needed, _TYPE_IR.get(elem_type, 3))
    return min(needed, int(proto.ir_version))


def _element_types(graph: Any) -> set[int]:
    types = {tensor.data_type for tensor in graph.initializer}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.type.HasField("tensor_type"):
            types.add(info.type.tensor_type.elem_type)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                types.add(attribute.t.data_type)
            for sub in [*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs]:
                types |= _element_types(sub)
    return types


def lower_ir_version(proto: Any) -> int:
    """Give ``proto`` the lowest IR version it allows (in place); returns it."""
    proto.ir_version = lowest_ir_version(proto)
    return int(proto.ir_version)


def default_opset(proto: Any) -> int | None:
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def requirements(proto: Any) -> dict[str, Any]:
    """What the metadata records: the oldest ONNX Runtime measured to load a file like this, and why."""
    ir, opset = int(proto.ir_version), default_opset(proto)
    record: dict[str, Any] = {"runtime": "onnxruntime", "set_by": f"IR version {ir}, opset {opset}"}
    for (max_ir, max_opset), release in MEASURED_ORT:
        if ir <= max_ir and opset is not None and opset <= max_opset:
            record["min_runtime"] = release
            return record
    record["min_runtime"] = "unknown (newer than sr-export has measured)"
    return record


def too_old_for(requirements: Mapping[str, Any], found: str) -> str | None:
    """Why a device whose ONNX Runtime is ``found`` ("onnxruntime 1.14.1") cannot load a file; None if it can
    (or either version cannot be read)."""
    needed, have = _version_in(str(requirements.get("min_runtime", ""))), _version_in(found)
    if needed is None or have is None or have >= needed:
        return None
    return (f"needs onnxruntime {'.'.join(map(str, needed))} or newer ({requirements.get('set_by', '?')}); the "
            f"device has onnxruntime {'.'.join(map(str, have))}: upgrade it there (pip install 'onnxruntime>="
            f"{'.'.join(map(str, needed))}')")


def _version_in(text: str) -> tuple[int, int] | None:
    match = re.search(r"onnxruntime[ =-]+(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None
