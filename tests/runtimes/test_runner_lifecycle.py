"""A runner is opened, runs, times itself and is closed; wrappers carry all of that through."""

from __future__ import annotations

import numpy as np
import pytest

from sr_export.bench.speed import measure
from sr_export.core.artifacts import Artifact
from sr_export.core.model_info import ModelInfo
from sr_export.runtimes.base import Runner
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.tiling import PaddedRunner, TiledRunner


class Doubling(Runner):
    """Nearest-neighbour x2 with a fixed cost the runner reports as its own inference time."""

    def __init__(self) -> None:
        super().__init__()
        self.name, self.loads, self.unloads = "doubling", 0, 0

    def _activate(self) -> None:
        self.loads += 1

    def _deactivate(self) -> None:
        self.unloads += 1

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return batch.repeat(2, axis=2).repeat(2, axis=3)


def test_a_runner_activates_once_times_each_call_and_closes_as_a_context_manager() -> None:
    runner = Doubling()
    assert not runner.is_active and runner.last_inference_time is None
    with runner as active:
        assert active is runner and runner.is_active and runner.loads == 1
        out = runner.infer(np.ones((1, 3, 4, 5), np.float32))
        assert out.shape == (1, 3, 8, 10) and runner.last_inference_time is not None
        assert runner.last_inference_time >= 0
    assert not runner.is_active and runner.unloads == 1
    runner.infer(np.ones((1, 3, 4, 4), np.float32))  # a closed runner opens again when used
    assert runner.is_active and runner.loads == 2


def test_wrappers_open_and_close_the_runner_they_drive() -> None:
    inner = Doubling().activate()
    tiled = TiledRunner(PaddedRunner(inner, multiple=4, scale=2), (8, 8), scale=2, overlap=2)
    assert tiled.is_active
    assert tiled.infer(np.ones((1, 3, 13, 9), np.float32)).shape == (1, 3, 26, 18)
    assert tiled.last_inference_time is not None
    tiled.deactivate()
    assert not inner.is_active


def test_speed_takes_each_runners_own_clock() -> None:
    class Reporting(Doubling):
        def infer(self, batch: np.ndarray) -> np.ndarray:
            output = super().infer(batch)
            self.last_inference_time = 0.25  # e.g. a device-side timer
            return output

    report = measure({"own": Reporting()}, ModelInfo("toy", 2), [(4, 4)], warmup=0, runs=3)
    assert report.timings[0].samples_s == (0.25, 0.25, 0.25)


def test_opened_artifacts_close_with_the_with_block(exported_official) -> None:
    artifact: Artifact = exported_official("imdn", 2)
    with open_runner(artifact, threads=1) as runner:
        assert runner.is_active and runner.infer(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 3, 32, 32)
    assert not runner.is_active
    with pytest.raises(Exception, match="cannot run onnx files"):
        open_runner(artifact, runtime="tflite")
