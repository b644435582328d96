"""The INT8 frontier: float islands added one at a time, each chosen by dB regained per millisecond lost.

The fastest INT8 graph quantises every tensor; the SR-aware default keeps
whole layers in float instead, and each border between a float island and
ONNX Runtime's integer (NHWC) kernels costs a layout Transpose besides the
float conv itself (on E-RFDN x4: 35 more transposes, 1.3x instead of 1.6x
over FP32). So islands are chosen by what they buy per what they cost.

Starting from the all-integer graph, every step tries each remaining candidate
island: a group of the SR-sensitive layers (first conv and its readers, the
global residual add, last conv and upsampler; whole groups, so the integer
regions around them stay contiguous) or one of the most sensitive activation
tensors. A candidate's gain is the output PSNR it regains against the float
graph on calibration patches (never the evaluation images); its cost is its
latency minus the current graph's, timed side by side in one process. The
island with the most dB per ms is kept. Each point is a recipe: the report's
recipe with ``sr_aware = false`` and the islands as ``keep_float``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.data.datasets import ImagePair
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics
from sr_export.runtimes.onnxruntime.kernels import KernelReport

# A candidate costing less than this fraction of the current latency is charged this much: timing
# noise on a busy machine is a few percent, and a near-zero cost would make any tiny gain win.
MIN_COST_FRACTION = 0.01

_GROUPS = (  # SR-sensitive reasons (sr_export.quantize.sr_layers) -> the island they belong to
    ("first conv", "head: first conv and its readers"),
    ("reads the shallow features", "head: first conv and its readers"),
    ("global residual add", "global residual add"),
    ("last conv", "tail: last conv and upsampler"),
    ("upsampler", "tail: last conv and upsampler"),
    ("per-channel statistic", "per-channel statistics"),
)


@dataclass(frozen=True)
class Island:
    label: str
    names: tuple[str, ...]  # nodes or activation tensors kept in float (a recipe's keep_float entries)


@dataclass(frozen=True)
class FrontierStep:
    """One point of the greedy walk: the islands so far, and what the last one bought and cost."""

    islands: tuple[Island, ...]
    calibration_psnr_db: float  # output PSNR vs the float graph on calibration patches
    latency_ms: float  # median, timed side by side with the step's other candidates
    gain_db: float  # regained by the last island (0 for the all-integer start)
    cost_ms: float  # its latency cost, as charged (0 for the start)

    @property
    def keep_float(self) -> tuple[str, ...]:
        return tuple(name for island in self.islands for name in island.names)

    @property
    def label(self) -> str:
        return self.islands[-1].label if self.islands else "all-integer"


def island_group(reason: str) -> str:
    """The island an SR-sensitive node belongs to, from the reason the SR rules gave it."""
    for start, group in _GROUPS:
        if reason.startswith(start):
            return group
    return reason


def candidate_islands(sr_reasons: dict[str, str], sensitive_tensors: Sequence[str]) -> list[Island]:
    """The SR-sensitive layers by group, then each sensitive activation tensor on its own."""
    groups: dict[str, list[str]] = {}
    for node, reason in sr_reasons.items():
        groups.setdefault(island_group(reason), []).append(node)
    islands = [Island(label, tuple(names)) for label, names in groups.items()]
    return islands + [Island(f"tensor {name}", (name,)) for name in sensitive_tensors]


def greedy_frontier(
    candidates: Sequence[Island],
    *,
    score: Callable[[tuple[str, ...]], float],
    time_plans: Callable[[Sequence[tuple[str, ...]]], list[float]],
    steps: int,
    progress: Callable[[], Any] | None = None,
) -> list[FrontierStep]:
    """The all-integer start and up to ``steps`` islands, each the best dB per ms of those left.

    ``score(keep_float)`` is a plan's output PSNR on calibration patches;
    ``time_plans(plans)`` their latencies in ms, measured side by side. The
    walk stops early when no island left regains anything.
    """
    start_psnr = score(())
    (start_ms,) = time_plans([()])
    walk = [FrontierStep((), start_psnr, start_ms, 0.0, 0.0)]
    left = list(candidates)
    while left and len(walk) <= steps:
        current = walk[-1]
        plans = [current.keep_float + island.names for island in left]
        latencies = time_plans([current.keep_float, *plans])
        base_ms, candidate_ms = latencies[0], latencies[1:]
        floor = MIN_COST_FRACTION * base_ms
        best: tuple[float, int, float, float] | None = None
        for index, plan in enumerate(plans):
            psnr = score(plan)
            gain, cost = psnr - current.calibration_psnr_db, max(candidate_ms[index] - base_ms, floor)
            if gain > 0 and (best is None or gain / cost > best[0]):
                best = (gain / cost, index, psnr, cost)
        if progress is not None:
            progress()
        if best is None:
            break
        _, index, psnr, cost = best
        walk.append(FrontierStep(current.islands + (left[index],), psnr, candidate_ms[index],
                                 psnr - current.calibration_psnr_db, cost))
        del left[index]
    return walk


@dataclass(frozen=True)
class FrontierPoint:
    """A step of the walk made into an artifact: its recipe file, dataset drop, speed and kernels."""

    step: FrontierStep
    recipe_path: Path
    artifact_path: Path
    drop_db: float  # Y-PSNR lost against the float artifact on the report's dataset
    latency_ms: float  # median, timed side by side with FP32 and every other point
    speed_ratio: float  # FP32 latency / this one's
    kernels: KernelReport
    on_front: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.step.label, "islands": [island.label for island in self.step.islands],
                "keep_float": list(self.step.keep_float), "recipe": str(self.recipe_path),
                "artifact": str(self.artifact_path), "drop_db": round(self.drop_db, 4),
                "latency_ms": round(self.latency_ms, 3), "speed_ratio": round(self.speed_ratio, 3),
                "calibration_psnr_db": round(self.step.calibration_psnr_db, 3),
                "gain_db": round(self.step.gain_db, 3), "cost_ms": round(self.step.cost_ms, 3),
                "float_convs": len(self.kernels.float_convs), "transposes": self.kernels.transposes,
                "on_front": self.on_front}


class _GraphRunner:
    """A QDQ graph in memory, run by the same ONNX Runtime session loader as the artifacts."""

    def __init__(self, proto: Any, name: str, threads: int | None) -> None:
        from sr_export.export.session import cpu_session

        self.name = name
        self._session = cpu_session(proto.SerializeToString(), threads)
        self._input = self._session.get_inputs()[0].name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]


@dataclass(frozen=True)
class FrontierSetting:
    """How the walk is measured: its length, the candidates, the patches and the timing."""

    steps: int
    sensitive_tensors: tuple[str, ...]  # the activation tensors offered as one-tensor islands
    patches: int  # calibration patches the output PSNR is measured on
    speed_size: tuple[int, int]
    runs: int
    threads: int | None = None
    flavour: str = "onnxruntime"


def walk_frontier(float_artifact: Artifact, proto: Any, statistics: ActivationStatistics,
                  recipe: CalibrationRecipe, setting: FrontierSetting,
                  progress: Callable[[], Any] | None = None) -> list[FrontierStep]:
    """The greedy walk on ``float_artifact``'s graph, quantised with ``statistics`` under ``recipe``'s method."""
    from sr_export.bench.speed import measure
    from sr_export.quantize.graph import sr_float_nodes
    from sr_export.quantize.onnxruntime_kernels import for_onnxruntime
    from sr_export.quantize.qdq import plan_float_nodes
    from sr_export.quantize.qdq_graph import quantized_proto
    from sr_export.quantize.sensitivity import OutputProbe

    base = all_integer(recipe)
    info = float_artifact.metadata.model_info()
    graphs: dict[tuple[str, ...], Any] = {}
    runners: dict[tuple[str, ...], _GraphRunner] = {}

    def graph(plan: tuple[str, ...]) -> Any:
        if plan not in graphs:
            chosen = plan_float_nodes(proto, base, plan)
            quantized = quantized_proto(proto, statistics, base, flavour=setting.flavour, exclude=chosen.names(),
                                        float_tensors=chosen.tensors())
            # Timed as `sr-export onnx --int8` writes it: rewritten for ONNX Runtime's fast integer kernels.
            graphs[plan] = for_onnxruntime(quantized) if setting.flavour == "onnxruntime" else quantized
        return graphs[plan]

    def time_plans(plans: Sequence[tuple[str, ...]]) -> list[float]:
        for plan in plans:
            if plan not in runners:
                runners[plan] = _GraphRunner(graph(plan), f"plan {len(runners)}", setting.threads)
        labelled = {f"{index}": runners[plan] for index, plan in enumerate(plans)}
        report = measure(labelled, info, [setting.speed_size], warmup=1, runs=setting.runs, threads=setting.threads)
        medians = {timing.runner: timing.median_s * 1e3 for timing in report.timings}
        return [medians[f"{index}"] for index in range(len(plans))]

    probe = OutputProbe.of(proto, float_artifact, recipe, setting.patches)
    candidates = candidate_islands(sr_float_nodes(proto.graph), setting.sensitive_tensors)
    return greedy_frontier(candidates, score=lambda plan: probe.psnr(graph(plan)), time_plans=time_plans,
                           steps=setting.steps, progress=progress)


def all_integer(recipe: CalibrationRecipe) -> CalibrationRecipe:
    """``recipe``'s calibration with nothing kept in float: where the walk starts."""
    return replace(recipe, sr_aware=False, float_statistics=False, keep_float=(), auto_keep_float=0)


