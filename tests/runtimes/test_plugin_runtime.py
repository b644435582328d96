"""A runtime is a plugin: one class and one registry line, and every tool takes it.

The runtime defined here (ONNX Runtime pinned to one thread, under its own
name) is registered for the length of a test only, and goes through build,
check, ``sr-bench eval``, ``sr-bench speed`` and ``sr-bench --target`` with no
edit anywhere in sr_export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sr_export.core.artifacts import Artifact
from sr_export.runtimes.base import DeviceSession
from sr_export.runtimes.onnxruntime import OnnxRuntime
from sr_export.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from sr_export.runtimes.registry import RUNTIMES

NAME = "ort-one-thread"


class OneThreadOnnxRuntime(OnnxRuntime):
    """ONNX Runtime with one intra-op thread whatever the caller asks (on this machine and on a device)."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "ONNX Runtime, CPU, one thread"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    device_session: ClassVar[DeviceSession | None] = DeviceSession(
        "sr_export.runtimes.onnxruntime.device", "OnnxRuntimeSession", params={"threads": 1})

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Any:
        return OnnxRuntimeRunner(artifact, 1, label=f"{NAME}-cpu")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(RUNTIMES, NAME, OneThreadOnnxRuntime)
    return NAME


@pytest.fixture(scope="module")
def onnx_file(exported_official) -> Artifact:
    return exported_official("imdn", 2)


def test_the_registry_lists_it_with_its_descriptor(registered: str) -> None:
    from sr_export import api

    row = next(r for r in api.runtimes() if r["name"] == registered)
    assert row["consumes"] == "onnx" and row["reads"] == ["onnx", "onnx-qdq"] and row["precisions"] == ["fp32"]
    assert row["device_session"] and row["status"] == "ready"


def test_build_check_eval_and_speed_take_it(registered: str, onnx_file: Artifact, tmp_path: Path,
                                            sr_export, sr_bench, set5: Path) -> None:
    from sr_export import api

    built = api.build(onnx_file, registered, tmp_path)
    assert built.metadata.backend == registered and registered in built.metadata.runtimes
    with api.open_runner(built) as runner:
        assert runner.name.startswith(f"{registered}-cpu")

    checked = sr_export("check", built.path, "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["candidate"].startswith(f"{registered}-cpu")
    by_name = sr_export("check", onnx_file.path, "--runtime", registered, "--json")
    assert by_name.code == 0 and json.loads(by_name.out)["candidate"].startswith(f"{registered}-cpu")

    scores = sr_bench("eval", "--artifact", built.path, "--dataset", set5, "--json")
    assert scores.code == 0, scores.err
    assert json.loads(scores.out)["runner"].startswith(f"{registered}-cpu")

    timed = sr_bench("--target", registered, "speed", "--artifact", built.path, "--sizes", "32x32", "--runs", "2",
                     "--warmup", "1", "--no-pytorch", "--json")
    assert timed.code == 0, timed.err
    assert [t["runner"] for t in json.loads(timed.out)["timings"]] == [f"{registered}:{built.path.name}"]


def test_sr_bench_targets_it_by_name(registered: str, tmp_path: Path, sr_bench) -> None:
    result = sr_bench("--target", registered, "--models", "imdn", "--scale", "2", "--weights", "official",
                      "--sizes", "32x32", "--runs", "2", "--warmup", "1", "--exporter", "legacy",
                      "-o", tmp_path / "out", "--no-history")
    assert result.code == 0, result.err
    (report,) = (tmp_path / "out").glob(f"matrix-{registered}-*.json")
    row = json.loads(report.read_text())["rows"][0]
    run = row["details"]["device_run"]
    assert run["device"]["runtime"].startswith("onnxruntime") and run["device"]["threads"] == "1"
    assert run["conditions"]["runtime"] == registered and row["parity_passed"] is True
