"""Every zoo model exports to a checked, simplified ONNX graph that ONNX Runtime runs like PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from sr_export.checks.parity import run_parity
from sr_export.core.artifacts import Artifact, read_metadata
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.export.onnx import ExportOptions, default_filename, export_onnx
from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.pytorch import PyTorchRunner


@pytest.mark.parametrize("name", sorted(zoo()))
def test_zoo_model_exports_with_dynamic_size_and_keeps_parity(name: str, tmp_path) -> None:
    # One block of each architecture (random weights): every op and shape rule of the zoo model at a quarter of
    # the dynamo export time. Full-depth official exports: the README's commands and the tests beside this one.
    model = load_model(ModelRequest(name, scale=3, kwargs={"blocks": 1}))
    exported = export_onnx(model)
    onnx.checker.check_model(exported.proto, full_check=True)
    assert exported.metadata.simplified, exported.notes
    assert exported.metadata.input_shape[2:] == ("height", "width")
    path = tmp_path / default_filename(model)
    onnx.save(exported.proto, str(path))
    report = run_parity(open_runner(Artifact(path, exported.metadata)), PyTorchRunner(model),
                        builtin_parity_inputs(model.info), data_range=model.info.data_range)
    assert report.passed, report.to_dict()
    assert {case.input_shape[2:] for case in report.cases} == {(64, 64), (45, 71)}


def test_simplification_shrinks_the_graph_without_changing_outputs(official_model) -> None:
    model = official_model("erfdn", 4)
    # The dynamo exporter already optimises its graph; the legacy tracer's is what onnxsim shrinks.
    raw = export_onnx(model, ExportOptions(simplify=False, exporter="legacy"))
    simplified = export_onnx(model, ExportOptions(exporter="legacy"))
    assert len(simplified.proto.graph.node) < len(raw.proto.graph.node)
    assert not raw.metadata.simplified and simplified.metadata.simplified


def test_metadata_travels_inside_the_file(official_model, tmp_path) -> None:
    model = official_model("imdn", 2)
    exported = export_onnx(model, ExportOptions(shape=(32, 40)))
    path = tmp_path / "imdn.onnx"
    onnx.save(exported.proto, str(path))
    meta = read_metadata(path)
    assert (meta.model, meta.scale, meta.data_range, meta.color, meta.in_channels) == ("imdn", 2, 1.0, "rgb", 3)
    assert meta.weights_sha256 == model.weights_sha256 and not meta.random_init
    assert meta.static_hw == (32, 40) and not meta.dynamic
    assert meta.request["weights"].endswith("imdn_x2.pth") and meta.request["scale"] == 2
    assert meta.opset == 18 and meta.exporter in ("dynamo", "legacy") and meta.verified_sizes == ((32, 40),)


def test_the_exported_graph_computes_the_checkpoint_not_a_random_init(official_model, tmp_path) -> None:
    model = official_model("erfdn", 4)
    exported = export_onnx(model)
    path = tmp_path / "erfdn.onnx"
    onnx.save(exported.proto, str(path))
    runner = open_runner(Artifact(path, exported.metadata))
    (case,) = builtin_parity_inputs(model.info, sizes=[(24, 24)], per_size=1)
    random = load_model(ModelRequest("erfdn"))
    with torch.inference_mode():
        random_out = random.module(torch.from_numpy(case.batch)).numpy()
    assert np.abs(runner.infer(case.batch) - random_out).max() > 1.0