def point_recipe(recipe: CalibrationRecipe, step: FrontierStep, index: int) -> CalibrationRecipe:
    return replace(all_integer(recipe), name=f"{recipe.name}-frontier{index}",
                   description=f"{recipe.name}'s calibration, all-integer but for: "
                               f"{', '.join(i.label for i in step.islands) or 'nothing'} (sr-bench int8-report)",
                   keep_float=step.keep_float)



def frontier_points(
    walk: Sequence[FrontierStep],
    float_artifact: Artifact,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    setting: FrontierSetting,
    *,
    output: Path,
    pairs: Sequence[ImagePair],
    dataset: str,
    progress: Callable[[], Any] | None = None,
) -> list[FrontierPoint]:
    """Each step written as a recipe file and an INT8 artifact, scored on ``pairs`` and timed with FP32."""
    from sr_export.bench.evaluate import evaluate
    from sr_export.bench.pareto import non_dominated
    from sr_export.bench.speed import measure
    from sr_export.core.io import write_text_atomic
    from sr_export.quantize.qdq import quantize_onnx
    from sr_export.quantize.recipes import recipe_toml
    from sr_export.runtimes.onnxruntime.kernels import kernel_report
    from sr_export.runtimes.open import open_runner

    info = float_artifact.metadata.model_info()
    stem = float_artifact.path.stem
    float_runner = open_runner(float_artifact, threads=setting.threads)
    reference = evaluate(float_runner, info, pairs, dataset=dataset).mean.psnr_y
    made = []
    for index, step in enumerate(walk):
        chosen = point_recipe(recipe, step, index)
        recipe_path = output / f"{stem}_int8-{chosen.name}.toml"
        write_text_atomic(recipe_path, recipe_toml(chosen))
        artifact = quantize_onnx(float_artifact, chosen, flavour=setting.flavour, statistics=statistics,
                                 output=output / f"{stem}_int8-{chosen.name}.onnx")
        runner = open_runner(artifact, threads=setting.threads)
        drop = reference - evaluate(runner, info, pairs, dataset=dataset).mean.psnr_y
        made.append((step, recipe_path, artifact, runner, drop))
        if progress is not None:
            progress()
    runners = {"fp32": float_runner, **{f"{index}": entry[3] for index, entry in enumerate(made)}}
    report = measure(runners, info, [setting.speed_size], runs=setting.runs, threads=setting.threads)
    medians = {timing.runner: timing.median_s * 1e3 for timing in report.timings}
    points = [FrontierPoint(step, recipe_path, artifact.path, drop, medians[f"{index}"],
                            medians["fp32"] / medians[f"{index}"], kernel_report(artifact.path, setting.threads))
              for index, (step, recipe_path, artifact, _runner, drop) in enumerate(made)]
    front = set(non_dominated([(p.latency_ms, p.drop_db) for p in points]))
    return [replace(point, on_front=index in front) for index, point in enumerate(points)]
