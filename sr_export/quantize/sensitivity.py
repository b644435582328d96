"""Per-layer and per-tensor INT8 sensitivity, measured on calibration patches (never on the evaluation images).

Three views, each a few small inferences per layer or tensor:

* ``only``: the PSNR between the float output and the output with only that
  layer in INT8 (low = sensitive). Shows where INT8 hurts in isolation.
* ``float-one``: starting from the full INT8 model, how many dB of output
  PSNR come back when only that layer returns to float. Errors made early are
  amplified by the layers after them, which ``only`` cannot see.
* ``float-tensor``: the same question per activation tensor: how much output
  PSNR comes back when only that tensor's Q/DQ pair is removed from the full
  INT8 graph. Rounding noise lives in activations, and keeping a float conv
  between INT8 neighbours still rounds its input and output; this is the view
  that picks what mixed precision keeps (one graph build, then cheap edits).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.graph import conv_nodes
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics

DEFAULT_PATCHES = 6


@dataclass(frozen=True)
class LayerSensitivity:
    name: str  # a node (only, float-one views) or an activation tensor (float-tensor view)
    op_type: str  # of the node, or of the tensor's producer
    psnr_db: float  # output PSNR vs float of the variant measured (only this one INT8, or only this one float)
    gain_db: float | None = None  # output PSNR regained when only this one is float (float-* views)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_type": self.op_type,
                "psnr_db": round(self.psnr_db, 3) if math.isfinite(self.psnr_db) else None,
                "gain_db": round(self.gain_db, 3) if self.gain_db is not None else None}


def _session(proto: Any) -> Any:
    from sr_export.export.session import cpu_session

    return cpu_session(proto.SerializeToString())


def _run(session: Any, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
    name = session.get_inputs()[0].name
    return [session.run(None, {name: batch})[0] for batch in batches]


def outputs_psnr(got: Sequence[np.ndarray], want: Sequence[np.ndarray], data_range: float) -> float:
    """PSNR over all outputs together (outputs clamped to the data range first, as images are)."""
    errors = [np.mean((np.clip(g, 0, data_range) - np.clip(w, 0, data_range)) ** 2, dtype=np.float64)
              for g, w in zip(got, want)]
    mse = float(np.mean(errors))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def sensitivity_batches(artifact: Artifact, recipe: CalibrationRecipe, count: int = DEFAULT_PATCHES,
                        calibration: CalibrationSet | None = None) -> list[np.ndarray]:
    """The first ``count`` calibration batches (of ``calibration``, default the recipe's set for the model)."""
    calibration = calibration if calibration is not None else CalibrationSet(recipe, artifact.metadata.model_info())
    return list(calibration.at_size(artifact.metadata.static_hw).subset(count))


@dataclass(frozen=True)
class OutputProbe:
    """Calibration patches and the float graph's outputs on them: scores any variant of the graph."""

    batches: Sequence[np.ndarray]
    reference: Sequence[np.ndarray]
    data_range: float

    @classmethod
    def of(cls, proto: Any, artifact: Artifact, recipe: CalibrationRecipe, patches: int,
           calibration: CalibrationSet | None = None) -> OutputProbe:
        batches = sensitivity_batches(artifact, recipe, patches, calibration)
        return cls(batches, _run(_session(proto), batches), artifact.metadata.data_range)

    def psnr(self, model: Any) -> float:
        """Output PSNR of ``model`` (a ModelProto) against the float graph."""
        return outputs_psnr(_run(_session(model), self.batches), self.reference, self.data_range)


def layer_sensitivity(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    artifact: Artifact,
    *,
    flavour: str = "onnxruntime",
    exclude: Sequence[str] = (),
    layers: Sequence[str] | None = None,
    patches: int = DEFAULT_PATCHES,
    mode: str = "only",
    progress: Callable[[], Any] | None = None,
) -> list[LayerSensitivity]:
    """Sensitivity of every conv layer not in ``exclude`` (or of ``layers``), most sensitive first.

    ``mode`` 'only' quantises one layer at a time; 'float-one' quantises all
    but ``exclude`` and returns one layer at a time to float.
    """
    from sr_export.quantize.qdq_graph import quantized_proto

    if mode not in ("only", "float-one"):
        raise ValueError(f"unknown sensitivity mode {mode!r}")
    probe = OutputProbe.of(proto, artifact, recipe, patches)
    op_types = {n.name: n.op_type for n in proto.graph.node}
    names = list(layers) if layers is not None else [n.name for n in conv_nodes(proto.graph) if n.name not in exclude]
    base = None
    if mode == "float-one":
        base = probe.psnr(quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=list(exclude)))
    results = []
    for name in names:
        if mode == "only":
            psnr = probe.psnr(quantized_proto(proto, statistics, recipe, flavour=flavour, only=[name]))
            results.append(LayerSensitivity(name, op_types.get(name, "?"), psnr))
        else:
            psnr = probe.psnr(quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=[*exclude, name]))
            results.append(LayerSensitivity(name, op_types.get(name, "?"), psnr, psnr - base))
        if progress is not None:
            progress()
    return sorted(results, key=_severity)


