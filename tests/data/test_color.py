"""BT.601 studio swing as MATLAB rgb2ycbcr computes it."""

from __future__ import annotations

import numpy as np

from sr_export.data.color import rgb_to_ycbcr, to_uint8, y_channel, ycbcr_to_rgb


def test_black_white_and_primaries() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    ycbcr = rgb_to_ycbcr(rgb)
    assert np.allclose(ycbcr[0, 0], [16, 128, 128])
    assert np.allclose(ycbcr[0, 1], [235, 128, 128])
    assert np.allclose(ycbcr[0, 2], [16 + 65.481, 128 - 37.797, 128 + 112.0])
    assert y_channel(rgb).tolist() == [[16, 235, 81]]


def test_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3)).astype(np.uint8)
    assert np.array_equal(to_uint8(ycbcr_to_rgb(rgb_to_ycbcr(rgb))), rgb)


def test_uint8_rounds_half_away_from_zero_and_clips() -> None:
    assert to_uint8(np.array([0.5, 1.5, 2.5, -3.0, 300.0])).tolist() == [1, 2, 3, 0, 255]
