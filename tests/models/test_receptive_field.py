"""The context and the shift period a network needs are measured, so tiling can be exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from sr_export.models.loader import ModelInfo
from sr_export.models.receptive_field import measure_receptive_field

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INFO = ModelInfo("probe", 2, 3, 1.0, "rgb", 1)


def _convs(count: int) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(count - 2):
        layers += [nn.Conv2d(8, 8, 3, padding=1)]
    layers += [nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("convs", [2, 5])
def test_a_stack_of_3x3_convs_sees_one_pixel_per_conv(convs: int) -> None:
    measured = measure_receptive_field(_convs(convs), INFO)
    assert measured is not None
    assert measured.radius == convs and not measured.global_context and measured.period == 1


def test_global_pooling_is_global_context() -> None:
    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _convs(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # Whole-image statistics fed back into every pixel, as channel attention does.
            return self.body(x) + 100 * x.mean(dim=(1, 2, 3), keepdim=True)

    assert measure_receptive_field(Pooled().eval(), INFO).global_context


def test_window_attention_has_the_window_as_period() -> None:
    spec = importlib.util.spec_from_file_location("window_attention", FIXTURES / "window_attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    measured = measure_receptive_field(module.WindowSR(scale=2, window=8).eval(), INFO)
    assert measured is not None and measured.period == 8 and not measured.global_context


def test_measuring_a_torchscript_model_shows_no_grad_warning_and_leaves_that_warning_on_elsewhere() -> None:
    import warnings

    scripted = torch.jit.trace(_convs(3), torch.rand(1, 3, 8, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measured = measure_receptive_field(scripted, INFO)
        non_leaf = torch.ones(1, requires_grad=True) * 2
        assert non_leaf.grad is None  # the same torch warning, from code other than the measurement
    assert measured.radius == 3  # measured on the TorchScript module as on the module itself
    grad_warnings = [w for w in caught if ".grad attribute" in str(w.message)]
    assert len(grad_warnings) == 1 and grad_warnings[0].filename == __file__


def test_a_measurement_is_remembered_under_the_modules_fingerprint_and_a_damaged_record_is_measured_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sr_export.models import receptive_field

    monkeypatch.setenv("SR_EXPORT_CACHE", str(tmp_path))
    measured = receptive_field.remembered_receptive_field(_convs(3), INFO)
    (record,) = (tmp_path / "receptive-fields").glob("*.json")
    assert measured == measure_receptive_field(_convs(3), INFO) and measured.radius == 3
    probes = []
    monkeypatch.setattr(receptive_field, "measure_receptive_field", lambda *a: probes.append(a) or measured)
    assert receptive_field.remembered_receptive_field(_convs(3), INFO) == measured and probes == []
    assert receptive_field.remembered_receptive_field(_convs(4), INFO) == measured and len(probes) == 1  # a new model
    record.write_text("{damaged")
    assert receptive_field.remembered_receptive_field(_convs(3), INFO) == measured and len(probes) == 2
