"""Per-layer INT8 sensitivity, measured on calibration patches (never on the evaluation images).

Two views, each one QDQ build and a few small inferences per layer:

* ``only``: the PSNR between the float output and the output with only that
  layer in INT8 (low = sensitive). Shows where INT8 hurts in isolation.
* ``float-one``: starting from the full INT8 model, how many dB of output
  PSNR come back when only that layer returns to float. Errors made early are
  amplified by the layers after them, which ``only`` cannot see, so this is
  the view that picks the layers worth keeping in float (mixed precision).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.artifacts import Artifact
from sr_export.quantize.graph import conv_nodes
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics

DEFAULT_PATCHES = 6


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    op_type: str
    psnr_db: float  # output PSNR vs float with only this layer in INT8 (higher is safer)
    gain_db: float | None = None  # output PSNR regained when only this layer is float (float-one view)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_type": self.op_type,
                "psnr_db": round(self.psnr_db, 3) if math.isfinite(self.psnr_db) else None,
                "gain_db": round(self.gain_db, 3) if self.gain_db is not None else None}


def _session(proto: Any) -> Any:
    from sr_export.targets.onnxruntime import cpu_session

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


def sensitivity_batches(artifact: Artifact, recipe: CalibrationRecipe, count: int = DEFAULT_PATCHES) -> list[np.ndarray]:
    """The first ``count`` calibration patches, batched for the model."""
    from dataclasses import replace

    from sr_export.quantize.calibration_data import make_calibration_set

    meta = artifact.metadata
    subset = replace(recipe, patch_count=max(1, min(count, recipe.patch_count)))
    return make_calibration_set(subset, meta.scale).batches(meta.model_info())


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
    from sr_export.quantize.qdq import quantized_proto

    if mode not in ("only", "float-one"):
        raise ValueError(f"unknown sensitivity mode {mode!r}")
    batches = sensitivity_batches(artifact, recipe, patches)
    reference = _run(_session(proto), batches)
    data_range = artifact.metadata.data_range
    op_types = {n.name: n.op_type for n in proto.graph.node}
    names = list(layers) if layers is not None else [n.name for n in conv_nodes(proto.graph) if n.name not in exclude]
    base = None
    if mode == "float-one":
        full = quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=list(exclude))
        base = outputs_psnr(_run(_session(full), batches), reference, data_range)
    results = []
    for name in names:
        if mode == "only":
            single = quantized_proto(proto, statistics, recipe, flavour=flavour, only=[name])
            psnr = outputs_psnr(_run(_session(single), batches), reference, data_range)
            results.append(LayerSensitivity(name, op_types.get(name, "?"), psnr))
        else:
            model = quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=[*exclude, name])
            psnr = outputs_psnr(_run(_session(model), batches), reference, data_range)
            results.append(LayerSensitivity(name, op_types.get(name, "?"), psnr, psnr - base))
        if progress is not None:
            progress()
    return sorted(results, key=_severity)


def _severity(result: LayerSensitivity) -> float:
    return -result.gain_db if result.gain_db is not None else result.psnr_db


def most_sensitive(results: Sequence[LayerSensitivity], count: int) -> list[tuple[str, float]]:
    """The ``count`` most sensitive layers as (name, dB: gain when float, or output PSNR when alone INT8)."""
    ranked = sorted(results, key=_severity)[:count]
    return [(r.name, r.gain_db if r.gain_db is not None else r.psnr_db) for r in ranked]
