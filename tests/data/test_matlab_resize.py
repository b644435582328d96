"""MATLAB bicubic imresize: bit-exact on the benchmark's own LR images, and checked by hand."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_export.data.matlab_resize import downscale, imresize, upscale

REPO = Path(__file__).resolve().parents[2]
SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _set5_dir() -> Path:
    # A plain function, not a fixture, so a missing folder reports the test as FAILED.
    shared = Path(os.environ.get("SR_EXPORT_SHARED", REPO.parent / "shared"))
    folder = shared / "datasets" / "Set5"
    if not (folder / "HR").is_dir() or not (folder / "LR_bicubic").is_dir():
        # CI always has ../shared; a missing folder is a broken setup, not a reason to skip.
        pytest.fail(f"Set5 not found at {folder}; set SR_EXPORT_SHARED to the folder holding datasets/Set5")
    return folder


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", SET5)
def test_set5_lr_images_are_reproduced_exactly(name: str, scale: int) -> None:
    set5_dir = _set5_dir()
    hr = _load_rgb(set5_dir / "HR" / f"{name}.bmp")
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    given = _load_rgb(set5_dir / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.bmp")
    made = downscale(hr, scale)
    assert made.dtype == np.uint8
    assert made.shape == given.shape
    assert np.array_equal(made, given), f"{np.count_nonzero(made != given)} values differ from MATLAB's"


def test_kernel_is_matlabs_a_minus_half() -> None:
    # Upscaling x2, output j (0-based) samples input position j / 2 - 0.25, so an
    # isolated impulse at input 5 is seen by outputs 7..14 at distances 1.75, 1.25,
    # 0.75, 0.25, 0.25, 0.75, 1.25, 1.75 and comes out as the kernel sampled there
    # (the taps of an upscale already sum to 1). By hand, with a = -0.5:
    #   |x| <= 1:      1.5|x|^3 - 2.5|x|^2 + 1          -> 0.8671875 (0.25), 0.2265625 (0.75)
    #   1 < |x| <= 2: -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2  -> -0.0703125 (1.25), -0.0234375 (1.75)
    impulse = np.zeros((1, 11))
    impulse[0, 5] = 1.0
    expected = np.zeros(22)
    expected[7:15] = [-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]
    assert upscale(impulse, 2)[0] == pytest.approx(expected, abs=1e-15)


# Shrinking x2: output k (1-based) samples input position 2k - 0.5 and the kernel is
# stretched to width 8, so inputs 2k-4 .. 2k+3 contribute 0.5 * cubic(d / 2) with
# d = 3.5, 2.5, ..., -3.5, i.e. 0.5 * cubic(1.75, 1.25, 0.75, 0.25, 0.25, ...), which with the
# kernel values above is -0.01171875, -0.03515625, 0.11328125, 0.43359375, ... = n / 256:
TAPS = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256  # sums to 1, so no renormalising
# For 8 inputs -> 4 outputs the taps of output k sit on inputs 2k-4 .. 2k+3; those
# outside 1..8 are mirrored with the edge repeated (0 -> 1, -1 -> 2, 9 -> 8, 10 -> 7)
# and folded onto the pixel they copy:
HALVING_8 = np.array(
    [
        [TAPS[2] + TAPS[3], TAPS[1] + TAPS[4], TAPS[0] + TAPS[5], TAPS[6], TAPS[7], 0, 0, 0],
        [TAPS[0] + TAPS[1], TAPS[2], TAPS[3], TAPS[4], TAPS[5], TAPS[6], TAPS[7], 0],
        [0, TAPS[0], TAPS[1], TAPS[2], TAPS[3], TAPS[4], TAPS[5], TAPS[6] + TAPS[7]],
        [0, 0, 0, TAPS[0], TAPS[1], TAPS[2] + TAPS[7], TAPS[3] + TAPS[6], TAPS[4] + TAPS[5]],
    ]
)


def test_halving_a_vector_matches_weights_worked_out_by_hand() -> None:
    assert HALVING_8.sum(axis=1) == pytest.approx(np.ones(4))
    signal = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    expected = HALVING_8 @ signal
    assert imresize(signal[None, :], 0.5)[0] == pytest.approx(expected, abs=1e-12)  # along width
    assert imresize(signal[:, None], 0.5)[:, 0] == pytest.approx(expected, abs=1e-12)  # along height
    assert downscale(np.outer(signal, signal), 2) == pytest.approx(np.outer(expected, expected), abs=1e-12)


def test_a_ramp_stays_a_ramp_away_from_the_borders() -> None:
    ramp = 10.0 * np.arange(16)[None, :]  # 0, 10, ..., 150
    out = imresize(ramp, 0.5)[0]
    # Output k (1-based) samples position 2k - 0.5, i.e. the value 10 * (2k - 1.5).
    assert out[2:6] == pytest.approx([45.0, 65.0, 85.0, 105.0], abs=1e-12)


def test_output_sizes_round_up_like_matlab() -> None:
    image = np.zeros((45, 71), np.float64)
    assert upscale(image, 3).shape == (135, 213)
    assert downscale(image, 4).shape == (12, 18)  # ceil(11.25), ceil(17.75)
    assert imresize(image, 0.3).shape == (14, 22)  # ceil(13.5), ceil(21.3)
    assert imresize(image, output_shape=(20, 30)).shape == (20, 30)
    assert downscale(np.zeros((45, 71, 3), np.uint8), 4).shape == (12, 18, 3)


@pytest.mark.parametrize("resize", [lambda x: upscale(x, 3), lambda x: downscale(x, 4), lambda x: imresize(x, 0.7)])
def test_constant_images_stay_constant(resize: Callable[[np.ndarray], np.ndarray]) -> None:
    assert np.allclose(resize(np.full((9, 13, 3), 0.25)), 0.25, atol=1e-12)
    grey = resize(np.full((12, 14), 77, np.uint8))
    assert np.all(grey == 77)


def test_uint8_stays_uint8_and_float_comes_back_float64() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    assert upscale(image, 2).dtype == np.uint8
    assert downscale(image, 2).dtype == np.uint8
    assert upscale(image.astype(np.float32), 2).dtype == np.float64
    assert downscale(image.astype(np.float64), 2).dtype == np.float64
    assert upscale(image[..., 0], 2).dtype == np.uint8


def test_channels_are_resized_independently() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    together = imresize(image, output_shape=(31, 9))
    for channel in range(3):
        assert np.array_equal(together[..., channel], imresize(image[..., channel], output_shape=(31, 9)))


def test_uint8_rounds_half_away_from_zero() -> None:
    # Inputs 7 and 8 (1-based) at 192, all else 0. Output 4 samples position 7.5 and
    # weighs those two inputs by 111/256 each and its other taps see zeros, so it is
    # exactly 111 * 384 / 256 = 166.5: MATLAB gives 167 (NumPy's half-to-even: 166).
    row = np.zeros((1, 16), np.uint8)
    row[0, 6:8] = 192
    assert imresize(row.astype(np.float64), 0.5)[0, 3] == 166.5
    assert downscale(row, 2)[0, 3] == 167


def test_uint8_results_are_clipped_not_wrapped() -> None:
    edge = np.zeros((8, 8), np.uint8)
    edge[:, 4:] = 255  # bicubic overshoots on both sides of the step
    out = upscale(edge, 2)
    assert out.min() == 0 and out.max() == 255
    as_float = upscale(edge.astype(np.float64), 2)
    assert as_float.min() < 0 and as_float.max() > 255  # the float path keeps the overshoot
    assert np.array_equal(out, np.clip(np.floor(as_float + 0.5), 0, 255))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 2.0, (8, 8))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0.0)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4, 3, 1)), 2.0)
    with pytest.raises(TypeError):
        imresize(np.zeros((4, 4), np.int32), 2.0)
