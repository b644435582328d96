"""What a TFLite file needs from the runtime that loads it, and fitting a file to an older runtime.

:func:`needs` lists, per op, the op version its signature asks for
(:mod:`sr_export.runtimes.tflite.op_versions`) and the first release that
runs it (:mod:`sr_export.runtimes.tflite.releases`), integer kernels that
came without a version included. :func:`requirements` is the summary the
metadata records (the minimum runtime and the op that sets it).

:func:`fit_to_runtime` makes an INT8 file loadable by an older runtime:
an integer op the runtime has no kernel for, but whose float kernel it has
(IMDN's SQRT of a contrast statistic), is kept in float inside the integer
graph, between a DEQUANTIZE and a QUANTIZE that keep its calibrated
parameters. Any other op the runtime lacks is refused in one line naming
the op, the module it comes from and the oldest release that takes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tflite.graph import TfliteGraph
from sr_export.runtimes.tflite.op_versions import activation_type, required_version
from sr_export.runtimes.tflite.releases import Release, kernel_release, op_release

# Integer ops that have a float kernel in every release (version 1) and compute the same function
# in float: what fit_to_runtime may keep in float when a runtime lacks their integer kernel.
FLOAT_FALLBACK_OPS = frozenset({"SQRT", "RSQRT", "LOGISTIC", "TANH", "MEAN", "LEAKY_RELU", "HARD_SWISH"})
MIN_RUNTIME_KEY = "min_runtime_version"  # the TFLite metadata entry the converter writes (16 bytes)
OLDEST = Release.tf("1.5.0")


@dataclass(frozen=True)
class OpNeed:
    """One op's need: its name, activation type, version and the first release that runs it."""

    index: int
    op: str
    dtype: str
    version: int
    release: Release
    module: str
    why: str  # "version 3" or "int8 kernel"

    def describe(self) -> str:
        return f"{self.op} ({self.dtype}, {self.why}) in {self.module}"


def module_of(name: str) -> str:
    """'IMDB1.cca (ContrastChannelAttention)' from a litert-torch tensor name (its module path); else the name."""
    path = name.split(";")[0].split("/")
    parts = []
    for entry in path[1:]:  # the first entry is the I/O wrapper around the model
        cls, _, attribute = entry.rsplit(".", 1)[-1].partition("_")
        parts.append((attribute, cls))
    if not parts:
        return name.split(";")[0] or "the graph"
    attributes = ".".join(attribute for attribute, _ in parts[1:] if attribute) or parts[0][1]
    return f"{attributes} ({parts[-1][1]})"


def needs(graph: TfliteGraph) -> list[OpNeed]:
    """Every op's need, in graph order (ops and versions the tables lack count as the oldest release)."""
    found = []
    for index, op in enumerate(graph.ops):
        name, dtype = graph.op_name(op), activation_type(graph, op)
        version = required_version(graph, op)
        release = op_release(name, version) or OLDEST
        why = f"version {version}"
        kernel = kernel_release(name, dtype)
        if kernel is not None and kernel > release:
            release, why = kernel, f"{dtype} kernel"
        found.append(OpNeed(index, name, dtype, version, release, module_of(graph.output_name(op)), why))
    return found


def minimum(found: Iterable[OpNeed]) -> OpNeed | None:
    """The need that sets the minimum release (the first op with the highest one)."""
    best: OpNeed | None = None
    for need in found:
        if best is None or need.release > best.release:
            best = need
    return best


def requirements(graph: TfliteGraph, built_for: Release | None = None) -> dict[str, Any]:
    """What the metadata records: the minimum release, what sets it, and the runtime it was built for."""
    top = minimum(needs(graph))
    release = top.release if top is not None else OLDEST
    record: dict[str, Any] = {"runtime": "tflite", "min_runtime": release.label,
                              "set_by": top.describe() if top is not None else "no ops"}
    if built_for is not None:
        record["built_for"] = built_for.label
    return record


def file_requirements(path: Path) -> dict[str, Any]:
    """:func:`requirements` of a .tflite file as it is (empty when LiteRT's schema reader is not installed)."""
    try:
        graph = TfliteGraph.from_bytes(Path(path).read_bytes())
    except ModuleNotFoundError:
        return {}
    return requirements(graph)


def too_new(graph: TfliteGraph, target: Release) -> list[OpNeed]:
    return [need for need in needs(graph) if need.release > target]


def fit_to_runtime(graph: TfliteGraph, target: Release) -> list[str]:
    """Keep in float the integer ops ``target`` has no kernel for; refuse the rest. Returns what was done."""
    done = []
    for need in too_new(graph, target):
        op = graph.ops[need.index] if need.index < len(graph.ops) else None
        if op is None or need.op not in FLOAT_FALLBACK_OPS or need.dtype not in ("int8", "int16"):
            raise SrExportError(_refusal(need, target))
    # Ops are edited from the last to the first so the indices found above stay valid.
    for need in sorted(too_new(graph, target), key=lambda n: -n.index):
        keep_in_float(graph, graph.ops[need.index])
        done.append(f"{need.op} in {need.module} kept in float ({target.label} has no {need.dtype} kernel for it)")
    left = too_new(graph, target)
    if left:
        raise SrExportError(_refusal(left[0], target))
    return list(reversed(done))


def _refusal(need: OpNeed, target: Release) -> str:
    return (f"{target.label} cannot run {need.describe()}: it needs {need.release.label} or newer; build for that "
            "runtime, or with another --int8-scheme / without --int8")


def keep_in_float(graph: TfliteGraph, op: Any) -> None:
    """DEQUANTIZE -> float ``op`` -> QUANTIZE in place of an integer ``op``; its tensors keep their parameters."""
    from sr_export.runtimes.tflite.graph_edits import insert_op, new_tensor

    source, target = int(op.inputs[0]), int(op.outputs[0])
    float_in = new_tensor(graph, source, "float32", None)
    float_out = new_tensor(graph, target, "float32", None)
    position = next(i for i, o in enumerate(graph.subgraph.operators) if o is op)
    insert_op(graph, position, "DEQUANTIZE", source, float_in)
    op.inputs = [float_in, *list(op.inputs[1:])]
    op.outputs = [float_out]
    insert_op(graph, position + 2, "QUANTIZE", float_out, target)


def write_min_runtime(graph: TfliteGraph) -> str | None:
    """Set the file's own ``min_runtime_version`` entry from its op versions (as the TF Lite converter does).

    The entry holds a TF Lite version in 16 bytes; a need on the ai-edge-litert line (an integer kernel
    without a version) is beyond it and stays in the sidecar. Returns what was written (None: no entry).
    """
    top = max((op_release(n.op, n.version) or OLDEST for n in needs(graph)), default=OLDEST)
    major, minor, _ = top.key
    text = f"{major}.{minor}.0"
    for entry in graph.model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
        if name == MIN_RUNTIME_KEY:
            buffer = graph.model.buffers[entry.buffer]
            size = max(len(buffer.data) if buffer.data is not None else 0, 16)
            buffer.data = list(text.encode().ljust(size, b"\0"))
            return text
    return None


def read_min_runtime(graph: TfliteGraph) -> str | None:
    """The file's own ``min_runtime_version`` entry, if it has one."""
    for entry in graph.model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
        if name == MIN_RUNTIME_KEY:
            data = graph.model.buffers[entry.buffer].data
            return bytes(data).rstrip(b"\0").decode() if data is not None else None
    return None
