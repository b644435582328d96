"""Every zoo model, at every scale it supports: the architecture the papers describe."""

from __future__ import annotations

import pytest
import torch

from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo

# ../shared/reference/numbers.md, "Parameter counts (exact)".
PUBLISHED_PARAMS = {
    ("imdn", 2): 694_404, ("imdn", 3): 703_059, ("imdn", 4): 715_176,
    ("erfdn", 4): 433_448,
    ("rfdn", 2): 534_036, ("rfdn", 3): 540_531, ("rfdn", 4): 549_624,
    ("rfdn-l", 2): 625_962, ("rfdn-l", 4): 642_846,
    ("idn", 2): 552_769, ("idn", 3): 552_769, ("idn", 4): 552_769,
}

ZOO_CASES = [(name, scale) for name, spec in zoo().items() for scale in spec.scales]


@pytest.mark.parametrize(("name", "scale"), sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_the_published_one(name: str, scale: int) -> None:
    assert load_model(ModelRequest(name, scale=scale)).params == PUBLISHED_PARAMS[(name, scale)]


@pytest.mark.parametrize(("name", "scale"), ZOO_CASES)
def test_output_is_scale_times_input_on_odd_non_square_inputs(name: str, scale: int) -> None:
    model = load_model(ModelRequest(name, scale=scale))
    size = max(model.info.min_input_size, 17)
    x = torch.rand(1, model.info.in_channels, size, size + 6)
    with torch.inference_mode():
        y = model.module(x)
    assert tuple(y.shape) == (1, model.info.in_channels, size * scale, (size + 6) * scale)


@pytest.mark.parametrize(("name", "scale"), ZOO_CASES)
def test_random_init_is_reproducible_and_flagged(name: str, scale: int) -> None:
    first = load_model(ModelRequest(name, scale=scale))
    second = load_model(ModelRequest(name, scale=scale))
    assert first.random_init
    assert any("randomly initialised" in note for note in first.notes)
    for a, b in zip(first.module.state_dict().values(), second.module.state_dict().values()):
        assert torch.equal(a, b)


def test_model_info_records_range_and_colour() -> None:
    assert load_model(ModelRequest("erfdn")).info.data_range == 255.0
    assert load_model(ModelRequest("imdn")).info.data_range == 1.0
    idn = load_model(ModelRequest("idn")).info
    assert (idn.in_channels, idn.color) == (1, "y")


def test_scale_defaults_to_four() -> None:
    assert load_model(ModelRequest("rfdn")).info.scale == 4


def test_unsupported_scale_is_refused() -> None:
    from sr_export.core.errors import SrExportError

    with pytest.raises(SrExportError, match="supports scales 2, 3, 4, not 5"):
        load_model(ModelRequest("imdn", scale=5))


def test_unknown_model_lists_the_zoo() -> None:
    from sr_export.core.errors import SrExportError

    with pytest.raises(SrExportError, match="unknown model 'edsr'; choose one of erfdn, idn, imdn, rfdn, rfdn-l"):
        load_model(ModelRequest("edsr"))
