"""`sr-export trt`: prepares and proves the ONNX here, builds the engine where TensorRT is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sr_export.core.artifacts import read_metadata

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the engine gets built instead")
NOT_INSTALLED = "error: TensorRT not installed: install sr-export[tensorrt] on a machine with an NVIDIA GPU"


@needs_no_tensorrt
def test_fp16_from_a_zoo_model_stops_at_the_tensorrt_boundary(sr_export, tmp_path: Path) -> None:
    engine = tmp_path / "imdn_x2_fp16.engine"
    result = sr_export("trt", "--model", "imdn", "--scale", "2", "--weights", "official", "--exporter", "legacy",
                       "--fp16", "-o", engine)
    assert result.code == 4
    assert result.error() == NOT_INSTALLED
    prepared = tmp_path / "imdn_x2_fp16.onnx"
    assert read_metadata(prepared).precision == "fp16"
    assert f"proven {prepared}" in " ".join(result.err.split())
    assert not engine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imdn_x2.onnx", "imdn_x2_fp16.onnx"]


@needs_no_tensorrt
def test_int8_from_a_qdq_onnx_is_proven_then_stops(sr_export, imdn_qdq_file: Path, tmp_path: Path) -> None:
    result = sr_export("trt", "--int8", "--from", imdn_qdq_file, "--shape", "40x56", "--json", tmp_path / "r.json",
                       "-o", tmp_path / "q.engine")
    assert result.code == 4
    assert result.error() == NOT_INSTALLED
    assert "int8: PSNR >= 35" in " ".join(result.err.split())  # the INT8 output-PSNR bound of checks/parity.py
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["prepared_onnx"] == str(imdn_qdq_file)
    assert report["prepared_parity"]["passed"] is True
    assert report["settings"]["profile"] == {"min": [40, 56], "opt": [40, 56], "max": [40, 56]}


def test_int8_from_a_float_onnx_without_recipe_is_bad_input(sr_export, fp32_file: Path, tmp_path: Path) -> None:
    result = sr_export("trt", "--int8", "--from", fp32_file, "-o", tmp_path / "m.engine")
    assert result.code == 2
    assert "--int8 --calib RECIPE" in result.error()
    assert list(tmp_path.iterdir()) == []


def test_int8_calibration_with_an_unknown_recipe_is_one_line(sr_export, fp32_file: Path, tmp_path: Path) -> None:
    # Whether or not the calibration module is installed, this is bad input, not a traceback.
    result = sr_export("trt", "--int8", "--calib", "no-such-recipe", "--from", fp32_file, "-o", tmp_path / "m.engine")
    assert result.code == 2
    assert result.error()
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min", "128x128", "--opt", "64x64"], "min <= opt"),
        (["--max", "4320x7680"], "exceeds 2160 px"),
        (["--fp16", "--calib", "default"], "--calib applies to --int8 only"),
        (["--target", "cpu"], "is for onnxruntime, not tensorrt"),
        (["-o", "model.trt"], "ends in .engine or .plan"),
    ],
)
def test_bad_settings_are_one_line(sr_export, fp32_file: Path, args: list[str], message: str) -> None:
    result = sr_export("trt", "--from", fp32_file, *args)
    assert result.code == 2
    assert message in result.error()


def test_nothing_to_build_is_explained(sr_export) -> None:
    result = sr_export("trt", "--fp16")
    assert result.code == 2 and "--model NAME" in result.error()


@pytest.fixture(scope="module")
def fp32_file(exported_official) -> Path:
    return exported_official("imdn", 2).path


@pytest.fixture(scope="module")
def imdn_qdq_file(exported_official, official_model, set5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("sr_export_test_qdq", Path(__file__).parents[1] / "fixtures" / "qdq.py")
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    batches = helper.set5_batches(set5, official_model("imdn", 2).info)
    return helper.ort_qdq(exported_official("imdn", 2).path, tmp_path_factory.mktemp("qdq") / "imdn_x2_qdq.onnx",
                          batches)


@pytest.mark.skipif(not HAS_TENSORRT, reason="no TensorRT runtime here (pip install 'sr-export[tensorrt]' on a GPU machine)")
def test_fp16_engine_is_built_and_proven(sr_export, fp32_file: Path, tmp_path: Path) -> None:
    engine = tmp_path / "imdn_x2_fp16.engine"
    result = sr_export("trt", "--from", fp32_file, "--fp16", "--min", "32x32", "--opt", "64x64", "--max", "128x128",
                       "--timing-cache", tmp_path / "timing.cache", "-o", engine)
    assert result.code == 0, result.err
    assert engine.is_file() and Path(f"{engine}.manifest.json").is_file()
    assert sr_export("check", engine).code == 0
