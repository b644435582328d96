"""Default output names say what makes two builds of one model differ, so a second build or run never
replaces the first; an explicit -o name is the user's and is used as given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sr_export.core.naming import base_stem, int8_tail, label, run_stamp, unused_stem
from sr_export.models.loader import ModelRequest, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESPCN = f"{FIXTURES / 'espcn.py'}:ESPCN"
TINY_RECIPE = '[patches]\nsize = 24\ncount = 2\nseed = {seed}\n[method]\nname = "minmax"\n'


def _recipes(folder: Path, *names: str) -> list[Path]:
    paths = []
    for seed, name in enumerate(names):
        path = folder / f"{name}.toml"
        path.write_text(TINY_RECIPE.format(seed=seed))
        paths.append(path)
    return paths


def test_int8_exports_with_two_recipes_land_side_by_side_and_an_explicit_name_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sr_export
) -> None:
    plain, mixed = _recipes(tmp_path, "plain", "mixed")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = ["--model", ESPCN, "--scale", "2", "--model-kwargs", '{"width": 8}', "--exporter", "legacy"]
    for recipe in (plain, mixed):
        result = sr_export("onnx", *model, "--int8", "--calib", recipe, "--no-check")
        assert result.code == 0, result.err
    result = sr_export("onnx", *model, "--int8", "--calib", plain, "--int8-flavour", "tensorrt", "--no-check")
    assert result.code == 0, result.err
    result = sr_export("onnx", *model, "--int8", "--calib", mixed, "--no-check", "-o", "mine.onnx")
    assert result.code == 0, result.err
    assert sorted(p.name for p in work.glob("*.onnx")) == [
        "espcn_x2_int8-mixed.onnx", "espcn_x2_int8-plain.onnx", "espcn_x2_int8_trt-plain.onnx", "mine.onnx"]


def test_a_fixed_size_export_and_a_keep_float_plan_are_builds_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sr_export
) -> None:
    (plain,) = _recipes(tmp_path, "plain")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    model = ["--model", ESPCN, "--scale", "2", "--model-kwargs", '{"width": 8}', "--exporter", "legacy"]
    for extra in ([], ["--shape", "24x40"]):
        result = sr_export("onnx", *model, *extra)
        assert result.code == 0, result.err
    for plan in ([], ["--keep-float", "/mid/Conv"], ["--keep-float", "/first/Conv,/mid/Conv"],
                 ["--keep-float", "/mid/Conv,/first/Conv"]):  # the same plan as the one before, in another order
        result = sr_export("onnx", *model, "--int8", "--calib", plain, "--no-check", "--force", *plan)
        assert result.code == 0, result.err
    names = {p.name for p in work.glob("*.onnx")}
    plans = sorted(name for name in names if "+kf" in name)
    assert names - set(plans) == {"espcn_x2.onnx", "espcn_x2_24x40.onnx", "espcn_x2_int8-plain.onnx"}, names
    assert len(plans) == 2, names  # two plans, the second given twice
    assert all(re.fullmatch(r"espcn_x2_int8-plain\+kf[0-9a-f]{8}\.onnx", name) for name in plans), plans
    assert [base_stem(Path(name).stem)[0] for name in plans] == ["espcn_x2", "espcn_x2"]


def test_tflite_int8_names_carry_the_scheme_and_the_recipe(tmp_path: Path) -> None:
    from sr_export.quantize.recipes import load_recipe
    from sr_export.runtimes.tflite.convert import TfliteOptions, default_filename
    from sr_export.runtimes.tflite.int8 import TfliteInt8Options

    model = load_model(ModelRequest(ESPCN, scale=2, kwargs={"width": 8}))
    plain, mixed = (load_recipe(p) for p in _recipes(tmp_path, "plain", "mixed"))

    def name(precision: str, recipe=None, scheme=None) -> str:
        int8 = TfliteInt8Options(recipe, scheme=scheme) if recipe is not None else None
        return default_filename(model, TfliteOptions(shape=(32, 48), precision=precision, int8=int8))

    assert name("fp32") == "espcn_x2_32x48.tflite" and name("fp16") == "espcn_x2_32x48_fp16.tflite"
    assert name("int8", plain, "sr-float") == "espcn_x2_32x48_int8-plain.tflite"
    assert name("int8", mixed, "sr-float") == "espcn_x2_32x48_int8-mixed.tflite"
    assert name("int8", plain, "sr-int16") == "espcn_x2_32x48_int8_a16-plain.tflite"
    assert name("int8", plain, "full") == "espcn_x2_32x48_int8_full-plain.tflite"


def test_core_ml_packages_of_two_precisions_have_two_names() -> None:
    from sr_export.runtimes.coreml.package import default_filename

    model = load_model(ModelRequest(ESPCN, scale=2, kwargs={"width": 8}))
    names = {default_filename(model, "fp16"), default_filename(model, "fp32"), default_filename(model, "fp16", True)}
    assert names == {"espcn_x2_fp16.mlpackage", "espcn_x2.mlpackage", "espcn_x2_fp16_w8.mlpackage"}


def test_int8_engines_are_named_by_their_recipe_given_or_read_off_the_qdq_file(tmp_path: Path) -> None:
    from sr_export.runtimes.tensorrt.build import engine_path

    assert engine_path(Path("imdn_x2.onnx"), tmp_path, "int8", "mixed") == tmp_path / "imdn_x2_int8-mixed.engine"
    assert engine_path(Path("/m/imdn_x2_int8_trt-mixed.onnx"), None, "int8") == Path("/m/imdn_x2_int8-mixed.engine")
    assert engine_path(Path("/m/imdn_x2_int8_trt-mixed.onnx"), None, "int8", "default") == Path(
        "/m/imdn_x2_int8-default.engine")
    assert engine_path(Path("imdn_x2.onnx"), tmp_path, "fp16", "mixed") == tmp_path / "imdn_x2_fp16.engine"


def test_a_matrix_run_twice_keeps_both_results(tmp_path: Path, sr_bench) -> None:
    out = tmp_path / "out"
    run = ["--target", "cpu", "--models", ESPCN, "--scale", "2", "--sizes", "16x16", "--runs", "1", "--warmup", "0",
           "--exporter", "legacy", "-o", out]
    first = sr_bench(*run, "--no-history")
    assert first.code == 0, first.err
    second = sr_bench(*run, "--db", tmp_path / "history.sqlite")
    assert second.code == 0, second.err
    results = sorted(out.glob("matrix-cpu-*.json"))
    assert len(results) == 2
    by_id = {json.loads(p.read_text())["run_id"]: p.name for p in results}
    stamp = next(i for i in by_id if not i.isdigit())
    assert re.fullmatch(r"\d{8}T\d{6}Z", stamp) and by_id[stamp] == f"matrix-cpu-{stamp}.json"
    assert by_id.get("1") == "matrix-cpu-1.json"  # the run number in a new history
    for name in by_id.values():
        assert (out / name.replace(".json", "-latency.png")).is_file()


def test_recipe_names_become_safe_file_name_parts() -> None:
    assert label("my recipe/v2") == "my-recipe-v2" and label("mixed") == "mixed" and label("///") == "custom"
    assert int8_tail("mixed") == "_int8-mixed" and int8_tail("a b", "_trt") == "_int8_trt-a-b"
    assert int8_tail(None) == "_int8"


def test_a_name_built_from_a_default_name_drops_its_precision_tail() -> None:
    assert base_stem("imdn_x2_int8_trt-mixed") == ("imdn_x2", "mixed")
    assert base_stem("imdn_x2_fp16") == ("imdn_x2", None)
    assert base_stem("imdn_x2") == ("imdn_x2", None)


def test_run_ids_sort_by_time_and_never_reuse_a_name(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    assert run_stamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "20260102T030405Z"
    assert unused_stem(tmp_path, "matrix-cpu-7", (".json",)) == "matrix-cpu-7"
    (tmp_path / "matrix-cpu-7.json").write_text("{}")
    (tmp_path / "matrix-cpu-7-2-latency.png").write_bytes(b"")
    assert unused_stem(tmp_path, "matrix-cpu-7", (".json", "-latency.png")) == "matrix-cpu-7-3"
