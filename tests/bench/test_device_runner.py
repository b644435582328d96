"""The runner copied to devices: self-contained, and its statistics and frame pipeline are right."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from sr_export.bench import device_runner
from sr_export.bench.remote import RUNNER, device_session


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
