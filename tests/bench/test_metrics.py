"""PSNR and SSIM as SR papers compute them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_export.bench.metrics import psnr, score, shave, ssim


def test_psnr_of_a_known_error() -> None:
    a = np.zeros((10, 10))
    b = np.full((10, 10), 5.0)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))
    assert psnr(a, a) == math.inf


def test_ssim_is_one_for_identical_and_lower_for_noisy_images() -> None:
    rng = np.random.default_rng(0)
    image = np.tile(np.linspace(40, 200, 32), (32, 1)).astype(np.uint8)  # smooth, like most of a photo
    noisy = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image, noisy) < 0.9


def test_score_shaves_scale_pixels_before_comparing() -> None:
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr.copy()
    sr[:3, :, :] = 0  # damage only inside the 3-pixel border
    assert math.isinf(score(sr, hr, 3).psnr_y)
    assert shave(hr, 3).shape == (14, 14, 3)
