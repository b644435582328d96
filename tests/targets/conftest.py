"""Fixtures for target tests: an INT8 QDQ ONNX made the way TensorRT's parser wants it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def ort_qdq(source: Path, output: Path, batches: list[np.ndarray], *, symmetric: bool = True) -> Path:
    """Static INT8 QDQ by ONNX Runtime's quantiser: per-channel weights, biases left in float.

    ``symmetric`` True is TensorRT's form (signed INT8, zero points 0);
    False gives ONNX Runtime's default asymmetric UINT8 activations.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._left = list(batches)

        def get_next(self):
            return {"input": self._left.pop(0)} if self._left else None

    quantize_static(
        str(source), str(output), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True, "QuantizeBias": False},
    )
    proto = onnx.load(str(output))
    # The quantiser may drop the FP32 file's sr-export metadata; keep the model description.
    source_props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    del proto.metadata_props[:]
    for key, value in source_props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(output))
    return output


@pytest.fixture(scope="session")
def make_qdq():
    return ort_qdq


@pytest.fixture(scope="session")
def set5_calibration(set5: Path):
    """LR crops of Set5 (not the built-in parity photos) in a model's range: calibration data."""
    from sr_export.data.datasets import load_dataset
    from sr_export.data.images import center_crop
    from sr_export.data.tensors import image_to_batch

    def batches(info, size: int = 48) -> list[np.ndarray]:
        pairs = load_dataset(set5, info.scale)
        return [image_to_batch(center_crop(p.lr, size, size), info) for p in pairs]

    return batches


@pytest.fixture(scope="session")
def imdn_qdq(exported_official, official_model, set5_calibration, tmp_path_factory: pytest.TempPathFactory):
    """IMDN x2 (official weights) quantised to symmetric per-channel INT8 QDQ: an Artifact."""
    from sr_export.artifacts import open_artifact

    source = exported_official("imdn", 2)
    batches = set5_calibration(official_model("imdn", 2).info)
    path = ort_qdq(source.path, tmp_path_factory.mktemp("qdq") / "imdn_x2_qdq.onnx", batches)
    return open_artifact(path)
