"""Speed measurement: structure and bookkeeping (not absolute times)."""

from __future__ import annotations

import numpy as np

from sr_export.bench.speed import Timing, measure
from sr_export.models.loader import ModelInfo


class Counting:
    def __init__(self, name: str) -> None:
        self.name, self.calls = name, 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.zeros((1, 3, batch.shape[2] * 2, batch.shape[3] * 2), np.float32)


def test_every_runner_is_warmed_up_and_timed_at_every_size() -> None:
    runners = {"a": Counting("a"), "b": Counting("b")}
    report = measure(runners, ModelInfo("toy", 2), [(8, 8), (6, 10)], warmup=2, runs=3)
    assert all(r.calls == 2 * (2 + 3) for r in runners.values())
    assert [(t.runner, t.input_hw, t.output_hw) for t in report.timings] == [
        ("a", (8, 8), (16, 16)), ("b", (8, 8), (16, 16)), ("a", (6, 10), (12, 20)), ("b", (6, 10), (12, 20))]
    assert report.to_dict()["speedup_vs"] == "a"


def test_timing_statistics() -> None:
    timing = Timing("x", (10, 10), (20, 40), (0.4, 0.1, 0.2, 0.3, 0.5))
    assert timing.median_s == 0.3 and timing.min_s == 0.1
    assert abs(timing.p90_s - 0.46) < 1e-9 and abs(timing.p99_s - 0.496) < 1e-9
    assert abs(timing.fps - 1 / 0.3) < 1e-9
    assert abs(timing.output_mpix_per_s - 800 / 1e6 / 0.3) < 1e-12
