"""`sr-bench --target` with profiles whose backend or precision this installation cannot run yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.targets import BACKENDS


@pytest.mark.parametrize(("target", "backend"), [("tflite-cpu", "tflite"), ("coreml", "coreml"),
                                                 ("trt-fp16", "tensorrt"), ("trt-int8", "tensorrt")])
def test_a_profile_for_a_backend_not_installed_names_the_extra(sr_bench, tmp_path, target: str, backend: str) -> None:
    if backend in BACKENDS:
        pytest.skip(f"the {backend} backend is part of this installation")
    result = sr_bench("--target", target, "--models", "imdn", "--db", tmp_path / "h.sqlite", "--out-dir", tmp_path)
    assert result.code == 2
    assert f"target '{target}' needs the '{backend}' backend" in result.error()
    assert f"pip install 'sr-export[{backend}]'" in result.error()
    assert not (tmp_path / "h.sqlite").exists() and not list(tmp_path.glob("*.onnx"))  # nothing was started


def test_cpu_int8_says_what_the_onnxruntime_backend_lacks(sr_bench, tmp_path) -> None:
    from sr_export.targets import get_target

    if "int8" in get_target("onnxruntime").precisions:
        pytest.skip("this installation's ONNX Runtime target builds INT8")
    result = sr_bench("--target", "cpu-int8", "--models", "imdn", "--out-dir", tmp_path)
    assert result.code == 2
    assert "target 'cpu-int8': the onnxruntime backend of this installation builds fp32, not int8" in result.error()


def test_a_jetson_profile_needs_no_tensorrt_here_but_a_reachable_board(sr_bench, tmp_path) -> None:
    # No such host: ssh fails to resolve it, before anything is exported.
    profile = tmp_path / "board.toml"
    profile.write_text('backend = "tensorrt"\nprecision = "fp16"\n[device]\nkind = "ssh"\n'
                       'host = "no-such-board.invalid"\nconnect_timeout_s = 2\n[bench]\ninput_sizes = ["16x16"]\n')
    espcn = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
    result = sr_bench("--target", profile, "--models", f"{espcn}:ESPCN", "--scale", "2", "--exporter", "legacy",
                      "--db", tmp_path / "h.sqlite", "--out-dir", tmp_path / "out")
    assert result.code == 2
    assert "reaching the device on no-such-board.invalid failed: ssh could not connect" in result.error()
    assert not (tmp_path / "out" / "espcn_x2.onnx").exists()
