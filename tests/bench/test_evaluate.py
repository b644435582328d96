"""Set5 through the exported ONNX in ONNX Runtime equals the PyTorch reference figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.bench.evaluate import evaluate
from sr_export.data.datasets import load_dataset
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.pytorch import PyTorchRunner

# ../shared/reference/numbers.md, "PSNR on Set5" (PyTorch, authors' checkpoints).
SET5_PSNR_Y = {("erfdn", 4): 32.138, ("imdn", 2): 37.911, ("imdn", 3): 34.323, ("imdn", 4): 32.187}


@pytest.mark.parametrize(("name", "scale"), sorted(SET5_PSNR_Y))
def test_set5_y_psnr_through_onnxruntime(exported_official, official_model, set5: Path, name: str, scale: int) -> None:
    artifact = exported_official(name, scale)
    info = official_model(name, scale).info
    report = evaluate(open_runner(artifact), info, load_dataset(set5, scale), dataset="Set5")
    assert report.mean.psnr_y == pytest.approx(SET5_PSNR_Y[(name, scale)], abs=0.01)
    assert 0.85 < report.mean.ssim_y < 1.0
    assert report.mean.psnr_rgb < report.mean.psnr_y  # RGB PSNR is the harder number


def test_pytorch_and_onnxruntime_give_the_same_scores(exported_official, official_model, set5: Path) -> None:
    model = official_model("erfdn", 4)
    pairs = load_dataset(set5, 4)
    onnx_scores = evaluate(open_runner(exported_official("erfdn", 4)), model.info, pairs, dataset="Set5")
    torch_scores = evaluate(PyTorchRunner(model), model.info, pairs, dataset="Set5")
    assert onnx_scores.mean.psnr_y == pytest.approx(torch_scores.mean.psnr_y, abs=0.005)


def test_on_the_builtin_photos_the_real_model_beats_a_random_one(official_model) -> None:
    from sr_export.models.loader import ModelRequest, load_model

    pairs = load_dataset("builtin", 2)
    trained = evaluate(PyTorchRunner(official_model("imdn", 2)), official_model("imdn", 2).info, pairs, dataset="builtin")
    random = load_model(ModelRequest("imdn", scale=2))
    untrained = evaluate(PyTorchRunner(random), random.info, pairs, dataset="builtin")
    assert trained.mean.psnr_y > 30 > untrained.mean.psnr_y
