"""Which kernels ONNX Runtime actually runs for a graph: integer convs, float convs, layout changes.

A QDQ graph only says what may be integer. ONNX Runtime decides at load time
which Q/DQ groups it fuses into integer kernels (``QLinearConv``,
``QLinearAdd``, ...); a conv whose neighbourhood breaks the pattern runs in
float between a DequantizeLinear and a QuantizeLinear, and every border
between its NHWC integer regions and NCHW float ones costs a Transpose. This
module loads the graph the way the runner does, saves the optimised graph
ORT made, and counts what is in it, so a slow INT8 file can be explained.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError, runtime_error_line
from sr_export.export.session import cpu_session

INTEGER_CONV_OPS = frozenset({"QLinearConv", "ConvInteger", "NhwcQLinearConv"})
FLOAT_CONV_OPS = frozenset({"Conv", "FusedConv"})
# ORT suffixes the nodes its transformers create from a source node with "_token_<n>" (QDQ fusion)
# or replaces the name ("conv2d_nchwc"); the first is how a fused kernel is traced to its source conv.
_TOKEN = re.compile(r"_token_\d+$")


@dataclass(frozen=True)
class KernelReport:
    """What ONNX Runtime runs for one graph on this machine's CPU."""

    source_convs: int
    integer_convs: tuple[str, ...]  # source conv node names ORT runs as integer kernels
    float_convs: tuple[str, ...]  # source conv node names left in float
    op_counts: dict[str, int]  # op type ('domain:type' outside the default domain) -> nodes in the optimised graph

    @property
    def transposes(self) -> int:
        return self.op_counts.get("Transpose", 0)

    @property
    def dequantize_left(self) -> int:
        return self.op_counts.get("DequantizeLinear", 0)

    def summary(self) -> str:
        line = (f"ONNX Runtime runs {len(self.integer_convs)} of {self.source_convs} convs as integer kernels; "
                f"{self.transposes} layout transposes, {self.dequantize_left} DequantizeLinear left")
        if self.float_convs:
            line += f"; float convs: {', '.join(self.float_convs)}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"source_convs": self.source_convs, "integer_convs": list(self.integer_convs),
                "float_convs": list(self.float_convs), "transposes": self.transposes,
                "dequantize_left": self.dequantize_left, "op_counts": dict(self.op_counts)}


def source_name(optimised_name: str) -> str:
    """'node_conv2d_3_token_47' -> 'node_conv2d_3': the node an ORT-fused kernel was made from."""
    return _TOKEN.sub("", optimised_name)


def count_kernels(source: Any, optimised: Any) -> KernelReport:
    """Compare a graph (ModelProto) with the graph ONNX Runtime optimised it into."""
    convs = [node.name for node in source.graph.node if node.op_type == "Conv"]
    integer_sources = {source_name(node.name) for node in optimised.graph.node if node.op_type in INTEGER_CONV_OPS}
    counts = Counter(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
                     for node in optimised.graph.node)
    integer = tuple(name for name in convs if name in integer_sources)
    floating = tuple(name for name in convs if name not in integer_sources)
    return KernelReport(len(convs), integer, floating, dict(counts.most_common()))


def kernel_report(path: Path, threads: int | None = None) -> KernelReport:
    """Load ``path`` as the ONNX Runtime runner does and count the kernels of the graph it runs."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="sr-export-ort-") as folder:
        optimised_path = Path(folder) / "optimised.onnx"
        try:
            cpu_session(path, threads, optimized_model_path=optimised_path)
        except Exception as exc:
            raise SrExportError(f"ONNX Runtime cannot load {path}: {runtime_error_line(exc)}") from exc
        optimised = onnx.load(str(optimised_path), load_external_data=False)
    return count_kernels(onnx.load(str(path), load_external_data=False), optimised)
