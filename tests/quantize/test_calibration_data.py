"""Calibration patches: made like SR inputs, reproducible, and never the evaluation images."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_export.core.errors import SrExportError
from sr_export.data.images import read_image
from sr_export.data.matlab_resize import downscale
from sr_export.quantize.calibration_data import (
    check_calibration_images,
    check_no_overlap,
    content_hash,
    dataset_hashes,
    lr_images,
    make_calibration_set,
    source_images,
)
from sr_export.quantize.recipes import load_recipe, recipe_from_dict


def test_builtin_patches_are_reproducible_lr_crops_of_the_requested_size() -> None:
    recipe = replace(load_recipe("default"), patch_size=24, patch_count=14, seed=3)
    first = make_calibration_set(recipe, 4)
    lr = lr_images(recipe, 4)
    again = make_calibration_set(recipe, 4, lr)
    assert first.patches.shape == (14, 24, 24, 3) and first.patches.dtype == np.uint8
    np.testing.assert_array_equal(first.patches, again.patches)
    other = make_calibration_set(replace(recipe, seed=4), 4, lr)
    assert not np.array_equal(first.patches, other.patches)
    # Every built-in image contributes when there are enough patches.
    assert len(set(first.sources)) == len(lr)
    # Each patch is a crop of its image's MATLAB-bicubic LR version.
    by_name = dict(lr)
    patch, image = first.patches[0], by_name[first.sources[0]]
    windows = np.lib.stride_tricks.sliding_window_view(image, (24, 24, 3))[..., 0, :, :, :]
    assert (windows == patch).all(axis=(-3, -2, -1)).any()


def test_hr_folders_are_matlab_downscaled_and_lr_folders_used_as_they_are(tmp_path: Path, set5: Path) -> None:
    hr = read_image(set5 / "HR" / "baby.bmp")[:96, :96]
    Image.fromarray(hr).save(tmp_path / "crop.png")
    as_hr = recipe_from_dict({"source": {"images": str(tmp_path), "kind": "hr"}, "patches": {"size": 24, "count": 1}})
    patch = make_calibration_set(as_hr, 4).patches[0]
    np.testing.assert_array_equal(patch, downscale(hr, 4))
    as_lr = replace(as_hr, kind="lr")
    patch = make_calibration_set(as_lr, 4).patches[0]
    windows = np.lib.stride_tricks.sliding_window_view(hr, (24, 24, 3))[..., 0, :, :, :]
    assert (windows == patch).all(axis=(-3, -2, -1)).any()


def test_the_builtin_calibration_photos_are_not_the_builtin_evaluation_photos() -> None:
    evaluation = dataset_hashes("builtin", 4)
    calibration = {content_hash(image) for _, image in source_images(load_recipe("default"))}
    assert evaluation and not (calibration & evaluation)


def test_a_folder_holding_set5_images_is_refused_even_renamed_and_reencoded(tmp_path: Path, set5: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    Image.open(set5 / "HR" / "bird.bmp").save(folder / "my_photo.bmp")  # renamed, other format
    lr = next((set5 / "LR_bicubic" / "X4").iterdir())
    shutil.copy(lr, folder / "lr_copy.png")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(folder / "unrelated.png")
    recipe = recipe_from_dict({"source": {"images": str(folder)}})
    with pytest.raises(SrExportError, match=r"contains 2 image\(s\) of the evaluation dataset .*allow-calibration-overlap"):
        check_no_overlap(recipe, [set5], 4)
    assert sorted(check_no_overlap(recipe, [set5], 4, allow=True)) == ["lr_copy.png", "my_photo.bmp"]
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(folder / "unrelated.png", clean)
    assert check_no_overlap(recipe_from_dict({"source": {"images": str(clean)}}), [set5], 4) == []


def test_too_small_images_and_missing_folders_are_one_line_errors(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "small.png")
    recipe = recipe_from_dict({"source": {"images": str(tmp_path)}, "patches": {"size": 32}})
    with pytest.raises(SrExportError, match="no calibration image is at least 32x32 px after x4 downscaling"):
        make_calibration_set(recipe, 4)
    with pytest.raises(SrExportError, match="calibration image folder not found"):
        make_calibration_set(recipe_from_dict({"source": {"images": str(tmp_path / "nope")}}), 4)


def test_a_16_bit_grey_calibration_image_gives_patches_at_its_8_bit_values_not_white(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 48 * 96).round().astype(np.uint16).reshape(48, 96)
    Image.fromarray(ramp).save(tmp_path / "scan16.png")
    recipe = recipe_from_dict({"source": {"images": str(tmp_path), "kind": "lr"},
                               "patches": {"size": 24, "count": 8, "seed": 2}})
    patches = make_calibration_set(recipe, 2).patches
    assert (patches == 255).mean() < 0.01  # convert("RGB") clipped 99.6 % of such an image to 255
    expected = np.repeat(np.rint(ramp / 257.0).astype(np.uint8)[..., None], 3, axis=2)
    windows = np.lib.stride_tricks.sliding_window_view(expected, (24, 24, 3))[..., 0, :, :, :]
    assert all((windows == patch).all(axis=(-3, -2, -1)).any() for patch in patches)


def test_images_too_small_for_a_patch_are_skipped_with_a_warning_before_anything_is_decoded(tmp_path: Path) -> None:
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(tmp_path / "dot.png")  # downscales to nothing
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "thumb.png")  # 20 px at x2
    recipe = recipe_from_dict({"source": {"images": str(tmp_path)}, "patches": {"size": 24, "count": 3}})
    checked = check_calibration_images(recipe, 2)
    assert [h.path.name for h in checked.usable] == ["photo.png"]
    assert [h.path.name for h in checked.too_small] == ["dot.png", "thumb.png"]
    assert "calibration image thumb.png (40x40) is smaller than recipe custom's 24 px patches after x2 " \
           "downscaling (20x20); skipped" in checked.warnings()
    # The patches come from the one image that holds them; the 1x1 image is never downscaled (to 0x0).
    assert set(make_calibration_set(recipe, 2).sources) == {"photo.png"}
    # Scale not known yet: only images too small at every scale are found.
    assert [h.path.name for h in check_calibration_images(recipe, None).too_small] == ["dot.png"]
    assert check_calibration_images(load_recipe("default"), 4) is None  # the built-in photos need no check


def test_no_image_large_enough_names_the_largest_and_the_way_out(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "b.png")
    recipe = recipe_from_dict({"source": {"images": str(tmp_path)}, "patches": {"size": 24}})
    with pytest.raises(SrExportError, match=r"large enough for 24x24 px patches after x2 downscaling \(largest: "
                       r"a.png \(30x40\)\).*lower patches.size"):
        check_calibration_images(recipe, 2)
    with pytest.raises(SrExportError, match="no calibration image is at least 24x24 px"):
        make_calibration_set(recipe, 2)  # the 1x1 image no longer ends in 'cannot resize an empty image'
