"""Running an artifact with another Python environment's runtime: what goes wrong is one line saying what to do.

The working case (every TFLite kind on tflite-runtime 2.14, ONNX files on
ONNX Runtime 1.18) is in test_tflite_old_runtime.py and
test_onnxruntime_oldest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.core.artifacts import Artifact, ArtifactMetadata
from sr_export.core.errors import SrExportError
from sr_export.runtimes.elsewhere import ElsewhereRunner
from sr_export.runtimes.registry import get_runtime


def _tflite(tmp_path: Path) -> Artifact:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"not a flatbuffer")
    metadata = ArtifactMetadata(model="x", scale=2, in_channels=3, data_range=1.0, color="rgb", format="tflite",
                                backend="tflite", layout="NHWC", input_shape=(1, 3, 8, 8))
    return Artifact(path, metadata)


def test_a_python_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="--runtime-python .* is not a file") as refused:
        ElsewhereRunner(_tflite(tmp_path), get_runtime("tflite"), tmp_path / "no" / "python")
    assert "\n" not in str(refused.value)


def test_a_python_without_the_runtime_says_which_runtime_is_missing(tmp_path: Path, oldest_onnxruntime_python) -> None:
    # The ONNX Runtime side environment has numpy and onnxruntime, no TFLite interpreter.
    with pytest.raises(SrExportError, match="neither ai_edge_litert nor tflite_runtime is installed") as refused:
        ElsewhereRunner(_tflite(tmp_path), get_runtime("tflite"), oldest_onnxruntime_python)
    assert str(oldest_onnxruntime_python) in str(refused.value) and "\n" not in str(refused.value)


def test_a_file_the_runtime_refuses_is_its_own_one_line_error(tmp_path: Path, tflite_214_python) -> None:
    with pytest.raises(SrExportError) as refused:
        ElsewhereRunner(_tflite(tmp_path), get_runtime("tflite"), tflite_214_python)
    assert "\n" not in str(refused.value) and str(tflite_214_python) in str(refused.value)
