"""Bring your own model: a class in a file or module, or a TorchScript file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.loader import ModelRequest, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESPCN = f"{FIXTURES / 'espcn.py'}:ESPCN"


def test_class_in_a_file_gets_the_scale_under_its_own_argument_name() -> None:
    model = load_model(ModelRequest(ESPCN, scale=2, kwargs={"width": 32}))
    assert model.info.scale == 2
    assert model.info.name == "espcn"
    assert model.module.first.out_channels == 32


def test_scale_is_measured_when_not_given() -> None:
    assert load_model(ModelRequest(ESPCN)).info.scale == 3  # the class's default


def test_class_in_an_importable_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    model = load_model(ModelRequest("espcn:ESPCN", scale=4))
    assert model.info.scale == 4
    sys.modules.pop("espcn", None)


def test_checkpoint_for_a_custom_class_loads_strictly(tmp_path: Path) -> None:
    source = load_model(ModelRequest(ESPCN, scale=2))
    path = tmp_path / "espcn.pth"
    torch.save({"params_ema": source.module.state_dict()}, path)
    with torch.no_grad():
        source.module.first.weight.add_(1.0)  # the checkpoint, not the init, must win
    model = load_model(ModelRequest(ESPCN, scale=2, weights=str(path)))
    assert not model.random_init
    assert model.weights_sha256
    with pytest.raises(SrExportError, match="wrong shapes"):
        load_model(ModelRequest(ESPCN, scale=3, weights=str(path)))


def test_torchscript_file(tmp_path: Path) -> None:
    source = load_model(ModelRequest(ESPCN, scale=2))
    path = tmp_path / "espcn.pt"
    torch.jit.script(source.module).save(str(path))
    model = load_model(ModelRequest(str(path), data_range=255))
    assert (model.info.scale, model.info.data_range) == (2, 255.0)
    x = torch.rand(1, 3, 20, 24)
    with torch.inference_mode():
        assert torch.allclose(model.module(x), source.module(x))


def test_in_channels_and_data_range_come_from_the_flags() -> None:
    model = load_model(ModelRequest(ESPCN, scale=2, kwargs={"channels": 1}, in_channels=1, data_range=255))
    assert (model.info.in_channels, model.info.color, model.info.data_range) == (1, "y", 255.0)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ModelRequest(f"{FIXTURES / 'espcn.py'}:Missing"), "has no attribute 'Missing'"),
        (ModelRequest(f"{FIXTURES / 'espcn.py'}:NotAModel"), "is not a torch.nn.Module class"),
        (ModelRequest(f"{FIXTURES / 'nope.py'}:ESPCN"), "model file not found"),
        (ModelRequest(ESPCN, kwargs={"bogus": 1}), r"cannot build ESPCN\(\*\*.*--model-kwargs"),
        (ModelRequest(ESPCN, scale=2, kwargs={"upscale_factor": 3}), "upscales x3 but --scale 2 was asked"),
        (ModelRequest(ESPCN, in_channels=1), r"raised on a 1x1x37x45 input.*--in-channels"),
        (ModelRequest("no_such_module_xyz:Net"), "cannot import module 'no_such_module_xyz'"),
        (ModelRequest(ESPCN, weights="official"), "only works with zoo models"),
        (ModelRequest(ESPCN, data_range=2), "must be 1 or 255"),
    ],
)
def test_bad_custom_models_fail_with_one_line(request_: ModelRequest, message: str) -> None:
    with pytest.raises(SrExportError, match=message) as caught:
        load_model(request_)
    assert "\n" not in str(caught.value)


def test_a_checkpoint_is_not_mistaken_for_torchscript(weights_dir: Path) -> None:
    with pytest.raises(SrExportError, match="not a TorchScript archive; for a checkpoint pass --model NAME --weights"):
        load_model(ModelRequest(str(weights_dir / "imdn_x2.pth")))
