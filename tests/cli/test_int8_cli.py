"""INT8 on the command line: `sr-export onnx --int8`, `sr-export check` on INT8, `sr-bench int8-report`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

TINY = """
[patches]
size = 24
count = 4
[method]
name = "percentile"
"""


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    from sr_export.cli.export_cli import main

    folder = tmp_path_factory.mktemp("int8-cli")
    recipe = folder / "tiny.toml"
    recipe.write_text(TINY)
    out = folder / "erfdn_x4_int8.onnx"
    assert main(["onnx", "--model", "erfdn", "--weights", "official", "--exporter", "legacy", "--int8",
                 "--calib", str(recipe), "-o", str(out), "--json", str(folder / "report.json"),
                 "--trt-calibration-cache", str(folder / "erfdn.cache")]) == 0
    return out


def test_onnx_int8_writes_a_checked_qdq_artifact(int8_export: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(int8_export)).metadata_props}
    assert json.loads(props["sr_export"])["precision"] == "int8"
    report = json.loads((int8_export.parent / "report.json").read_text())
    assert report["flavour"] == "onnxruntime" and report["recipe"]["patch_count"] == 4
    assert report["parity"]["passed"] and report["parity"]["tolerance"]["max_abs_error"] == 1.0
    drop = report["dataset_drop"]
    assert drop["passed"] and drop["dataset"] == "builtin"
    assert -0.1 < drop["drop_db"] < drop["max_drop_db"]
    assert all(c["psnr_db"] >= 35.0 for c in report["parity"]["cases"])
    header = (int8_export.parent / "erfdn.cache").read_text().splitlines()[0]
    assert header.startswith("TRT-10") and header.endswith("-EntropyCalibration2")


def test_check_judges_int8_by_output_psnr_and_dataset_drop(int8_export: Path, sr_export) -> None:
    result = sr_export("check", int8_export, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["precision"] == "int8"
    assert data["dataset_drop"]["passed"] and data["dataset_drop"]["max_drop_db"] == 0.3


def test_int8_report_refuses_calibration_images_from_the_evaluation_set(tmp_path: Path, set5: Path,
                                                                     sr_bench) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(set5 / "HR" / "head.bmp").save(photos / "portrait.png")
    recipe = tmp_path / "leaky.toml"
    recipe.write_text(f'[source]\nimages = "{photos}"\n')
    result = sr_bench("int8-report", "--model", "erfdn", "--weights", "official", "--calib", recipe,
                      "--dataset", set5, "--out-dir", tmp_path / "out")
    assert result.code == 2
    assert "contains 1 image(s) of the evaluation dataset (portrait.png)" in result.error()
    assert not (tmp_path / "out").exists()


def test_unknown_recipe_and_keep_float_are_one_line_errors(sr_export, tmp_path: Path) -> None:
    result = sr_export("onnx", "--model", "erfdn", "--weights", "official", "--int8", "--calib", "nope",
                       "-o", tmp_path / "x.onnx")
    assert result.code == 2 and "unknown calibration recipe 'nope'" in result.error()
    assert not (tmp_path / "x.onnx").exists()


def test_a_fixed_size_int8_build_calibrates_on_patches_fitted_to_its_size(tmp_path: Path, sr_export) -> None:
    from sr_export.runtimes.open import open_runner

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    result = sr_export("build", "--target", "cpu-int8", "--model", "imdn", "--scale", "2", "--weights", "official",
                       "--shape", "40x56", "--calib", str(recipe), "--no-check", "-o", tmp_path / "out")
    assert result.code == 0, result.error()
    written = tmp_path / "out" / "imdn_x2_40x56_int8-tiny.onnx"
    graph = onnx.load(str(written)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3, 40, 56]
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 10
    with open_runner(written) as runner:  # the patches (24 px) were fitted to 40x56; the graph runs as built
        assert runner.infer(np.full((1, 3, 40, 56), 0.5, np.float32)).shape == (1, 3, 80, 112)


def test_int8_report_ranks_activation_tensors_and_its_plan_applies(tmp_path: Path, sr_bench, sr_export) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "out"
    result = sr_bench("int8-report", "--model", "imdn", "--scale", "2", "--weights", "official", "--exporter",
                      "legacy", "--calib", recipe, "--dataset", "builtin", "--sensitivity-patches", "1", "--runs", "1",
                      "--speed-size", "32x32", "--suggest", "3", "--frontier", "1", "--out-dir", out,
                      "--json", tmp_path / "report.json")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "report.json").read_text())
    float_graph = onnx.load(str(out / "imdn_x2.onnx"))
    tensors = {o for n in float_graph.graph.node for o in n.output}
    gains = [s["gain_db"] for s in report["sensitivity"]]
    assert len(gains) > 30 and gains == sorted(gains, reverse=True)
    plan = report["suggested_keep_float"]
    assert len(plan) == 3 and set(plan) <= tensors
    assert (out / "imdn_x2_int8-tiny_sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert "suggested plan: --keep-float " + ",".join(plan) in result.out
    assert (out / "imdn_x2_int8-tiny.onnx").is_file()  # named by its recipe, like sr-export onnx --int8
    kernels = report["kernels"]
    assert kernels["source_convs"] == len(kernels["integer_convs"]) + len(kernels["float_convs"]) > 30
    assert f"runs {len(kernels['integer_convs'])} of {kernels['source_convs']} convs as integer kernels" in result.out

    # The frontier starts all-integer and adds the island with the most dB regained per ms; each point is a recipe.
    start, first = report["frontier"]
    assert start["label"] == "all-integer" and start["keep_float"] == [] and start["float_convs"] == 0
    assert first["gain_db"] > 0 and first["keep_float"] and first["drop_db"] < start["drop_db"] + 0.05
    from sr_export.quantize.recipes import load_recipe

    recipe_of_first = load_recipe(first["recipe"])
    assert not recipe_of_first.sr_aware and list(recipe_of_first.keep_float) == first["keep_float"]
    assert (out / "imdn_x2_int8-tiny_frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert "INT8 frontier from the all-integer graph" in result.out

    applied = tmp_path / "imdn_x2_int8.onnx"
    result = sr_export("onnx", "--model", "imdn", "--scale", "2", "--weights", "official", "--exporter", "legacy",
                       "--int8", "--calib", recipe, "--keep-float", ",".join(plan), "--no-check", "-o", applied)
    assert result.code == 0, result.err
    props = {p.key: p.value for p in onnx.load(str(applied)).metadata_props}
    assert set(json.loads(props["sr_export_int8"])["float_tensors"]) == set(plan)
