"""Bad-input matrix, gate baselines: a baseline the gate cannot read never lets it pass.

`sr-bench gate --baseline FILE` against a history holding one run: every
broken or empty baseline file is exit 2 with one line naming the file; a
good one gates (the control).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

RUN = {
    "model": "espcn", "scale": 2, "target": "cpu", "backend": "onnxruntime", "precision": "fp32",
    "artifact_name": "espcn_x2.onnx", "artifact_sha256": "0" * 64, "tool_version": "test",
    "device": {"cpu": "test"}, "conditions": {"runs": 3},
    "sizes": [{"input_hw": [32, 32], "inference": {"median_ms": 10.0}}],
    "psnr_y": 30.0, "ssim_y": 0.9,
}


def _with(**changes: object) -> Callable[[], str]:
    return lambda: json.dumps([{**RUN, **changes}])


def _size(**inference: object) -> Callable[[], str]:
    return _with(sizes=[{"input_hw": [32, 32], "inference": inference}])


# Baseline files that must be refused: name -> its text.
BASELINES: dict[str, Callable[[], str]] = {
    "empty": lambda: "",
    "not json": lambda: "{not json",
    "an empty list": lambda: "[]",
    "an empty object": lambda: "{}",
    "a string": lambda: '"runs"',
    "a list of numbers": lambda: "[1, 2]",
    "no sizes": lambda: json.dumps([{k: v for k, v in RUN.items() if k != "sizes"}]),
    "sizes not a list": _with(sizes="32x32"),
    "a size without latency": _with(sizes=[{"input_hw": [32, 32]}]),
    "latency NaN": _size(median_ms=float("nan")),
    "latency infinite": _size(median_ms=float("inf")),
    "latency negative": _size(median_ms=-1.0),
    "latency a string": _size(median_ms="fast"),
    "psnr NaN": _with(psnr_y=float("nan")),
    "scale zero": _with(scale=0),
    "scale a string": _with(scale="2"),
}


@pytest.fixture
def history(tmp_path: Path) -> Path:
    from sr_export.bench.history import RunRecord, open_history

    db = tmp_path / "history.sqlite"
    with open_history(db) as opened:
        opened.add(RunRecord.from_dict({**RUN, "sizes": [{"input_hw": [32, 32], "inference": {"median_ms": 80.0}}]}))
    return db


@pytest.mark.parametrize("baseline", BASELINES)
def test_a_baseline_the_gate_cannot_read_is_refused(baseline: str, history: Path, tmp_path: Path, sr_bench) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(BASELINES[baseline]())
    result = sr_bench("gate", "--db", history, "--baseline", path)
    assert result.code == 2, result.err + result.out
    assert str(path) in result.error()


def test_the_control_a_good_baseline_gates(history: Path, tmp_path: Path, sr_bench) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps([RUN]))
    result = sr_bench("gate", "--db", history, "--baseline", path)
    assert result.code == 1, result.err  # 80 ms against a 10 ms baseline
    assert "+700" in result.error()
