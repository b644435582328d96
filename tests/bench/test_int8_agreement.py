"""The cross-runtime agreement table: pairwise PSNR between runtimes' outputs on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_export.bench.int8_agreement import agreement
from sr_export.bench.metrics import psnr
from sr_export.data.images import builtin_image


def _photo(name: str) -> np.ndarray:
    return builtin_image(name)[:96, :128].transpose(2, 0, 1)[None].astype(np.float64) / 255.0


def test_pairs_are_scored_by_psnr_pooled_over_inputs_and_on_the_worst_input() -> None:
    photos = [_photo("astronaut"), _photo("coffee")]
    rng = np.random.default_rng(0)
    small = [p + rng.normal(0, 1 / 255, p.shape) for p in photos]  # about 48 dB
    large = [photos[0] + rng.normal(0, 4 / 255, photos[0].shape), photos[1]]  # noisy on the first photo only
    table = agreement({"fp32": photos, "a": small, "b": large}, data_range=1.0)

    def clipped(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0, 1) * 255

    first = psnr(clipped(photos[0]), clipped(large[0]))
    assert table.worst[0][2] == pytest.approx(first)
    assert table.between("fp32", "b") == pytest.approx(first + 10 * math.log10(2))  # half the pixels are exact
    assert table.between("a", "fp32") == table.between("fp32", "a") > table.between("fp32", "b")
    assert math.isinf(table.psnr[0][0]) and table.inputs == 2
    assert table.markdown().splitlines()[2].startswith(
        f"| fp32 | - | {table.between('fp32', 'a'):.1f} ({table.worst[0][1]:.1f}) | ")
    assert table.to_dict()["labels"] == ["fp32", "a", "b"]


def test_outputs_are_clipped_to_the_data_range_as_a_saved_image_is() -> None:
    photo = _photo("chelsea")
    overshoot = photo.copy()
    overshoot[photo > 0.9] = 1.5  # beyond white: the same pixel once saved
    table = agreement({"x": [photo.clip(0, 0.9).copy() + (photo > 0.9)], "y": [overshoot]}, data_range=1.0)
    assert math.isinf(table.between("x", "y")) and table.to_dict()["psnr_db"][0][1] is None


def test_different_shapes_or_counts_are_refused_not_compared() -> None:
    photo = _photo("rocket")
    with pytest.raises(ValueError, match="different shapes"):
        agreement({"x": [photo], "y": [photo[..., :64]]}, data_range=1.0)
    with pytest.raises(ValueError, match="same, non-zero number"):
        agreement({"x": [photo], "y": [photo, photo]}, data_range=1.0)
    with pytest.raises(ValueError, match="at least two"):
        agreement({"x": [photo]}, data_range=1.0)
