"""The runner copied to devices: self-contained, and its statistics and frame pipeline are right."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sr_export.bench import device_runner
from sr_export.bench.remote import RUNNER, device_session, job_document


def test_it_needs_only_the_standard_library_numpy_and_a_runtime() -> None:
    # What goes to a device: the runner and the device session of each runtime it times locally or on a board.
    sessions = [device_session(name).file() for name in ("onnxruntime", "tflite", "tensorrt")]
    imported: set[str] = set()
    for source in (RUNNER, *sessions):
        tree = ast.parse(source.read_text())
        imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    third_party = imported - set(sys.stdlib_module_names)
    assert third_party == {"numpy", "onnxruntime", "ai_edge_litert", "tflite_runtime"}


def test_statistics_by_hand() -> None:
    stats = device_runner.stats([0.004, 0.001, 0.002, 0.003, 0.005])
    assert (stats["min_ms"], stats["median_ms"], stats["max_ms"], stats["mean_ms"]) == (1.0, 3.0, 5.0, 3.0)
    assert stats["p90_ms"] == 4.6 and stats["p99_ms"] == 4.96 and stats["runs"] == 5


def test_a_size_result_derives_fps_and_megapixels_from_the_median() -> None:
    result = device_runner.size_result((100, 200), [200, 400], [0.01, 0.02, 0.03], [0.04, 0.05, 0.06], 2)
    assert result["fps"] == 50.0 and result["output_mpix_per_s"] == 0.08 * 50
    assert result["end_to_end"]["median_ms"] == 50.0 and result["peak_rss_mb"] > 0


def test_the_frame_pipeline_round_trips_8_bit_frames() -> None:
    frame = device_runner.make_frame(12, 20, 3)
    assert frame.dtype == np.uint8 and frame.shape == (12, 20, 3) and frame.std() > 10
    for data_range in (1.0, 255.0):
        for nhwc in (False, True):
            batch = device_runner.preprocess(frame, data_range, nhwc)
            assert batch.dtype == np.float32 and batch.shape == ((1, 12, 20, 3) if nhwc else (1, 3, 12, 20))
            assert np.array_equal(device_runner.postprocess(batch, data_range, nhwc), frame)


def test_a_missing_artifact_is_a_one_line_json_error(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"runtime": "onnxruntime", "artifact": "gone.onnx"}))
    done = subprocess.run([sys.executable, str(RUNNER), str(job)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert json.loads(done.stdout) == {"ok": False, "error": "artifact gone.onnx is missing on the device"}


class AlternatingLatency:
    """A device session whose calls alternate slow, fast, slow...: when inference and end-to-end are timed on
    different calls, end-to-end comes out faster than inference."""

    nhwc = False
    versions: dict[str, str] = {}

    def __init__(self) -> None:
        self.calls = 0

    def prepare(self, height: int, width: int) -> None:
        pass

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(0.03 if self.calls % 2 else 0.001)
        return np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3)


TIMING_JOB = {"runs": 6, "warmup": 1, "in_channels": 3, "data_range": 1.0, "scale": 2}


def test_end_to_end_is_timed_around_the_very_inference_it_reports() -> None:
    session = AlternatingLatency()
    result = device_runner.time_size(TIMING_JOB, session, (16, 16))
    assert session.calls == TIMING_JOB["warmup"] + TIMING_JOB["runs"]  # one inference per run, not two
    for key in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "max_ms"):
        assert result["end_to_end"][key] >= result["inference"][key], (key, result)


def test_end_to_end_is_never_below_inference_through_a_real_runtime(tmp_path: Path, monkeypatch) -> None:
    from sr_export import api

    model = api.load_model(f"{Path(__file__).parents[1] / 'fixtures' / 'espcn.py'}:ESPCN", scale=2,
                           kwargs={"width": 8})
    onnx_file = api.build(model, "cpu", tmp_path / "m.onnx", check=False).path
    job = job_document(runtime="onnxruntime", artifact=str(onnx_file), precision="fp32", sizes=[(24, 24), (12, 40)],
                       warmup=1, runs=15, threads=1, scale=2, in_channels=3, data_range=1.0)
    shutil.copy(device_session("onnxruntime").file(), tmp_path / job["session"]["file"])  # as on a device
    monkeypatch.chdir(tmp_path)
    for size in device_runner.run_job(job)["sizes"]:
        for key in ("min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "max_ms"):
            assert size["end_to_end"][key] >= size["inference"][key], (key, size)