def tensor_sensitivity(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    artifact: Artifact,
    *,
    flavour: str = "onnxruntime",
    exclude: Sequence[str] = (),
    float_tensors: Sequence[str] = (),
    patches: int = DEFAULT_PATCHES,
    calibration: CalibrationSet | None = None,
    on_count: Callable[[int], Any] | None = None,
    progress: Callable[[], Any] | None = None,
) -> list[LayerSensitivity]:
    """Output PSNR regained by keeping each quantised activation tensor in float, most rewarding first.

    ``on_count`` learns how many tensors will be measured; ``progress`` ticks after each.
    """
    from sr_export.quantize.qdq_graph import keep_tensors_float, quantized_activations, quantized_proto

    probe = OutputProbe.of(proto, artifact, recipe, patches, calibration)
    full = quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=list(exclude),
                           float_tensors=float_tensors)
    base = probe.psnr(full)
    producers = {out: node.op_type for node in proto.graph.node for out in node.output}
    tensors = [t for t in quantized_activations(full) if t in producers]
    if on_count is not None:
        on_count(len(tensors))
    results = []
    for tensor in tensors:
        psnr = probe.psnr(keep_tensors_float(full, [tensor], proto))
        results.append(LayerSensitivity(tensor, producers[tensor], psnr, psnr - base))
        if progress is not None:
            progress()
    return sorted(results, key=_severity)


def cached_tensor_sensitivity(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    artifact: Artifact,
    plan: Any,
    *,
    flavour: str = "onnxruntime",
    patches: int = DEFAULT_PATCHES,
    calibration: CalibrationSet | None = None,
) -> list[LayerSensitivity]:
    """:func:`tensor_sensitivity` for ``plan`` (a QuantPlan), cached next to the statistics it was measured with."""
    import hashlib
    import json

    from sr_export.core.io import write_json_atomic
    from sr_export.quantize.statistics import cache_folder

    payload = json.dumps({"v": 1, "statistics": statistics.key, "flavour": flavour, "patches": patches,
                          "nodes": sorted(plan.names()), "tensors": sorted(plan.tensors())}, sort_keys=True)
    path = cache_folder() / f"{hashlib.sha256(payload.encode()).hexdigest()[:24]}-tensors.json"
    if path.is_file():
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            return [LayerSensitivity(r["name"], r["op_type"], float(r["psnr_db"]), float(r["gain_db"])) for r in rows]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry is measured again
    results = tensor_sensitivity(proto, statistics, recipe, artifact, flavour=flavour, exclude=plan.names(),
                                 float_tensors=plan.tensors(), patches=patches, calibration=calibration)
    write_json_atomic(path, [{"name": r.name, "op_type": r.op_type, "psnr_db": r.psnr_db, "gain_db": r.gain_db}
                             for r in results])
    return results


def _severity(result: LayerSensitivity) -> float:
    return -result.gain_db if result.gain_db is not None else result.psnr_db


def most_sensitive(results: Sequence[LayerSensitivity], count: int) -> list[tuple[str, float]]:
    """The ``count`` most sensitive layers as (name, dB: gain when float, or output PSNR when alone INT8)."""
    ranked = sorted(results, key=_severity)[:count]
    return [(r.name, r.gain_db if r.gain_db is not None else r.psnr_db) for r in ranked]
