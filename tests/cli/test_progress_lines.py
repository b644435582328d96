"""Progress off a terminal (CI, ``| tee``): timed lines instead of rich's spinner and bars, which print nothing there.

The fixtures capture output, so stderr is not a terminal in these tests, as in CI.
``SR_EXPORT_PROGRESS_INTERVAL`` (default 10 s) is set to 0.2 s so that a real
export of a few seconds shows its "still working" lines.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", f"{REPO / 'tests' / 'fixtures' / 'espcn.py'}:ESPCN", "--model-kwargs", '{"width": 8}',
        "--scale", "2"]


@pytest.fixture
def quick_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_EXPORT_PROGRESS_INTERVAL", "0.2")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr_export.cli.export_cli import main

    out = tmp_path_factory.mktemp("progress") / "espcn_x2.onnx"
    assert main(["onnx", *TINY, "--exporter", "legacy", "--no-check", "-o", str(out)]) == 0
    return out


def test_an_export_off_a_terminal_prints_each_stage_still_working_lines_and_its_time(
        sr_export, tmp_path: Path, quick_ticks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_EXPORT_TRACE_CACHE", "0")  # a real trace, not one kept by an earlier test
    # Every stage of this tiny export can finish within 0.2 s on a quiet machine (CI, 2026-12-08): tick faster.
    monkeypatch.setenv("SR_EXPORT_PROGRESS_INTERVAL", "0.02")
    result = sr_export("onnx", *TINY, "--exporter", "legacy", "-o", tmp_path / "m.onnx")
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines[0].startswith("loading ") and re.search(r"^loading .*: done in [\d.]+ s$", result.err, re.M)
    assert "building" in lines
    assert any(line.startswith("exporting espcn x2 to ONNX") for line in lines)
    assert any(line.startswith("checking ") and " against pytorch" in line for line in lines), result.err
    # How many "still working" lines a real export earns depends on the machine; the timer itself is
    # held to its interval below (test_a_stage_says_it_is_still_working_every_interval).
    assert any(re.search(r": still working, [\d.]+ s$", line) for line in lines), result.err
    assert re.search(r"^building: done in [\d.]+ s$", result.err, re.M)
    # The results still follow, once the stages are done.
    assert result.err.index("building: done in") < result.err.index("parity PASS") < result.err.index("wrote ")


def test_a_progress_bar_off_a_terminal_prints_its_task_and_its_count_when_done(
        sr_export, tiny_onnx: Path, quick_ticks: None) -> None:
    result = sr_export("check", tiny_onnx, *TINY, "--sizes", "24x24,17x23")
    assert result.code == 0, result.err
    assert "parity espcn_x2.onnx" in result.err.splitlines()
    assert re.search(r"^parity espcn_x2\.onnx: 4, done in [\d.]+ s$", result.err, re.M), result.err


def test_with_the_default_interval_a_short_stage_prints_no_still_working_line(sr_export, tiny_onnx: Path) -> None:
    result = sr_export("check", tiny_onnx, *TINY, "--sizes", "24x24")
    assert result.code == 0, result.err
    assert "still working" not in result.err
    assert re.search(r"^parity espcn_x2\.onnx: 2, done in", result.err, re.M)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_a_bad_progress_interval_is_one_error_line(sr_export, tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch,
                                                   value: str) -> None:
    monkeypatch.setenv("SR_EXPORT_PROGRESS_INTERVAL", value)
    result = sr_export("check", tiny_onnx, *TINY)
    assert result.code == 2
    assert "SR_EXPORT_PROGRESS_INTERVAL must be a number of seconds > 0" in result.error()


def test_progress_lines_reach_stderr_while_a_converter_points_descriptor_2_elsewhere() -> None:
    # LiteRT's converter runs with descriptor 2 pointed at a scratch file (quiet_litert) for a minute and more:
    # the lines saying it is still running must reach the real stderr, and the converter's chatter must not.
    script = """
import os, time
from sr_export.cli.common import stderr_console
from sr_export.runtimes.tflite.quiet import quiet_litert
with stderr_console().status("converting"):
    with quiet_litert():
        os.write(2, b"converter chatter\\n")
        time.sleep(0.7)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "SR_EXPORT_PROGRESS_INTERVAL": "0.2"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "converting"
    assert len([line for line in lines if line.startswith("converting: still working, ")]) >= 2
    assert re.match(r"converting: done in [\d.]+ s$", lines[-1])
    assert "converter chatter" not in done.stderr


def test_a_stage_says_it_is_still_working_every_interval() -> None:
    import io
    import time

    from sr_export.cli.progress import LineStatus

    stream = io.StringIO()
    with LineStatus(stream, "exporting", interval=0.1) as status:
        time.sleep(0.25)
        status.update("checking")
        checking = time.monotonic()
        time.sleep(0.55)
        checked_s = time.monotonic() - checking
    lines = stream.getvalue().splitlines()
    assert lines[0] == "exporting", lines
    assert sum(bool(re.fullmatch(r"checking \([\d.]+ s so far\)", line)) for line in lines) == 1, lines
    working = [line for line in lines if line.startswith("checking: still working, ")]
    # One every 0.1 s once the stage is half an interval old (a loaded machine may run the timer late).
    assert 2 <= len(working) <= checked_s / 0.1 + 1, lines
    assert re.fullmatch(r"exporting: done in [\d.]+ s", lines[-1]), lines

