"""The ONNX graphs TensorRT engines are built from, prepared and proven on the CPU."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from sr_export.checks.parity import run_parity
from sr_export.core.errors import SrExportError
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.runtimes.onnxruntime import OnnxRuntime as OnnxRuntimeTarget
from sr_export.runtimes.pytorch import PyTorchRunner
from sr_export.runtimes.tensorrt.onnx import is_qdq, prepare_onnx, prepared_name, qdq_problems
from sr_export.runtimes.tensorrt.settings import EngineSettings


def test_symmetric_per_channel_qdq_fits_tensorrt(imdn_qdq) -> None:
    proto = onnx.load(str(imdn_qdq.path))
    assert is_qdq(imdn_qdq.path)
    assert qdq_problems(proto) == []
    # Per-channel weights: a Conv weight's DequantizeLinear carries one scale per output channel.
    inits = {t.name: t for t in proto.graph.initializer}
    per_channel = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"
                   and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8
                   and len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1]
    assert per_channel


def test_qdq_int8_parity_in_onnxruntime(imdn_qdq, official_model) -> None:
    model = official_model("imdn", 2)
    prepared = prepare_onnx(imdn_qdq, EngineSettings(precision="int8"), imdn_qdq.path.parent)
    assert prepared.path == imdn_qdq.path and prepared.metadata.precision == "int8"
    inputs = builtin_parity_inputs(model.info, [(40, 56)], per_size=2)
    report = run_parity(OnnxRuntimeTarget().load(prepared), PyTorchRunner(model), inputs,
                        data_range=model.info.data_range, precision="int8")
    assert report.passed, report.to_dict()
    assert 30.0 <= report.worst_psnr_db < 80.0  # quantised for real, and still close


def test_asymmetric_uint8_qdq_is_refused(exported_official, official_model, set5_calibration, make_qdq,
                                         tmp_path: Path) -> None:
    source = exported_official("imdn", 2)
    batches = set5_calibration(official_model("imdn", 2).info)[:1]
    path = make_qdq(source.path, tmp_path / "uint8.onnx", batches, symmetric=False)
    problems = qdq_problems(onnx.load(str(path)))
    assert problems and "TensorRT needs INT8" in problems[0]
    from sr_export.runtimes.open import open_artifact

    with pytest.raises(SrExportError, match="not a QDQ graph TensorRT can build"):
        prepare_onnx(open_artifact(path), EngineSettings(precision="int8"), tmp_path)


def test_float_graph_without_recipe_says_how_to_get_int8(exported_official, tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="--int8 --calib RECIPE.*--int8 --from model_qdq.onnx"):
        prepare_onnx(exported_official("imdn", 2), EngineSettings(precision="int8"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_entropy_calibrator_builds_from_the_fp32_graph(exported_official, tmp_path: Path) -> None:
    source = exported_official("imdn", 2)
    prepared = prepare_onnx(source, EngineSettings(precision="int8", calibrator="entropy"), tmp_path)
    assert prepared == source


def test_fp32_needs_nothing_prepared(exported_official, tmp_path: Path) -> None:
    source = exported_official("imdn", 2)
    assert prepare_onnx(source, EngineSettings(), tmp_path) == source


def test_fp32_from_a_qdq_graph_is_refused(imdn_qdq, tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="is an INT8 QDQ graph; this step needs the FP32 ONNX"):
        prepare_onnx(imdn_qdq, EngineSettings(precision="fp16"), tmp_path)


def test_prepared_names() -> None:
    assert prepared_name(Path("imdn_x2.onnx"), "fp16") == "imdn_x2_fp16.onnx"
    assert prepared_name(Path("imdn_x2_fp16.onnx"), "fp16") == "imdn_x2_fp16.onnx"
