"""Calibration recipes: data that is read strictly and names what it got wrong."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.quantize.recipes import available_recipes, load_recipe, recipe_from_dict, recipe_toml


def test_the_shipped_recipes_load_and_default_is_sr_aware_percentile() -> None:
    assert {"default", "mixed", "minmax", "entropy", "naive"} <= set(available_recipes())
    for name in available_recipes():
        load_recipe(name)
    default = load_recipe("default")
    assert (default.method, default.percentile, default.activations) == ("percentile", 99.999, "asymmetric")
    assert default.sr_aware and default.per_channel and default.images == "builtin"
    assert load_recipe("mixed").auto_keep_float > 0
    naive = load_recipe("naive")
    assert (naive.activations, naive.sr_aware) == ("symmetric", False)


def test_unknown_keys_and_tables_are_errors_that_name_them(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match=r"unknown key 'method\.percentil'.*allowed here: .*method\.percentile"):
        recipe_from_dict({"method": {"percentil": 99.9}})
    with pytest.raises(SrExportError, match=r"unknown key 'colour'"):
        recipe_from_dict({"colour": "rgb"})
    with pytest.raises(SrExportError, match=r"unknown table \[patch\]"):
        recipe_from_dict({"patch": {"size": 32}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[patches]\ncount = 8\nsize = 4\n")
    with pytest.raises(SrExportError, match=r"patch_size = 4 in .*bad.toml must be an integer >= 8"):
        load_recipe(bad)


def test_values_are_validated() -> None:
    with pytest.raises(SrExportError, match="method 'kl' is not one of minmax, percentile, entropy"):
        recipe_from_dict({"method": {"name": "kl"}})
    with pytest.raises(SrExportError, match=r"percentile = 101 must be a number in \(50, 100\]"):
        recipe_from_dict({"method": {"percentile": 101}})
    with pytest.raises(SrExportError, match="keep_float must be a list"):
        recipe_from_dict({"precision": {"keep_float": "/Add"}})
    with pytest.raises(SrExportError, match="float_statistics = 'yes' must be true or false"):
        recipe_from_dict({"precision": {"float_statistics": "yes"}})
    assert recipe_from_dict({"precision": {"float_statistics": True}}).float_statistics
    with pytest.raises(SrExportError, match="unknown calibration recipe 'nope'; known: .*default"):
        load_recipe("nope")


def test_relative_image_folders_resolve_next_to_the_recipe(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[source]\nimages = "photos"\nkind = "lr"\n')
    recipe = load_recipe(path)
    assert recipe.name == "mine"
    assert recipe.images_path() == tmp_path / "photos"


def test_the_statistics_key_follows_what_calibration_sees_not_the_float_plan() -> None:
    base = load_recipe("default")
    assert base.fingerprint() == replace(base, keep_float=("/B1/c5/Conv",), auto_keep_float=3).fingerprint()
    assert base.fingerprint() != replace(base, patch_count=49).fingerprint()
    assert base.fingerprint() != replace(base, percentile=99.99).fingerprint()
    assert base.fingerprint() != replace(base, method="minmax").fingerprint()


def test_an_accuracy_budget_is_a_number_of_db_measured_on_held_out_hr_patches() -> None:
    accuracy = load_recipe("accuracy")
    assert (accuracy.max_drop, accuracy.holdout, accuracy.kind) == (0.1, 16, "hr")
    assert "at most 0.1 dB Y-PSNR lost on 16 held-out patches" in accuracy.summary()
    # Holding out changes nothing calibration sees.
    assert accuracy.statistics_key() == load_recipe("default").statistics_key()
    for bad in (0, -0.1, float("nan"), 12, True, "0.1"):
        with pytest.raises(SrExportError, match=r"precision\.max_drop = .* must be a number of dB in \(0, 10\)"):
            recipe_from_dict({"patches": {"holdout": 4}, "precision": {"max_drop": bad}})
    with pytest.raises(SrExportError, match=r"needs patches\.holdout >= 1 and source\.kind = \"hr\""):
        recipe_from_dict({"precision": {"max_drop": 0.1}})
    with pytest.raises(SrExportError, match=r"needs patches\.holdout >= 1 and source\.kind = \"hr\""):
        recipe_from_dict({"source": {"kind": "lr"}, "patches": {"holdout": 4}, "precision": {"max_drop": 0.1}})
    with pytest.raises(SrExportError, match=r"holdout = -1 must be an integer >= 0"):
        recipe_from_dict({"patches": {"holdout": -1}})


@pytest.mark.parametrize("name", sorted(available_recipes()))
def test_a_recipe_written_as_toml_loads_back_equal(name: str, tmp_path: Path) -> None:
    recipe = replace(load_recipe(name), keep_float=("/B1/c1_d/Conv", "/B2/Concat_output_0"))
    written = tmp_path / "again.toml"
    written.write_text(recipe_toml(recipe), encoding="utf-8")
    assert load_recipe(written) == recipe


def test_a_written_recipe_points_at_its_image_folder_from_anywhere(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "r.toml").write_text('[source]\nimages = "photos"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "copy.toml").write_text(recipe_toml(load_recipe(tmp_path / "r.toml")), encoding="utf-8")
    assert load_recipe(elsewhere / "copy.toml").images_path() == (tmp_path / "photos").resolve()
