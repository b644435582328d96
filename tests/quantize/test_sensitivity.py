"""Per-layer and per-tensor sensitivity on calibration patches, in all three views."""

from __future__ import annotations

import math
from pathlib import Path

from sr_export.bench.int8_report import sensitivity_chart, suggest_keep_float
from sr_export.quantize.qdq import load_float_proto, plan_float_nodes
from sr_export.quantize.qdq_graph import quantized_proto
from sr_export.quantize.recipes import load_recipe
from sr_export.quantize.sensitivity import (
    OutputProbe,
    cached_tensor_sensitivity,
    layer_sensitivity,
    tensor_sensitivity,
)
from sr_export.quantize.statistics import cache_folder

LAYERS = ["/B1/c2_r/Conv", "/B3/c5/Conv", "/B4/esa/conv4/Conv"]


def test_only_view_gives_each_layer_a_finite_output_psnr_worst_first(erfdn_float, erfdn_statistics,
                                                                     tiny_recipe_path: Path, tmp_path: Path) -> None:
    proto = load_float_proto(erfdn_float)
    results = layer_sensitivity(proto, erfdn_statistics, load_recipe(tiny_recipe_path), erfdn_float,
                                layers=LAYERS, patches=2)
    assert sorted(r.name for r in results) == sorted(LAYERS)
    values = [r.psnr_db for r in results]
    assert values == sorted(values) and all(math.isfinite(v) and 30.0 < v < 90.0 for v in values)
    assert suggest_keep_float(results, 2) == tuple(r.name for r in results[:2])
    chart = sensitivity_chart(results, [n.name for n in proto.graph.node], tmp_path / "s.png", title="t",
                              highlight=[results[0].name])
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float_one_view_measures_what_each_layer_gives_back(erfdn_float, erfdn_statistics,
                                                            tiny_recipe_path: Path) -> None:
    recipe = load_recipe(tiny_recipe_path)
    proto = load_float_proto(erfdn_float)
    plan = plan_float_nodes(proto, recipe)
    results = layer_sensitivity(proto, erfdn_statistics, recipe, erfdn_float, exclude=plan.names(),
                                layers=LAYERS[:2], patches=1, mode="float-one")
    gains = [r.gain_db for r in results]
    assert gains == sorted(gains, reverse=True)
    assert all(-1.0 < g < 5.0 for g in gains)


def test_float_tensor_view_ranks_activations_and_its_gain_is_what_keeping_one_float_gives(
        erfdn_float, erfdn_statistics, tiny_recipe_path: Path) -> None:
    recipe = load_recipe(tiny_recipe_path)
    proto = load_float_proto(erfdn_float)
    plan = plan_float_nodes(proto, recipe)
    counted: list[int] = []
    results = tensor_sensitivity(proto, erfdn_statistics, recipe, erfdn_float, exclude=plan.names(), patches=1,
                                 on_count=counted.append)
    assert counted == [len(results)] and len(results) > 50
    producers = {out: n.op_type for n in proto.graph.node for out in n.output}
    assert all(producers[r.name] == r.op_type for r in results)  # activation tensors, named as in the float graph
    gains = [r.gain_db for r in results]
    assert gains == sorted(gains, reverse=True) and gains[0] > 0.05
    # Re-measure the top tensor kept in float from scratch: the same output PSNR the scan reported.
    kept = quantized_proto(proto, erfdn_statistics, recipe, exclude=plan.names(), float_tensors=[results[0].name])
    again = OutputProbe.of(proto, erfdn_float, recipe, 1).psnr(kept)
    assert math.isclose(again, results[0].psnr_db, abs_tol=1e-6)


def test_tensor_sensitivity_is_cached_next_to_its_statistics(erfdn_float, erfdn_statistics,
                                                              tiny_recipe_path: Path) -> None:
    recipe = load_recipe(tiny_recipe_path)
    proto = load_float_proto(erfdn_float)
    plan = plan_float_nodes(proto, recipe)
    before = set(cache_folder().glob("*-tensors.json")) if cache_folder().is_dir() else set()
    first = cached_tensor_sensitivity(proto, erfdn_statistics, recipe, erfdn_float, plan, patches=1)
    written = set(cache_folder().glob("*-tensors.json")) - before
    assert len(written) == 1
    again = cached_tensor_sensitivity(proto, erfdn_statistics, recipe, erfdn_float, plan, patches=1)
    assert [(r.name, r.gain_db) for r in again] == [(r.name, r.gain_db) for r in first]
