"""``sr-export coreml``: writes a parity-checked .mlpackage, or one error line and nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
USER_MODEL = f"{FIXTURES / 'attention_shuffle.py'}:AttentionShuffleNet"


def test_user_model_with_attention_resize_pixel_shuffle_and_deconv_converts_and_passes(sr_export, tmp_path) -> None:
    out = tmp_path / "user.mlpackage"
    result = sr_export("coreml", "--model", USER_MODEL, "--scale", "2", "--shape", "28x36", "-o", out, "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["parity"]["passed"] and report["parity"]["precision"] == "fp16"
    assert {"conv_transpose", "pixel_shuffle"} <= set(report["ops"])
    assert report["size_bytes"] > 0 and report["convert_seconds"] > 0
    assert out.is_dir() and (tmp_path / "user.mlpackage.json").is_file()
    assert "wrote" in result.err


def test_int8_weights_with_enumerated_shapes(sr_export, tmp_path) -> None:
    out = tmp_path / "imdn.mlpackage"
    slim = '{"channels": 16, "blocks": 2}'  # every IMDN op, a fraction of the conversion time
    result = sr_export("coreml", "--model", "imdn", "--scale", "2", "--model-kwargs", slim, "--shapes", "24x24,20x32",
                       "--int8-weights", "--deployment-target", "iOS16", "-o", out, "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["metadata"]["precision"] == "int8"
    assert "constexpr_affine_dequantize" in report["ops"]
    assert [case["input_shape"][2:] for case in report["parity"]["cases"]] == [[24, 24], [20, 32]]
    assert report["parity"]["passed"]


def test_conversion_failure_is_one_line_naming_the_node_and_writes_nothing(sr_export, tmp_path) -> None:
    out = tmp_path / "user.mlpackage"
    result = sr_export("coreml", "--model", USER_MODEL, "--scale", "2", "--range", "24x24:64x64", "--route", "export",
                       "-o", out)
    assert result.code == 1
    line = result.error()
    assert "convert failed" in line and "upsample_bilinear2d" in line and "--shape" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_output_must_be_an_mlpackage(sr_export, tmp_path) -> None:
    result = sr_export("coreml", "--model", "imdn", "-o", tmp_path / "model.onnx")
    assert result.code == 2 and ".mlpackage" in result.error()
