"""The output-padding rewrite: a zero-padded kernel gives PyTorch's output exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sr_export.rewrites.transposed_conv import apply, rewritable


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "output_padding", "groups"),
    [
        (3, 2, 1, 1, 1),  # the usual x2 upsampler
        (3, 3, 0, 2, 1),  # output padding larger than padding: the extra rows see only the bias
        ((5, 3), (4, 2), (2, 1), (3, 1), 1),  # non-square everything
        (4, 2, 1, (1, 0), 2),  # grouped, padding on one axis only
    ],
)
def test_zero_padded_kernel_reproduces_output_padding(kernel, stride, padding, output_padding, groups) -> None:
    torch.manual_seed(0)
    original = nn.ConvTranspose2d(4, 6, kernel, stride=stride, padding=padding, output_padding=output_padding, groups=groups)
    model = nn.Sequential(nn.Identity(), original).eval()
    expected_layer = model[1]
    x = torch.randn(2, 4, 6, 7)
    expected = model(x)
    assert apply(model) == 1
    assert model[1] is not expected_layer and model[1].output_padding == (0, 0)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)


def test_layers_without_output_padding_or_with_dilation_are_kept() -> None:
    assert not rewritable(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1))
    assert not rewritable(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, dilation=2))
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1))
    assert apply(model) == 0
