"""The INT8 accuracy promise, on the official weights and Set5 x4: the `mixed` recipe loses at most 0.15 dB.

Calibration uses the built-in photos only (never Set5, checked by content);
the figures in benchmarks/results/int8_set5.md come from the same recipe.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.bench.evaluate import evaluate
from sr_export.data.datasets import load_dataset
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.quantize.calibration_data import check_no_overlap
from sr_export.quantize.qdq import int8_details, quantize_onnx
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.open import open_runner

MAX_DROP_DB = 0.15


@pytest.mark.parametrize("name", ["erfdn", "imdn"])
def test_mixed_recipe_keeps_set5_x4_within_0_15_db_of_float(name: str, official_model, set5: Path,
                                                              tmp_path: Path) -> None:
    model = official_model(name, 4)
    recipe = load_recipe("mixed")
    assert check_no_overlap(recipe, [set5], 4) == []
    float_artifact = save_export(model, ExportOptions(exporter="legacy"), tmp_path)
    int8 = quantize_onnx(float_artifact, recipe, output=tmp_path / "int8.onnx")
    assert len(int8_details(int8.path)["float_tensors"]) == recipe.auto_keep_float
    pairs = load_dataset(set5, 4)
    float_psnr = evaluate(open_runner(float_artifact), model.info, pairs, dataset="Set5").mean.psnr_y
    int8_psnr = evaluate(open_runner(int8), model.info, pairs, dataset="Set5").mean.psnr_y
    assert float_psnr - int8_psnr <= MAX_DROP_DB, f"{name} x4: INT8 {int8_psnr:.3f} vs float {float_psnr:.3f} dB"
    assert float_psnr - int8_psnr > 0.0  # INT8 that loses nothing means the float graph was quantised nowhere
