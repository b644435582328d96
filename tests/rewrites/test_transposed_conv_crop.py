"""The crop rewrite: an unpadded transposed conv and a slice give PyTorch's padded output exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sr_export.rewrites import apply_rewrites
from sr_export.rewrites.transposed_conv_crop import CroppedTransposedConv, apply


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "output_padding"),
    [(17, 4, 5, 0), (17, 2, 7, 0), (3, 2, 1, 1), ((5, 3), (3, 2), (2, 1), 0)],
)
def test_unpadded_conv_and_crop_reproduce_the_padded_output(kernel, stride, padding, output_padding) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(8, 3, kernel, stride=stride, padding=padding,
                                             output_padding=output_padding)).eval()
    x = torch.randn(1, 8, 9, 11)
    expected = model(x)
    assert apply(model) == 1
    assert isinstance(model[0], CroppedTransposedConv) and model[0].conv.padding == (0, 0)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)
    assert apply(model) == 0  # idempotent


def test_idn_upsampler_is_rewritten_for_tflite_and_the_model_is_unchanged() -> None:
    from sr_export.models.loader import ModelRequest, load_model

    model = load_model(ModelRequest("idn", scale=3)).module
    x = torch.rand(1, 1, 20, 23)
    rewritten, applied = apply_rewrites(model, "tflite")
    assert any(a.startswith("transposed-conv-crop") for a in applied)
    with torch.inference_mode():
        torch.testing.assert_close(rewritten(x), model(x), rtol=0, atol=1e-5)
