"""``sr-bench int8-report``: what INT8 costs a model, where, and what to keep in float.

Float and INT8 artifacts are scored on the same dataset, their outputs
compared, timed side by side in one process, and each conv layer's
sensitivity measured on calibration patches; the worst layers make the
suggested ``--keep-float`` plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.bench.evaluate import EvalReport, super_resolve
from sr_export.bench.metrics import mean_scores, psnr, score
from sr_export.bench.speed import SpeedReport
from sr_export.core.artifacts import Artifact
from sr_export.core.io import atomic_path
from sr_export.core.model_info import ModelInfo
from sr_export.data.datasets import ImagePair
from sr_export.quantize.sensitivity import LayerSensitivity
from sr_export.runtimes.base import Inferring
from sr_export.runtimes.onnxruntime.kernels import KernelReport


@dataclass(frozen=True)
class Int8Report:
    model: str
    recipe: dict[str, Any]
    dataset: str
    float_eval: EvalReport
    int8_eval: EvalReport
    output_psnr_db: tuple[float, ...]  # per image, INT8 output vs float output (uint8 RGB, peak 255)
    speed: SpeedReport | None
    sensitivity: tuple[LayerSensitivity, ...]
    float_nodes: dict[str, str]
    suggested_keep_float: tuple[str, ...]
    calibration_overlap: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    kernels: KernelReport | None = None  # what ONNX Runtime fused the INT8 graph into

    @property
    def drop_db(self) -> float:
        return self.float_eval.mean.psnr_y - self.int8_eval.mean.psnr_y

    @property
    def mean_output_psnr_db(self) -> float:
        finite = [p for p in self.output_psnr_db if math.isfinite(p)]
        return float(np.mean(finite)) if finite else math.inf

    def speed_ratio(self) -> float | None:
        """FP32 median latency over INT8 median latency (> 1: INT8 is faster)."""
        if self.speed is None:
            return None
        size = self.speed.timings[0].input_hw
        return self.speed.speedup("int8", "fp32", size)

    def to_dict(self) -> dict[str, Any]:
        ratio = self.speed_ratio()
        return {
            "model": self.model,
            "recipe": self.recipe,
            "dataset": self.dataset,
            "float": self.float_eval.mean.to_dict(),
            "int8": self.int8_eval.mean.to_dict(),
            "psnr_y_drop_db": round(self.drop_db, 4),
            "output_psnr_db": round(self.mean_output_psnr_db, 3),
            "speed": self.speed.to_dict() if self.speed else None,
            "speed_ratio_fp32_over_int8": round(ratio, 3) if ratio else None,
            "float_nodes": self.float_nodes,
            "sensitivity": [s.to_dict() for s in self.sensitivity],
            "suggested_keep_float": list(self.suggested_keep_float),
            "calibration_overlap": list(self.calibration_overlap),
            "notes": list(self.notes),
            "kernels": self.kernels.to_dict() if self.kernels else None,
        }


def compare_on_dataset(
    float_runner: Inferring,
    int8_runner: Inferring,
    info: ModelInfo,
    pairs: Sequence[ImagePair],
    *,
    dataset: str,
    progress: Callable[[], Any] | None = None,
) -> tuple[EvalReport, EvalReport, tuple[float, ...]]:
    """Scores of both runners and the PSNR between their (rounded) outputs, image by image."""
    from sr_export.bench.evaluate import ImageScore

    float_scores, int8_scores, between = [], [], []
    for pair in pairs:
        a, b = super_resolve(float_runner, pair.lr, info), super_resolve(int8_runner, pair.lr, info)
        float_scores.append(ImageScore(pair.name, pair.lr.shape[:2], pair.lr_source, score(a, pair.hr, info.scale)))
        int8_scores.append(ImageScore(pair.name, pair.lr.shape[:2], pair.lr_source, score(b, pair.hr, info.scale)))
        between.append(psnr(a, b))
        if progress is not None:
            progress()
    mean_scores([s.scores for s in float_scores])  # raises on an empty dataset
    return (EvalReport(float_runner.name, dataset, info.scale, tuple(float_scores)),
            EvalReport(int8_runner.name, dataset, info.scale, tuple(int8_scores)), tuple(between))


def suggest_keep_float(sensitivity: Sequence[LayerSensitivity], count: int) -> tuple[str, ...]:
    """The ``count`` most sensitive layers or tensors (the most output PSNR regained in float, or the worst alone)."""
    from sr_export.quantize.sensitivity import most_sensitive

    return tuple(name for name, _ in most_sensitive(sensitivity, count))


def sensitivity_chart(sensitivity: Sequence[LayerSensitivity], order: Sequence[str], path: Path, *, title: str,
                      highlight: Sequence[str] = ()) -> Path:
    """Bars in graph order: dB regained with that layer in float (float-one view), or output PSNR
    vs float with only that layer in INT8 (only view)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    by_name = {s.name: s for s in sensitivity}
    names = [n for n in order if n in by_name]
    float_one = bool(names) and by_name[names[0]].gain_db is not None
    values = [by_name[n].gain_db if float_one else min(by_name[n].psnr_db, 99.0) for n in names]
    colours = ["tab:red" if n in highlight else "tab:blue" for n in names]
    figure, axes = plt.subplots(figsize=(max(6.0, 0.16 * len(names) + 2), 4.2), dpi=120)
    axes.bar(range(len(names)), values, color=colours)
    axes.set_xticks(range(len(names)), [_short(n) for n in names], rotation=90, fontsize=5)
    if float_one:
        axes.set_ylabel("output PSNR regained in float (dB)")
    else:
        axes.set_ylabel("output PSNR vs float (dB), only this layer INT8")
        if values:
            axes.set_ylim(min(values) - 3, max(values) + 2)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path


def _short(name: str) -> str:
    return name.strip("/").removesuffix("_output_0").removesuffix("/Conv") or name


def write_artifact_copy(artifact: Artifact, folder: Path) -> Path:
    import shutil

    target = folder / artifact.path.name
    with atomic_path(target) as tmp:
        shutil.copyfile(artifact.path, tmp)
    return target
