"""MATLAB bicubic imresize, reproduced bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_export.data.images import mod_crop, read_image
from sr_export.data.matlab_resize import cubic, downscale, imresize, upscale

SET5 = ("baby", "bird", "butterfly", "head", "woman")


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", SET5)
def test_set5_lr_images_are_reproduced_exactly(set5: Path, name: str, scale: int) -> None:
    hr = mod_crop(read_image(set5 / "HR" / f"{name}.bmp"), scale)
    given = read_image(set5 / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.bmp")
    made = downscale(hr, scale)
    assert made.dtype == np.uint8
    assert np.array_equal(made, given)


def test_kernel_is_matlabs_a_minus_half() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 inside 1, -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 inside 2.
    assert np.allclose(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0])


def test_halving_a_vector_by_hand() -> None:
    signal = 10.0 * np.arange(16, dtype=np.float64)[None, :]  # 0, 10, ..., 150
    # Output pixel 1 (1-based) sits at input position 1.5. Shrinking x2 stretches the
    # kernel to width 8, so inputs -2..5 contribute with weights cubic(d / 2) / 2
    # (normalised), and indices left of the image mirror with the edge kept (0->1, -1->2, -2->3).
    taps = np.arange(-2, 6)
    weights = 0.5 * cubic((1.5 - taps) / 2)
    weights /= weights.sum()
    mirrored = np.where(taps < 1, 1 - taps, taps)
    expected_first = float(weights @ signal[0, mirrored - 1])
    result = imresize(signal, 0.5)
    assert result.shape == (1, 8)
    assert result[0, 0] == pytest.approx(expected_first, abs=1e-12)
    # Away from the borders a ramp stays a ramp: pixel k samples position 2k - 0.5.
    assert result[0, 2] == pytest.approx(45.0) and result[0, 3] == pytest.approx(65.0)


def test_output_sizes_round_up_like_matlab() -> None:
    image = np.zeros((45, 71), np.float64)
    assert upscale(image, 3).shape == (135, 213)
    assert downscale(image, 4).shape == (12, 18)  # ceil(11.25), ceil(17.75)
    assert imresize(image, output_shape=(20, 30)).shape == (20, 30)


def test_constant_images_stay_constant_and_dtypes_are_kept() -> None:
    flat = np.full((9, 13, 3), 0.25)
    assert np.allclose(upscale(flat, 3), 0.25)
    grey = np.full((12, 12, 3), 77, np.uint8)
    out = downscale(grey, 3)
    assert out.dtype == np.uint8 and np.all(out == 77)
    assert upscale(flat.astype(np.float32), 2).dtype == np.float64


def test_uint8_results_are_clipped_not_wrapped() -> None:
    edge = np.zeros((8, 8), np.uint8)
    edge[:, 4:] = 255  # bicubic overshoots on both sides of the step
    out = upscale(edge, 2)
    assert out.min() == 0 and out.max() == 255
    assert imresize(edge.astype(np.float64), 2.0).max() > 255  # the float path keeps the overshoot


def test_exactly_one_of_scale_and_shape() -> None:
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 2.0, (8, 8))
