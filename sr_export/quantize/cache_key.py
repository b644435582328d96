"""The one key every INT8 calibration cache is stored under.

Whatever a build calibrates (ONNX Runtime statistics, TFLite ranges, TensorRT
10's entropy calibrator), the result depends on the same four things, and the
key names exactly those:

- **weights**: the checkpoint's sha256 (for a graph without one, a hash of its
  initialisers);
- **graph**: what turns the weights into the graph that is calibrated: the
  ONNX graph's identity, or the converter and its settings;
- **calibration**: the :class:`~sr_export.quantize.calibration_data.CalibrationSet`'s
  identity (recipe, scale, input encoding) and the recipe's method;
- **layout**: the order of the axes the batches are fed in.

A re-export that changes the graph, another checkpoint, recipe or layout
therefore never reuses a stale entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export.core.cache import calibration_cache_dir

KEY_VERSION = 2


@dataclass(frozen=True)
class CalibrationKey:
    weights: str
    graph: str
    calibration: Mapping[str, Any] = field(default_factory=dict)
    layout: str = "NCHW"

    def to_dict(self) -> dict[str, Any]:
        return {"v": KEY_VERSION, "weights": self.weights, "graph": self.graph,
                "calibration": dict(self.calibration), "layout": self.layout.upper()}

    @property
    def digest(self) -> str:
        payload = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def path(self, kind: str | None = None, suffix: str = ".json") -> Path:
        """The cache file for this key; ``kind`` tells the caches of one key apart (``tflite``, ``tensorrt``)."""
        return calibration_cache_dir() / f"{self.digest}{'-' + kind if kind else ''}{suffix}"


def onnx_graph_identity(proto: Any) -> str:
    """The graph's tensor names in order: exporters name tensors differently, and calibration ranges are by name."""
    digest = hashlib.sha256()
    for node in proto.graph.node:
        digest.update(("|".join(node.output) + ";").encode())
    return f"onnx:{digest.hexdigest()[:24]}"


def initialiser_hash(proto: Any) -> str:
    """For graphs without a checkpoint behind them (random init, a foreign file): the weights are the initialisers."""
    digest = hashlib.sha256()
    for init in proto.graph.initializer:
        digest.update(init.raw_data)
    return digest.hexdigest()
