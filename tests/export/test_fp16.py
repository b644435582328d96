"""FP16-typed ONNX with FP32 I/O: what TensorRT 11 builds FP16 engines from, proven in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from sr_export.checks.parity import run_parity
from sr_export.core.errors import StageFailed
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.export.fp16 import KEEP_FLOAT_OPS, save_fp16
from sr_export.runtimes.onnxruntime import OnnxRuntime as OnnxRuntimeTarget
from sr_export.runtimes.pytorch import PyTorchRunner


@pytest.fixture(scope="module")
def erfdn_fp16(exported_official, tmp_path_factory: pytest.TempPathFactory):
    # E-RFDN: 0..255 data range and ESA attention (MaxPool, Resize): the hardest zoo model for FP16.
    return save_fp16(exported_official("erfdn", 4), tmp_path_factory.mktemp("fp16") / "erfdn_x4_fp16.onnx")


def _elem_type(value_info) -> int:
    return value_info.type.tensor_type.elem_type


def test_graph_is_fp16_inside_and_fp32_at_its_edges(erfdn_fp16) -> None:
    proto = onnx.load(str(erfdn_fp16.path))
    assert [_elem_type(v) for v in proto.graph.input] == [onnx.TensorProto.FLOAT]
    assert [_elem_type(v) for v in proto.graph.output] == [onnx.TensorProto.FLOAT]
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    weight_types = {t.data_type for t in proto.graph.initializer if t.name in conv_weights}
    assert weight_types == {onnx.TensorProto.FLOAT16}


def test_sensitive_operators_stay_fp32(erfdn_fp16) -> None:
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(erfdn_fp16.path)))
    types = {v.name: _elem_type(v) for v in proto.graph.value_info}
    kept = [n for n in proto.graph.node if n.op_type in KEEP_FLOAT_OPS]
    assert kept, "E-RFDN's ESA upsamples with Resize"
    for node in kept:
        assert all(types.get(o, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT for o in node.output), node.name


def test_metadata_says_fp16_and_keeps_the_model(erfdn_fp16, exported_official) -> None:
    source = exported_official("erfdn", 4).metadata
    meta = erfdn_fp16.metadata
    assert (meta.precision, meta.model, meta.scale, meta.weights_sha256) == ("fp16", "erfdn", 4, source.weights_sha256)
    assert erfdn_fp16.path.stat().st_size < 0.6 * exported_official("erfdn", 4).path.stat().st_size


@pytest.mark.parametrize(("name", "scale"), [("erfdn", 4), ("imdn", 2)])
def test_fp16_parity_on_real_images(exported_official, official_model, tmp_path: Path, name: str, scale: int) -> None:
    model = official_model(name, scale)
    fp16 = save_fp16(exported_official(name, scale), tmp_path / f"{name}_fp16.onnx")
    inputs = builtin_parity_inputs(model.info, [(40, 56)], per_size=2)
    report = run_parity(OnnxRuntimeTarget().load(fp16), PyTorchRunner(model), inputs,
                        data_range=model.info.data_range, precision="fp16")
    assert report.passed, report.to_dict()
    assert report.worst_psnr_db >= 50.0
    # FP16 really happened: the outputs are not bit-identical to FP32.
    assert report.worst_max_abs_error > 0


def test_an_fp16_graph_is_not_converted_twice(erfdn_fp16, tmp_path: Path) -> None:
    with pytest.raises(StageFailed, match="not an FP32 graph"):
        save_fp16(erfdn_fp16, tmp_path / "again.onnx")
    assert not (tmp_path / "again.onnx").exists()


def test_fp16_graph_runs_with_fp32_inputs(erfdn_fp16) -> None:
    runner = OnnxRuntimeTarget().load(erfdn_fp16)
    out = runner.infer(np.full((1, 3, 16, 24), 128.0, np.float32))
    assert out.dtype == np.float32 and out.shape == (1, 3, 64, 96)
