"""`sr-export build --target PROFILE|RUNTIME`: what a profile says is built, proven, then written.

TensorRT profiles are prepared and proven here (the FP16-typed or QDQ ONNX)
and stop with exit status 4 where TensorRT is missing; the trtexec command
lines sr-bench sends to a board are made from the same profile.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sr_export.core.artifacts import read_metadata

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the engine gets built instead")


@pytest.fixture(scope="module")
def trt_int8(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> tuple[int, Path, dict]:
    from sr_export.cli.export_cli import main

    folder = tmp_path_factory.mktemp("trt-int8")
    code = main(["build", "--target", "trt-int8", "--model", "imdn", "--scale", "2", "--weights", "official",
                 "--exporter", "legacy", "-o", str(folder), "--json", str(folder / "report.json")])
    return code, folder, json.loads((folder / "report.json").read_text())


@needs_no_tensorrt
def test_trt_int8_writes_the_tensorrt_qdq_onnx_proves_it_and_stops(trt_int8) -> None:
    code, folder, report = trt_int8
    assert code == 4
    prepared = next(s for s in report["steps"] if s["role"] == "prepared")
    meta = read_metadata(Path(prepared["artifact"]))
    assert (meta.format, meta.flavour, meta.backend, meta.precision) == ("onnx-qdq", "tensorrt", "tensorrt", "int8")
    assert "onnxruntime" in meta.runtimes and "tensorrt" not in meta.runtimes  # TensorRT builds from it, ORT runs it
    check = prepared["check"]
    assert check["passed"] and check["candidate"].startswith("onnxruntime-cpu int8")
    assert check["dataset_drop"]["passed"]
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["imdn_x2.onnx", "imdn_x2_int8_trt-default.onnx"]
    assert not list(folder.glob("*.engine")) and not list(folder.glob(".sr-export-build*"))


def test_a_bad_option_is_one_line_naming_it_and_nothing_is_written(sr_export, tmp_path: Path) -> None:
    bad = sr_export("build", "--target", "cpu", "--model", "imdn", "--scale", "2", "--option", "workspace=1",
                    "-o", tmp_path)
    assert bad.code == 2 and "unknown ONNX Runtime option(s) options.workspace" in bad.error()
    assert list(tmp_path.iterdir()) == []


def test_board_command_lines_come_from_the_profile(trt_int8, exported_official, tmp_path: Path) -> None:
    from sr_export.bench.build import BuildRequest, build
    from sr_export.bench.suite import Suite, device_job
    from sr_export.runtimes.open import open_artifact
    from sr_export.targets.profiles import load_profile

    fp16 = load_profile("trt-fp16")
    request = BuildRequest(fp16, "fp16", fp16.runtime_options(), until="prepared")
    prepared = build(exported_official("imdn", 2), request, tmp_path).artifact
    assert prepared.path.name == "imdn_x2_fp16.onnx" and prepared.metadata.precision == "fp16"
    timing = Suite("s", ()).timing(fp16)
    job, files = device_job(fp16, [prepared], timing)
    assert files == [prepared.path] and job["session"]["class"] == "TrtexecSession"
    commands = job["session"]["params"]["trtexec"]
    trt10, trt11 = commands["build"]["10"], commands["build"]["11"]
    shapes = ["--minShapes=input:1x3x32x32", "--optShapes=input:1x3x360x640", "--maxShapes=input:1x3x720x1280"]
    assert f"--onnx={prepared.path.name}" in trt10 and all(s in trt10 for s in shapes)
    assert "--fp16" in trt10 and "--int8" not in trt10 and "--memPoolSize=workspace:2048M" in trt10
    assert "--stronglyTyped" in trt11 and "--fp16" not in trt11
    assert not any("timingCache" in arg for arg in trt10)  # no path of this machine goes to a board
    assert [size for size, _ in [(e["size"], e["artifact"]) for e in job["plan"]]] == [list(s) for s in timing.sizes]

    int8 = load_profile("trt-int8")
    _, folder, _ = trt_int8
    qdq = open_artifact(folder / "imdn_x2_int8_trt-default.onnx")
    job, _ = device_job(int8, [qdq], Suite("s", ()).timing(int8))
    trt10, trt11 = job["session"]["params"]["trtexec"]["build"]["10"], job["session"]["params"]["trtexec"]["build"]["11"]
    assert "--onnx=imdn_x2_int8_trt-default.onnx" in trt10 and "--int8" in trt10 and "--fp16" in trt10
    assert "--stronglyTyped" in trt11 and "--int8" not in trt11
    # The FP32 graph under an INT8 profile is never sent with --int8 (no calibration would back it).
    job, _ = device_job(int8, [open_artifact(folder / "imdn_x2.onnx")], Suite("s", ()).timing(int8))
    assert not any("--int8" in command for command in job["session"]["params"]["trtexec"]["build"].values())


def test_for_runtime_is_refused_in_one_line_for_a_target_whose_files_need_no_fitting(sr_export) -> None:
    result = sr_export("build", "--model", "imdn", "--scale", "2", "--target", "cpu",
                       "--for-runtime", "tflite-runtime==2.14")
    assert result.code != 0
    assert "--for-runtime fits TFLite files" in result.error() and "ONNX Runtime" in result.error()
