"""Images become model inputs in the model's colour mode and range, and back."""

from __future__ import annotations

import numpy as np

from sr_export.data.color import y_channel
from sr_export.data.tensors import batch_to_image, image_to_batch
from sr_export.models.loader import ModelInfo

RGB = np.random.default_rng(1).integers(0, 256, (6, 7, 3)).astype(np.uint8)


def test_rgb_round_trip_in_both_data_ranges() -> None:
    for data_range in (1.0, 255.0):
        info = ModelInfo("m", 1, data_range=data_range)
        batch = image_to_batch(RGB, info)
        assert batch.shape == (1, 3, 6, 7) and batch.dtype == np.float32
        assert batch.max() <= data_range
        assert np.array_equal(batch_to_image(batch, info), RGB)


def test_outputs_are_clamped_to_the_range_before_rounding() -> None:
    info = ModelInfo("m", 1, data_range=1.0)
    out = np.array([[[[-0.2, 0.5, 1.7]]]] * 3, np.float32).reshape(1, 3, 1, 3)
    assert batch_to_image(out, info)[0, :, 0].tolist() == [0, 128, 255]


def test_luma_models_see_the_y_channel_and_get_chroma_from_the_lr_image() -> None:
    info = ModelInfo("idn", 2, in_channels=1, color="y")
    batch = image_to_batch(RGB, info)
    assert batch.shape == (1, 1, 6, 7)
    assert np.allclose(batch[0, 0] * 255, y_channel(RGB))
    upscaled_y = np.repeat(np.repeat(batch, 2, 2), 2, 3)
    result = batch_to_image(upscaled_y, info, RGB)
    assert result.shape == (12, 14, 3)
    expected_y = np.repeat(np.repeat(y_channel(RGB), 2, 0), 2, 1)
    in_gamut = np.all((result > 0) & (result < 255), axis=2)  # clipping to RGB may move Y elsewhere
    assert in_gamut.mean() > 0.5
    assert np.abs(y_channel(result).astype(int) - expected_y)[in_gamut].max() <= 1
