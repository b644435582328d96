"""`sr-bench speed` builds what its target profile says before timing it, calibration included."""

from __future__ import annotations

import json
from pathlib import Path

from sr_export.quantize.statistics import cache_folder

TINY = '[patches]\nsize = 24\ncount = 4\nseed = 7\n[method]\nname = "minmax"\n'


def test_an_int8_profile_times_the_qdq_graph_calibrated_with_its_recipe(exported_official, tmp_path: Path,
                                                                        sr_bench) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    profile = tmp_path / "int8.toml"
    profile.write_text(f'backend = "onnxruntime"\nprecision = "int8"\n[options]\ncalibration = "{recipe}"\n'
                       '[bench]\ninput_sizes = ["32x32"]\nwarmup = 1\nruns = 2\n')
    export = exported_official("imdn", 2).path
    result = sr_bench("--target", profile, "speed", "--artifact", export, "--no-pytorch", "--json")
    assert result.code == 0, result.err
    timings = json.loads(result.out)["timings"]
    assert [(t["runner"], t["input_hw"]) for t in timings] == [("onnxruntime:imdn_x2_int8-tiny.onnx", [32, 32])]
    keys = [json.loads(p.read_text())["key"] for p in cache_folder().glob("*.json") if "key" in p.read_text()]
    recipes = [k["calibration"]["recipe"] for k in keys if isinstance(k, dict) and "calibration" in k]
    assert {"patch_size": 24, "patch_count": 4, "seed": 7, "method": "minmax"}.items() <= next(
        r for r in recipes if r["seed"] == 7).items()
