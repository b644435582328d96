"""Engine settings: bounded shape profiles for SR video, from flags or target profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tensorrt.settings import (
    DEFAULT_MAX,
    EngineSettings,
    ShapeProfile,
    settings_from_options,
    shape_profile,
)
from sr_export.targets.profiles import load_profile


def test_default_profile_covers_tiles_to_720p_tuned_for_360p() -> None:
    profile = shape_profile()
    assert (profile.min, profile.opt, profile.max) == ((32, 32), (360, 640), (720, 1280))
    assert profile.contains((57, 57))  # the smallest Set5 x4 LR image
    assert profile.contains((540, 960)) and not profile.contains((1080, 1920)) and not profile.contains((16, 64))


def test_fixed_shape_is_a_static_profile() -> None:
    profile = shape_profile(shape=(256, 256))
    assert profile.static and profile.describe() == "256x256"
    assert profile.nchw(1, 3) == ((1, 3, 256, 256),) * 3


def test_opt_defaults_to_360p_clamped_into_the_range() -> None:
    assert shape_profile(min=(32, 32), max=(128, 128)).opt == (128, 128)
    assert shape_profile(min=(400, 700), max=(720, 1280)).opt == (400, 700)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min": (128, 128), "opt": (64, 64), "max": (256, 256)}, "min <= opt"),
        ({"min": (64, 64), "opt": (512, 512), "max": (256, 256)}, "opt <= max"),
        ({"max": (4320, 7680)}, "exceeds 2160 px"),
        ({"shape": (64, 64), "max": (128, 128)}, "either --shape or"),
    ],
)
def test_profiles_are_bounded_and_ordered(kwargs, message: str) -> None:
    with pytest.raises(SrExportError, match=message):
        shape_profile(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min": (128, 128), "max": (64, 64)}, "--min 128x128 is larger than --max 64x64"),
        ({"min": (1000, 1000)}, "--min 1000x1000 is larger than the default --max 720x1280 in height or width; give --max too"),
        ({"max": (16, 16)}, "--max 16x16 is smaller than the default --min 32x32 in height or width; give --min too"),
    ],
)
def test_an_inverted_profile_names_the_flags_given_not_the_derived_opt(kwargs, message: str) -> None:
    with pytest.raises(SrExportError, match=message) as refused:
        shape_profile(**kwargs)
    assert "--opt" not in str(refused.value)


def test_model_minimum_input_is_enforced() -> None:
    with pytest.raises(SrExportError, match="at least 48x48"):
        shape_profile(min=(32, 32), min_input_size=48)


def test_shipped_trt_profiles_parse() -> None:
    fp16, int8 = load_profile("trt-fp16"), load_profile("trt-int8")
    assert (fp16.backend, fp16.precision, int8.precision) == ("tensorrt", "fp16", "int8")
    settings = settings_from_options(fp16.options, fp16.precision)
    assert settings.profile.max == DEFAULT_MAX and settings.workspace_mb == 2048
    assert settings.timing_cache is not None and "~" not in str(settings.timing_cache)
    assert settings_from_options(int8.options, int8.precision).calibrator == "none"


def test_unknown_option_keys_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('backend = "tensorrt"\nprecision = "fp16"\n[options]\nmax_shape = "720x1280"\nworkspace = 10\n')
    profile = load_profile(str(path))
    with pytest.raises(SrExportError, match="unknown TensorRT option.*workspace"):
        settings_from_options(profile.options, profile.precision)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "int4"}, "precision must be one of"),
        ({"precision": "fp16", "calibrator": "entropy"}, "only applies to --int8"),
        ({"workspace_mb": 1}, "too small"),
        ({"builder_optimization_level": 9}, "0..5"),
    ],
)
def test_bad_settings_are_explained(kwargs, message: str) -> None:
    with pytest.raises(SrExportError, match=message):
        EngineSettings(**kwargs)


def test_profile_round_trips_through_a_dict() -> None:
    profile = ShapeProfile((64, 64), (360, 640), (720, 1280))
    assert ShapeProfile.from_dict(profile.to_dict()) == profile
