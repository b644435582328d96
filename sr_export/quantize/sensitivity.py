"""Per-layer INT8 sensitivity: how far the output moves when only one layer is quantised.

Measured on calibration patches (never on the evaluation images) as the PSNR
between that single-layer INT8 model's output and the float output; a low
figure marks a layer worth keeping in float. Each layer costs one QDQ build
and a few small inferences, so a handful of patches keeps it affordable.
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_type": self.op_type,
                "psnr_db": round(self.psnr_db, 3) if math.isfinite(self.psnr_db) else None}


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
    progress: Callable[[], Any] | None = None,
) -> list[LayerSensitivity]:
    """Sensitivity of every conv layer not in ``exclude`` (or of ``layers``), worst first."""
    from sr_export.quantize.qdq import quantized_proto

    batches = sensitivity_batches(artifact, recipe, patches)
    reference = _run(_session(proto), batches)
    data_range = artifact.metadata.data_range
    op_types = {n.name: n.op_type for n in proto.graph.node}
    names = list(layers) if layers is not None else [n.name for n in conv_nodes(proto.graph) if n.name not in exclude]
    results = []
    for name in names:
        single = quantized_proto(proto, statistics, recipe, flavour=flavour, only=[name])
        psnr = outputs_psnr(_run(_session(single), batches), reference, data_range)
        results.append(LayerSensitivity(name, op_types.get(name, "?"), psnr))
        if progress is not None:
            progress()
    return sorted(results, key=lambda r: r.psnr_db)


def most_sensitive(results: Sequence[LayerSensitivity], count: int) -> list[tuple[str, float]]:
    """The ``count`` worst layers as (name, output PSNR)."""
    return [(r.name, r.psnr_db) for r in sorted(results, key=lambda r: r.psnr_db)[:count]]
