"""The ONNX Runtime target: builds nothing, runs anything exported, explains bad inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.export.onnx import ExportOptions, export_onnx
from sr_export.models.loader import ModelRequest, load_model
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.registry import get_runtime as get_target


@pytest.fixture(scope="module")
def rfdn_artifact(tmp_path_factory) -> Artifact:
    model = load_model(ModelRequest("rfdn", scale=2))
    exported = export_onnx(model, ExportOptions(simplify=False))
    path = tmp_path_factory.mktemp("ort") / "rfdn.onnx"
    onnx.save(exported.proto, str(path))
    return Artifact(path, exported.metadata)


def test_build_returns_the_onnx_artifact_and_refuses_other_precisions(rfdn_artifact: Artifact) -> None:
    target = get_target("onnxruntime")
    assert target.build(rfdn_artifact, None) is rfdn_artifact
    with pytest.raises(SrExportError, match="runs fp32, int8, not fp16"):
        target.build(rfdn_artifact, None, precision="fp16")
    assert target.describe()["runtime"].startswith("onnxruntime ")


def test_dynamic_model_runs_at_any_size_with_a_thread_limit(rfdn_artifact: Artifact) -> None:
    runner = open_runner(rfdn_artifact, threads=1)
    for h, w in ((16, 16), (33, 21)):
        assert runner.infer(np.zeros((1, 3, h, w), np.float32)).shape == (1, 3, 2 * h, 2 * w)


def test_wrong_channel_count_is_a_one_line_error(rfdn_artifact: Artifact) -> None:
    with pytest.raises(SrExportError, match=r"input 1x1x16x16 does not fit the model's input \?x3x\?x\?"):
        open_runner(rfdn_artifact).infer(np.zeros((1, 1, 16, 16), np.float32))


def test_unloadable_file_is_explained(tmp_path) -> None:
    from sr_export.core.artifacts import ArtifactMetadata

    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not onnx")
    with pytest.raises(SrExportError, match="ONNX Runtime cannot load"):
        open_runner(Artifact(path, ArtifactMetadata("x", 2, 3, 1.0, "rgb")))
