"""Suites read like profiles, and take each profile's timing settings unless they set their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sr_export.bench.suite import load_suite
from sr_export.core.errors import SrExportError
from sr_export.targets.profiles import load_profile


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return str(path)


MODELS = '[[models]]\nmodel = "imdn"\nscale = 2\n'


def test_a_suite_without_timing_settings_takes_the_profiles(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, MODELS))
    for name in ("cpu", "tflite", "jetson-orin-nano"):
        profile = load_profile(name)
        timing = suite.timing(profile)
        assert (timing.sizes, timing.warmup, timing.runs, timing.threads) == (
            profile.input_sizes, profile.warmup, profile.runs, profile.threads)


def test_what_a_suite_sets_wins(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, MODELS + '[speed]\ninput_sizes = ["64x96"]\nruns = 4\nthreads = 1\n'))
    timing = suite.timing(load_profile("cpu"))
    assert (timing.sizes, timing.runs, timing.threads) == (((64, 96),), 4, 1)
    assert timing.warmup == load_profile("cpu").warmup
    default = load_suite("default")
    assert default.speed_sizes == ((256, 256),) and default.runs == 3 and default.warmup == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MODELS + "[speeed]\nruns = 3\n", r"unknown key\(s\) speeed in"),
        (MODELS + "[speed]\nrun = 3\n", r"unknown key\(s\) speed.run in"),
        (MODELS + '[speed]\nruns = "3"\n', "speed.runs in .* must be an integer >= 1"),
        (MODELS + '[speed]\ninput_sizes = ["64"]\n', "speed.input_sizes in .*: size '64'"),
        (MODELS + '[profile]\ninput = "3xax4"\n', "profile.input in .*: size '3xax4'"),
        ('[[models]]\nmodle = "imdn"\n', r"unknown key\(s\) models\[0\].modle"),
        ('[[models]]\nmodel = "imdn"\nscale = "2"\n', r"models\[0\].scale in .* must be an integer"),
        ('name = "x"\n', "must be a non-empty list of \\[\\[models\\]\\] tables"),
    ],
)
def test_bad_suites_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SrExportError, match=message):
        load_suite(write(tmp_path, text))


def test_a_tflite_int8_profile_runs_end_to_end(tmp_path: Path, sr_bench) -> None:
    """Built at the profile's I/O type (uint8 pixels), fed by the device runner the way local runners feed it."""
    out = tmp_path / "out"
    result = sr_bench("--target", "tflite-int8", "--models", "imdn", "--scale", "2", "--weights", "official",
                      "--sizes", "64x64", "--runs", "2", "--warmup", "1", "--exporter", "legacy", "-o", out,
                      "--no-history")
    assert result.code == 0, result.err
    (results,) = out.glob("matrix-tflite-int8-*.json")  # --no-history: the run id is the UTC time
    assert re.fullmatch(r"matrix-tflite-int8-\d{8}T\d{6}Z", results.stem)
    row = json.loads(results.read_text())["rows"][0]
    assert row["parity_passed"] is True and row["parity_worst_psnr_db"] >= 35
    assert row["details"]["parity"]["dataset_drop"]["passed"]
    assert 25 < row["psnr_y"] < 40
    run = row["details"]["device_run"]
    assert run["device"]["io"] == "uint8" and run["device"]["delegate"] in ("xnnpack", "builtin")
    assert [s["input_hw"] for s in run["sizes"]] == [[64, 64]] and run["sizes"][0]["output_hw"] == [128, 128]
    (artifact,) = out.glob("imdn_x2_64x64_int8-default.tflite")
    sidecar = json.loads(Path(f"{artifact}.json").read_text())
    assert sidecar["quantization"]["io"] == "uint8" and sidecar["quantization"]["scheme"] == "sr-float"
