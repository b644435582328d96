"""One calibration path: a set of LR batches with an identity and a content hash, and one cache key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.model_info import ModelInfo
from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.calibration_data import CalibrationSet, make_calibration_set
from sr_export.quantize.recipes import recipe_from_dict

RECIPE = recipe_from_dict({"name": "tiny", "patches": {"size": 24, "count": 5, "seed": 3}})
IMDN = ModelInfo("imdn", 2, data_range=1.0)


def test_a_set_is_an_iterable_of_the_recipes_patches_as_model_batches() -> None:
    calibration = CalibrationSet(RECIPE, IMDN)
    batches = list(calibration)
    assert len(calibration) == len(batches) == 5
    assert all(b.shape == (1, 3, 24, 24) and b.dtype == np.float32 and 0 <= b.min() <= b.max() <= 1 for b in batches)
    patches = make_calibration_set(RECIPE, 2)
    np.testing.assert_array_equal(batches[0], patches.batches(IMDN)[0])
    subset = calibration.subset(2)
    assert len(subset) == 2 and all(np.array_equal(a, b) for a, b in zip(subset, batches))


def test_identity_and_content_hash_follow_what_the_batches_are() -> None:
    calibration = CalibrationSet(RECIPE, IMDN)
    same = CalibrationSet(RECIPE, IMDN)
    assert calibration.identity == same.identity and calibration.content_hash == same.content_hash
    in_255 = CalibrationSet(RECIPE, replace(IMDN, data_range=255.0))
    other_seed = CalibrationSet(replace(RECIPE, seed=4), IMDN)
    for other in (in_255, other_seed):
        assert other.identity != calibration.identity and other.content_hash != calibration.content_hash
    # Float exclusions do not change the batches, so they do not change the set.
    assert CalibrationSet(replace(RECIPE, keep_float=("x",)), IMDN).identity == calibration.identity


def test_the_key_changes_with_weights_graph_calibration_and_layout() -> None:
    base = CalibrationKey("w", "g", CalibrationSet(RECIPE, IMDN).identity, "NCHW")
    changed = [replace(base, weights="w2"), replace(base, graph="g2"), replace(base, layout="NHWC"),
               replace(base, calibration=CalibrationSet(replace(RECIPE, seed=9), IMDN).identity)]
    assert len({base.digest, *(k.digest for k in changed)}) == 5
    assert base.path("tflite").name == f"{base.digest}-tflite.json" and base.path().name == f"{base.digest}.json"


def test_the_tensorrt_calibrator_cache_goes_stale_with_a_reexport(exported_official, tmp_path: Path) -> None:
    from sr_export.runtimes.tensorrt.implicit import calibration_cache_path

    export: Artifact = exported_official("imdn", 2)
    calibration = CalibrationSet(RECIPE, IMDN)
    first = calibration_cache_path(export, calibration)
    copy = tmp_path / export.path.name
    copy.write_bytes(export.path.read_bytes())
    assert calibration_cache_path(Artifact(copy, export.metadata), calibration) == first  # same graph, same key
    changed = tmp_path / "reexported.onnx"
    changed.write_bytes(export.path.read_bytes() + b"\0")  # any other graph under the same name and recipe
    assert calibration_cache_path(Artifact(changed, export.metadata), calibration) != first
    assert calibration_cache_path(export, CalibrationSet(replace(RECIPE, seed=9), IMDN)) != first


def test_held_out_patches_are_never_calibration_patches_and_carry_their_hr_originals() -> None:
    from sr_export.data.tensors import image_to_batch

    recipe = replace(RECIPE, holdout=3, max_drop=0.1)
    calibration = CalibrationSet(recipe, IMDN)
    # Holding out leaves the calibration batches as they were.
    assert [b.tobytes() for b in calibration] == [b.tobytes() for b in CalibrationSet(RECIPE, IMDN)]
    held = calibration.held_out
    assert len(held) == 3 and held.lr.shape == (3, 24, 24, 3) and held.hr.shape == (3, 48, 48, 3)
    assert 0.0 <= held.shared < 1.0
    calibrated = {p.tobytes() for p in make_calibration_set(RECIPE, 2).patches}
    assert not calibrated & {p.tobytes() for p in held.lr}
    # Y-PSNR against the HR original: infinite for the original itself, finite for a blurred guess.
    perfect = image_to_batch(held.hr[0], IMDN)
    assert held.y_psnr(0, perfect, IMDN) == float("inf")
    upscaled = image_to_batch(held.lr[0].repeat(2, axis=0).repeat(2, axis=1), IMDN)
    assert 15 < held.y_psnr(0, upscaled, IMDN) < 60


def test_a_fixed_size_graph_gets_the_same_patches_cropped_or_mirrored_to_its_size() -> None:
    calibration = CalibrationSet(RECIPE, IMDN)
    patch = calibration.batches[0]  # 24x24
    fitted = calibration.at_size((40, 16))
    first = fitted.batches[0]
    assert first.shape == (1, 3, 40, 16) and len(fitted) == len(calibration)
    np.testing.assert_array_equal(first[:, :, 8:32], patch[:, :, :, 4:20])  # centre crop across, patch down
    np.testing.assert_array_equal(first[:, :, 7], patch[:, :, 0, 4:20])  # then mirrored, edge row repeated
    np.testing.assert_array_equal(first[:, :, 0], patch[:, :, 7, 4:20])
    assert fitted.identity != calibration.identity and fitted.identity["input_hw"] == [40, 16]
    assert fitted.subset(2).batches[1].shape == (1, 3, 40, 16)
    assert calibration.at_size(None) is calibration and fitted.at_size((40, 16)) is fitted
