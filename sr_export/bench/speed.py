"""Latency of several runners measured side by side (``sr-bench speed``).

Absolute times depend on the machine and its load; ratios between runners
timed in the same process, interleaved, are what the report is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.core.model_info import ModelInfo
from sr_export.data.images import builtin_image
from sr_export.data.matlab_resize import imresize
from sr_export.data.tensors import image_to_batch
from sr_export.runtimes.base import Inferring


@dataclass(frozen=True)
class Timing:
    runner: str
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    samples_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples_s))

    @property
    def p90_s(self) -> float:
        return float(np.percentile(self.samples_s, 90))

    @property
    def p99_s(self) -> float:
        return float(np.percentile(self.samples_s, 99))

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def fps(self) -> float:
        return 1.0 / self.median_s

    @property
    def output_mpix_per_s(self) -> float:
        return self.output_hw[0] * self.output_hw[1] / 1e6 / self.median_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "input_hw": list(self.input_hw),
            "output_hw": list(self.output_hw),
            "runs": len(self.samples_s),
            "median_ms": round(self.median_s * 1e3, 3),
            "p90_ms": round(self.p90_s * 1e3, 3),
            "p99_ms": round(self.p99_s * 1e3, 3),
            "min_ms": round(self.min_s * 1e3, 3),
            "fps": round(self.fps, 3),
            "output_mpix_per_s": round(self.output_mpix_per_s, 4),
        }


@dataclass(frozen=True)
class SpeedReport:
    timings: tuple[Timing, ...]
    warmup: int
    runs: int
    threads: int | None

    def speedup(self, runner: str, baseline: str, input_hw: tuple[int, int]) -> float:
        """How many times faster ``runner`` is than ``baseline`` at one size (median over median)."""
        by_key = {(t.runner, t.input_hw): t for t in self.timings}
        return by_key[(baseline, input_hw)].median_s / by_key[(runner, input_hw)].median_s

    def to_dict(self) -> dict[str, Any]:
        runners = list(dict.fromkeys(t.runner for t in self.timings))
        sizes = list(dict.fromkeys(t.input_hw for t in self.timings))
        baseline = runners[0]
        return {
            "warmup": self.warmup,
            "runs": self.runs,
            "threads": self.threads,
            "timings": [t.to_dict() for t in self.timings],
            "speedup_vs": baseline,
            "speedups": [
                {"runner": r, "input_hw": list(s), "speedup": round(self.speedup(r, baseline, s), 3)}
                for s in sizes
                for r in runners[1:]
            ],
        }


def timing_input(info: ModelInfo, height: int, width: int) -> np.ndarray:
    """A natural image of the requested LR size (content does not change the speed, but stays realistic)."""
    return image_to_batch(imresize(builtin_image("astronaut"), output_shape=(height, width)), info)


def measure(
    runners: Mapping[str, Inferring],
    info: ModelInfo,
    sizes: Sequence[tuple[int, int]],
    *,
    warmup: int = 2,
    runs: int = 10,
    threads: int | None = None,
    progress: Callable[[], Any] | None = None,
) -> SpeedReport:
    """Time every runner at every size; runs are interleaved so drift hits all runners alike.

    Each sample is the runner's own measured inference time where it keeps one.
    """
    timings = []
    for height, width in sizes:
        batch = timing_input(info, height, width)
        samples: dict[str, list[float]] = {label: [] for label in runners}
        output_hw: dict[str, tuple[int, int]] = {}
        for label, runner in runners.items():
            for _ in range(warmup):
                output_hw[label] = runner.infer(batch).shape[2:]
        for _ in range(runs):
            for label, runner in runners.items():
                start = time.perf_counter()
                output = runner.infer(batch)
                outside = time.perf_counter() - start
                # A runner's own clock (Runner.last_inference_time) times inference alone; others are timed here.
                own = getattr(runner, "last_inference_time", None)
                samples[label].append(own if own is not None else outside)
                output_hw[label] = output.shape[2:]
                if progress is not None:
                    progress()
        timings.extend(
            Timing(label, (height, width), tuple(output_hw[label]), tuple(samples[label])) for label in runners
        )
    return SpeedReport(tuple(timings), warmup, runs, threads)
