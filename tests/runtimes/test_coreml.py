"""The Core ML target: conversion of real zoo models, packages written atomically, FP16 parity on Linux.

Programs are run by the numpy reference executor here (Core ML's predict
needs macOS); the runner's name says so.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")

from sr_export.checks.parity import run_parity  # noqa: E402
from sr_export.core.artifacts import sidecar_path  # noqa: E402
from sr_export.core.errors import SrExportError  # noqa: E402
from sr_export.core.tolerances import tolerance_for  # noqa: E402
from sr_export.data.parity_inputs import builtin_parity_inputs  # noqa: E402
from sr_export.models.loader import ModelRequest, load_model  # noqa: E402
from sr_export.runtimes.coreml.convert import convert_model  # noqa: E402
from sr_export.runtimes.coreml.options import CoreMLOptions  # noqa: E402
from sr_export.runtimes.coreml.package import write_package  # noqa: E402
from sr_export.runtimes.coreml.sizes import InputSizes  # noqa: E402
from sr_export.runtimes.open import (
    open_artifact,  # noqa: E402
    open_runner,  # noqa: E402
)
from sr_export.runtimes.pytorch import PyTorchRunner  # noqa: E402
from sr_export.runtimes.registry import get_runtime as get_target  # noqa: E402


def fp16_parity(artifact, model, sizes):
    runner = open_runner(artifact)
    inputs = builtin_parity_inputs(model.info, sizes, 1)
    return run_parity(runner, PyTorchRunner(model), inputs, data_range=model.info.data_range, precision="fp16")


@pytest.fixture(scope="module")
def erfdn_flexible(tmp_path_factory):
    """A slim E-RFDN as an FP16 program taking any size in a range (needs the attention rewrite).

    Slim (2 blocks, 16 channels) to keep the conversion cheap; every op type of
    the full model is there. scripts/coreml_zoo_sweep.py measures the full zoo.
    """
    model = load_model(ModelRequest("erfdn", scale=2, kwargs={"channels": 16, "blocks": 2}))
    options = CoreMLOptions(sizes=InputSizes.from_options(size_range=((24, 24), (96, 96))))
    converted = convert_model(model, options)
    folder = tmp_path_factory.mktemp("coreml")
    return model, converted, write_package(converted, folder / "erfdn_x2.mlpackage")


def test_erfdn_converts_with_flexible_sizes_and_meets_the_fp16_bound(erfdn_flexible) -> None:
    model, converted, artifact = erfdn_flexible
    assert converted.route == "torch.export"
    assert any("attention resize" in note for note in converted.notes)
    assert converted.op_counts.get("upsample_bilinear", 0) == 0  # the rewrite removed the fixed-ratio resize
    report = fp16_parity(artifact, model, [(24, 24), (37, 53)])
    assert report.passed, report.to_dict()
    assert report.worst_psnr_db < 120  # FP16 really ran: not bit-identical to float32 PyTorch
    assert "reference-executor" in report.candidate or sys.platform == "darwin"


def test_package_is_a_folder_with_a_metadata_sidecar(erfdn_flexible) -> None:
    _, _, artifact = erfdn_flexible
    assert (artifact.path / "Manifest.json").is_file()
    sidecar = json.loads(sidecar_path(artifact.path).read_text())
    assert sidecar["backend"] == "coreml" and sidecar["precision"] == "fp16"
    reopened = open_artifact(artifact.path)
    assert reopened.metadata.input_shape == (1, 3, "height", "width")
    assert reopened.metadata.exporter == "torch.export"
    assert not list(artifact.path.parent.glob(".*tmp*"))


def test_sizes_outside_the_range_are_refused(erfdn_flexible) -> None:
    _, _, artifact = erfdn_flexible
    runner = get_target("coreml").load(artifact)
    with pytest.raises(SrExportError, match="range 24x24 to 96x96, not 20x20"):
        runner.infer(np.zeros((1, 3, 20, 20), np.float32))


@pytest.fixture(scope="module")
def idn_fixed(tmp_path_factory):
    model = load_model(ModelRequest("idn", scale=3))
    artifact = get_target("coreml").from_model(model, tmp_path_factory.mktemp("idn"), precision="fp16", shape=(20, 24))
    return model, artifact


def test_idn_with_its_transposed_conv_and_bicubic_path_converts_via_torch_export(idn_fixed) -> None:
    model, artifact = idn_fixed
    assert artifact.path.name == "idn_x3_fp16.mlpackage"
    assert artifact.metadata.static_hw == (20, 24)
    report = fp16_parity(artifact, model, [(20, 24)])
    assert report.passed, report.to_dict()
    assert report.tolerance == tolerance_for("fp16")


def test_fixed_size_programs_run_other_sizes_in_tiles(idn_fixed) -> None:
    model, artifact = idn_fixed
    report = fp16_parity(artifact, model, [(31, 26)])
    assert "tiles 20x24" in report.candidate
    assert report.worst_psnr_db > 40


def test_bad_options_are_one_line_errors(official_model) -> None:
    model = official_model("imdn", 2)
    with pytest.raises(SrExportError, match="deployment target 'iOS9'"):
        convert_model(model, CoreMLOptions(deployment_target="iOS9"))
    with pytest.raises(SrExportError, match="one of --shape, --shapes and --range"):
        InputSizes.from_options((32, 32), ((32, 32),))
    with pytest.raises(SrExportError, match="at least 15x15"):
        convert_model(official_model("erfdn", 4), CoreMLOptions(sizes=InputSizes.from_options((12, 12))))
    with pytest.raises(SrExportError, match="converted from the PyTorch model"):
        get_target("coreml").build(None, None)


def test_input_sizes_know_what_they_accept() -> None:
    enumerated = InputSizes.from_options(shapes=((32, 32), (48, 64)))
    assert enumerated.accepts((48, 64)) and not enumerated.accepts((48, 48))
    assert enumerated.bounds == ((32, 32), (48, 64))
    ranged = InputSizes.from_options(size_range=((16, 16), (64, 128)))
    assert ranged.accepts((16, 128)) and not ranged.accepts((65, 20))
    assert all(ranged.accepts(size) for size in ranged.check_sizes())
    assert InputSizes.from_options(shapes=((40, 40), (40, 40))).fixed == (40, 40)
