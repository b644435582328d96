"""Quantisation-aware fine-tuning of E-RFDN x4 (official weights) for a few steps: interpreter, loss, record.

Seconds, not minutes: the Set5 effect of the `qat` recipe on the official
weights is measured by benchmarks/int8_set5.py (benchmarks/results/int8_qat_set5.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from sr_export.core.errors import SrExportError
from sr_export.quantize.recipes import FinetuneSettings, load_recipe, recipe_from_dict

TINY_QAT_RECIPE = """
name = "tinyqat"
[patches]
size = 24
count = 4
seed = 1
[method]
name = "percentile"
percentile = 99.999
[finetune]
steps = {steps}
batch = 4
patch_size = 24
lr = 1e-5
scale_lr = 1e-4
"""


def _recipe(tmp_path: Path, steps: int):
    path = tmp_path / "tinyqat.toml"
    path.write_text(TINY_QAT_RECIPE.format(steps=steps), encoding="utf-8")
    return load_recipe(path)


def test_the_interpreted_float_graph_matches_onnx_runtime(erfdn_float) -> None:
    import torch

    from sr_export.export.session import cpu_session
    from sr_export.quantize.onnx_torch import build_graph_module

    x = np.random.default_rng(0).random((1, 3, 20, 28), dtype=np.float32) * erfdn_float.metadata.data_range
    session = cpu_session(str(erfdn_float.path))
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = build_graph_module(onnx.load(str(erfdn_float.path)), trainable=False)(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-3 * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("loss", [{}, {"loss": "mse"}], ids=["l1", "mse"])
def test_distillation_lowers_the_fake_quant_students_loss(erfdn_float, tmp_path: Path, loss: dict) -> None:
    from dataclasses import replace

    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.quantize.finetune import finetune
    from sr_export.quantize.qdq import artifact_statistics, load_float_proto, plan_float_nodes
    from sr_export.quantize.qdq_graph import quantized_proto

    # Six steps on the 4 whole patches; small learning rates, since Adam's first steps move every weight by
    # about lr, which re-rounds weights at random before the averages settle (the recipe runs hundreds of steps).
    recipe = _recipe(tmp_path, steps=6)
    proto = load_float_proto(erfdn_float)
    calibration = CalibrationSet(recipe, erfdn_float.metadata.model_info())
    statistics = artifact_statistics(erfdn_float, recipe, proto, calibration=calibration)
    plan = plan_float_nodes(proto, recipe)
    student = quantized_proto(proto, statistics, recipe, exclude=plan.names(),
                              data_range=erfdn_float.metadata.data_range)
    result = finetune(proto, student, list(calibration), replace(recipe.finetune, **loss),
                      erfdn_float.metadata.data_range, progress=False)
    assert result.loss_after < result.loss_before
    assert set(result.scales) and all(step > 0 for step, _zp in result.scales.values())
    changed = [name for name, value in result.weights.items()
               if not np.array_equal(value, onnx.numpy_helper.to_array(
                   next(i for i in proto.graph.initializer if i.name == name)))]
    assert changed, "no weight moved"


def test_the_qat_recipe_records_the_fine_tuning_and_reuses_its_cache(
    erfdn_float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sr_export.quantize import finetune as finetune_module
    from sr_export.quantize.qdq import int8_details, quantize_onnx

    recipe = _recipe(tmp_path, steps=2)
    first = quantize_onnx(erfdn_float, recipe, output=tmp_path / "a.onnx")
    record = first.metadata.quantization["finetuned"]
    assert record["from_checkpoint"] == erfdn_float.metadata.weights_sha256
    assert record["settings"]["steps"] == 2 and record["loss_before"] > 0
    assert any("fine-tuned for INT8" in note for note in first.metadata.notes)
    assert int8_details(first.path)["recipe"]["finetune"]["steps"] == 2

    def no_training(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("fine-tuned again instead of reading the cache")

    monkeypatch.setattr(finetune_module, "finetune", no_training)
    again = quantize_onnx(erfdn_float, recipe, output=tmp_path / "b.onnx")
    assert again.metadata.quantization == first.metadata.quantization
    # The tuned weights and learned steps are what the built graph carries: the same from the cache.
    assert onnx.load(str(first.path)).graph.initializer == onnx.load(str(again.path)).graph.initializer


def test_finetune_settings_are_validated_and_round_trip() -> None:
    recipe = recipe_from_dict({"finetune": {"steps": 50, "lr": 5e-5, "learn_scales": False}})
    assert recipe.finetune == FinetuneSettings(steps=50, lr=5e-5, learn_scales=False)
    assert recipe.to_dict()["finetune"]["steps"] == 50 and "fine-tuned" in recipe.summary()
    assert load_recipe("qat").finetune is not None and load_recipe("default").finetune is None
    with pytest.raises(SrExportError, match="finetune.step"):
        recipe_from_dict({"finetune": {"step": 5}})
    with pytest.raises(SrExportError, match="finetune.lr"):
        recipe_from_dict({"finetune": {"lr": 2}})
    with pytest.raises(SrExportError, match="finetune.loss = 'l2'.*l1, mse"):
        recipe_from_dict({"finetune": {"loss": "l2"}})


def test_the_loss_enters_the_cache_key_only_when_it_is_not_the_default() -> None:
    # Caches written before `loss` existed keep their keys; `loss = "mse"` makes a new one.
    plain = FinetuneSettings(steps=50)
    assert "loss" not in plain.to_dict()
    tuned = recipe_from_dict({"finetune": {"steps": 50, "loss": "mse"}}).finetune
    assert tuned.to_dict()["loss"] == "mse"
    assert recipe_from_dict({"finetune": plain.to_dict()}).finetune == plain


