"""Target profiles: declarative, validated, shipped with the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.errors import SrExportError
from sr_export.targets import BACKENDS, get_target
from sr_export.targets.profiles import available_profiles, load_profile, parse_size


def test_cpu_profile_is_onnxruntime_fp32() -> None:
    profile = load_profile("cpu")
    assert (profile.backend, profile.precision, profile.device) == ("onnxruntime", "fp32", "local")
    assert profile.input_sizes == ((256, 256), (360, 640))
    assert profile.threads is None and profile.warmup >= 1 and profile.runs >= 1


@pytest.mark.parametrize("name", sorted(available_profiles()))
def test_every_shipped_profile_names_a_known_backend(name: str) -> None:
    assert load_profile(name).backend in BACKENDS


def test_profile_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('backend = "onnxruntime"\n[runtime]\nthreads = 1\n[bench]\ninput_sizes = ["32x48"]\nruns = 4\n')
    profile = load_profile(str(path))
    assert (profile.name, profile.threads, profile.input_sizes, profile.runs) == ("mine", 1, ((32, 48),), 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('backend = "onnxruntime"\nspeed = 3\n', "unknown key"),
        ('name = "x"\n', "does not name a backend"),
        ("backend = \n", "cannot read target profile"),
    ],
)
def test_bad_profiles_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SrExportError, match=message):
        load_profile(str(path))


def test_sizes_are_height_by_width() -> None:
    assert parse_size("360x640") == (360, 640)
    assert parse_size("3x256x128") == (256, 128)
    for bad in ("256", "axb", "0x5", "1x2x3x4"):
        with pytest.raises(SrExportError):
            parse_size(bad)


def test_unknown_backend() -> None:
    with pytest.raises(SrExportError, match="unknown backend 'tensorrt-x'"):
        get_target("tensorrt-x")
