"""`sr-export tflite`: a user's model with resized attention, pixel shuffle and an output-padded
transposed conv converts, is proven against PyTorch, and conversion failures are one actionable line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'sr-export[tflite]')")

USER_NET = Path(__file__).resolve().parents[1] / "fixtures" / "mobile_user_net.py"


def test_user_model_converts_fp16_nchw_and_passes_parity(sr_export, tmp_path: Path) -> None:
    out = tmp_path / "user.tflite"
    result = sr_export("tflite", "--model", f"{USER_NET}:MobileUserNet", "--scale", "2", "--shape", "32x32",
                       "--layout", "nchw", "--fp16", "-o", out, "--json", tmp_path / "report.json")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rewrites"] == ["pixel-shuffle-dcr (1 site)", "transposed-conv-output-padding (1 site)",
                                 "transposed-conv-crop (1 site)"]
    assert report["parity"]["passed"] and report["parity"]["precision"] == "fp16"
    assert min(case["psnr_db"] or float("inf") for case in report["parity"]["cases"]) >= 60
    meta = json.loads((tmp_path / "user.tflite.json").read_text())
    assert (meta["layout"], meta["precision"], meta["input_shape"]) == ("NCHW", "fp16", [1, 3, 32, 32])
    assert "wrote" in result.err and "Traceback" not in result.err


def test_without_rewrites_the_failure_names_op_node_and_the_fix(sr_export, tmp_path: Path) -> None:
    out = tmp_path / "user.tflite"
    result = sr_export("tflite", "--model", f"{USER_NET}:MobileUserNet", "--scale", "2", "--shape", "32x32",
                       "--no-rewrite", "-o", out)
    assert result.code == 1
    line = result.error()
    assert "mhlo.convolution" in line and "transposed (ConvTranspose2d)" in line
    assert "drop --no-rewrite" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_several_shapes_need_a_folder(sr_export, tmp_path: Path) -> None:
    result = sr_export("tflite", "--model", "erfdn", "--shape", "32x32", "--shape", "48x48", "-o", tmp_path / "a.tflite")
    assert result.code == 2
    assert "give -o a folder" in result.error()


def test_a_shape_below_the_model_minimum_is_refused(sr_export, tmp_path: Path) -> None:
    result = sr_export("tflite", "--model", "erfdn", "--shape", "8x8", "-o", tmp_path)
    assert result.code == 2
    assert "minimum input" in result.error()
