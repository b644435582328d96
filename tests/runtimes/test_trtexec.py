"""trtexec: command lines from the engine settings, and real trtexec reports parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tensorrt.settings import EngineSettings, shape_profile
from sr_export.runtimes.tensorrt.trtexec import benchmark_command, build_command, parse_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trtexec"
VIDEO = shape_profile(min=(64, 64), opt=(360, 640), max=(720, 1280))


def test_tensorrt10_fp16_uses_builder_flags(tmp_path: Path) -> None:
    settings = EngineSettings(precision="fp16", profile=VIDEO, workspace_mb=1024, timing_cache=tmp_path / "t.cache")
    command = build_command(Path("m_fp16.onnx"), Path("m.engine"), settings, tensorrt_major=10)
    assert command == [
        "trtexec", "--onnx=m_fp16.onnx", "--saveEngine=m.engine",
        "--minShapes=input:1x3x64x64", "--optShapes=input:1x3x360x640", "--maxShapes=input:1x3x720x1280",
        "--memPoolSize=workspace:1024M", f"--timingCacheFile={tmp_path / 't.cache'}", "--fp16",
    ]


def test_tensorrt10_int8_keeps_fp16_for_unquantised_layers() -> None:
    command = build_command(Path("q.onnx"), Path("q.engine"), EngineSettings(precision="int8"), tensorrt_major=10)
    assert command[-2:] == ["--fp16", "--int8"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt11_is_strongly_typed_without_precision_flags(precision: str) -> None:
    command = build_command(Path("m.onnx"), Path("m.engine"), EngineSettings(precision=precision),
                            input_name="lr", channels=1, tensorrt_major=11)
    assert "--stronglyTyped" in command
    assert not {"--fp16", "--int8"} & set(command)
    assert "--maxShapes=lr:1x1x720x1280" in command


def test_tensorrt11_refuses_implicit_calibration() -> None:
    with pytest.raises(SrExportError, match="no implicit calibrators"):
        build_command(Path("m.onnx"), Path("m.engine"), EngineSettings(precision="int8", calibrator="entropy"),
                      tensorrt_major=11)


def test_benchmark_command_fixes_the_shape() -> None:
    command = benchmark_command(Path("m.engine"), (360, 640), iterations=50)
    assert "--shapes=input:1x3x360x640" in command and "--iterations=50" in command


def test_tensorrt10_report_with_three_percentiles() -> None:
    report = parse_report((FIXTURES / "trt10_percentiles.txt").read_text())
    assert report.throughput_qps == 130.298
    gpu = report.gpu_compute
    assert (gpu.min, gpu.max, gpu.mean, gpu.median) == (5.34595, 13.3388, 7.58404, 7.14139)
    assert gpu.percentiles == {90.0: 10.2881, 95.0: 10.8175, 99.0: 12.9485}
    assert report.timings["h2d"].mean == 0.0122212 and report.timings["d2h"].percentiles[99.0] == 0.0994873
    assert report.timings["latency"].median == 7.16092
    assert (report.host_walltime_s, report.gpu_compute_total_s) == (3.00082, 2.96536)
    assert set(report.timings) == {"latency", "enqueue", "h2d", "gpu_compute", "d2h"}


def test_jetson_report_with_version_line() -> None:
    report = parse_report((FIXTURES / "jetson_xavier_trt84.txt").read_text())
    assert report.throughput_qps == 41087.7
    assert report.gpu_compute.percentiles == {99.0: 0.393188}
    assert report.tensorrt_version == "8.4.0"
    assert report.timings["enqueue"].max == 0.229004


def test_report_without_data_transfers_has_zero_copies() -> None:
    report = parse_report((FIXTURES / "no_data_transfers.txt").read_text())
    assert report.timings["h2d"].mean == 0.0 and report.timings["d2h"].max == 0.0
    assert report.gpu_compute.mean == report.timings["latency"].mean == 1.38629
    assert report.to_dict()["timings"]["gpu_compute"]["percentiles"] == {"99": 1.55853}


def test_text_without_a_summary_is_an_error() -> None:
    with pytest.raises(SrExportError, match="no trtexec performance summary"):
        parse_report("[I] Building engine...\n&&&& FAILED TensorRT.trtexec [TensorRT v100300]\n")
