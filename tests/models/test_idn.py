"""IDN's residual path is MATLAB bicubic upscaling, inside the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_export.data.matlab_resize import upscale
from sr_export.models.blocks import MatlabBicubicUpsample


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_in_network_bicubic_equals_matlab_imresize(scale: int) -> None:
    image = np.random.default_rng(scale).random((13, 18))
    expected = upscale(image, scale)
    with torch.inference_mode():
        got = MatlabBicubicUpsample(scale)(torch.from_numpy(image).float()[None, None])[0, 0].numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_bicubic_buffer_is_not_a_parameter() -> None:
    assert sum(p.numel() for p in MatlabBicubicUpsample(4).parameters()) == 0
