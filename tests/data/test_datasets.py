"""Dataset folders: HR with given LR, HR only, flat folders, and the built-in photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sr_export.core.errors import SrExportError
from sr_export.data.datasets import BUILTIN_HR_SIZE, load_dataset


def test_set5_uses_the_given_lr_images(set5: Path) -> None:
    pairs = load_dataset(set5, 3)
    assert [p.name for p in pairs] == ["baby", "bird", "butterfly", "head", "woman"]
    assert all(p.lr_source == "given" for p in pairs)
    woman = pairs[-1]
    assert woman.hr.shape == (342, 228, 3)  # 344x228 mod-cropped to 3
    assert woman.lr.shape == (114, 76, 3)


def test_missing_lr_images_are_made_like_the_given_ones(set5: Path, tmp_path: Path) -> None:
    shutil.copytree(set5 / "HR", tmp_path / "HR")
    made = load_dataset(tmp_path, 4)
    given = load_dataset(set5, 4)
    assert all(p.lr_source == "matlab-bicubic" for p in made)
    assert all(np.array_equal(a.lr, b.lr) for a, b in zip(made, given))


def test_a_flat_folder_is_read_as_hr(set5: Path, tmp_path: Path) -> None:
    shutil.copy(set5 / "HR" / "bird.bmp", tmp_path / "bird.bmp")
    (pair,) = load_dataset(tmp_path, 2)
    assert pair.hr.shape == (288, 288, 3) and pair.lr.shape == (144, 144, 3)


def test_builtin_photos() -> None:
    pairs = load_dataset("builtin", 3)
    assert len(pairs) == 4
    assert all(p.hr.shape == (BUILTIN_HR_SIZE, BUILTIN_HR_SIZE, 3) for p in pairs)
    assert all(p.lr.shape == (80, 80, 3) for p in pairs)


def test_lr_of_the_wrong_size_is_refused(set5: Path, tmp_path: Path) -> None:
    shutil.copy(set5 / "HR" / "bird.bmp", (tmp_path / "HR").mkdir() or tmp_path / "HR" / "bird.bmp")
    (tmp_path / "LR_bicubic" / "X2").mkdir(parents=True)
    shutil.copy(set5 / "LR_bicubic" / "X4" / "birdx4.bmp", tmp_path / "LR_bicubic" / "X2" / "birdx2.bmp")
    with pytest.raises(SrExportError, match="must be exactly 1/2"):
        load_dataset(tmp_path, 2)


def test_missing_or_empty_folders_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope", 2)
    with pytest.raises(SrExportError, match="no HR images"):
        load_dataset(tmp_path, 2)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_hr_images_too_small_to_score_are_refused_by_name_at_the_exact_bound(scale: int, tmp_path: Path) -> None:
    from PIL import Image

    from sr_export.bench.metrics import score
    from sr_export.data.datasets import min_hr_side

    side = min_hr_side(scale)
    rng = np.random.default_rng(scale)
    Image.fromarray(rng.integers(0, 256, (side, side + 5, 3), dtype=np.uint8)).save(tmp_path / "fits.png")
    (pair,) = load_dataset(tmp_path, scale)
    score(pair.hr, pair.hr, scale)  # the smallest image accepted can be scored
    smaller = rng.integers(0, 256, (side - 1, side + 5, 3), dtype=np.uint8)
    with pytest.raises(ValueError):  # and one pixel less cannot: the bound is exact
        cropped = smaller[: (side - 1) // scale * scale, : (side + 5) // scale * scale]
        score(cropped, cropped, scale)
    Image.fromarray(smaller).save(tmp_path / "short.png")
    with pytest.raises(SrExportError, match=rf"HR image .*short.png is {side + 5}x{side - 1}; scoring at x{scale} "
                       rf"needs at least {side}x{side}"):
        load_dataset(tmp_path, scale)
