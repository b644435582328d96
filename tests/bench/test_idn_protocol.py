"""IDN measured as its authors did (test_IDN.m), through ONNX Runtime: the paper's Set5 figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_export.bench.evaluate import evaluate, super_resolve
from sr_export.bench.idn_protocol import caffe_region, evaluate_luma, luma_pair, score_luma
from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.data.color import rgb_to_ycbcr, y_channel
from sr_export.data.datasets import load_dataset
from sr_export.data.matlab_resize import upscale
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.pytorch import PyTorchRunner

# ../shared/reference/numbers.md: IDN (Caffe weights) and bicubic, authors' protocol.
SET5_IDN = {2: 37.827, 3: 34.113, 4: 31.809}
SET5_BICUBIC = {2: 33.661, 3: 30.392, 4: 28.421}


@pytest.fixture(scope="module")
def idn_onnx(official_model, tmp_path_factory: pytest.TempPathFactory):
    """IDN exported once per scale (legacy exporter: the exporter is not what is tested here)."""
    import onnx

    from sr_export.export.onnx import ExportOptions, export_onnx

    folder = tmp_path_factory.mktemp("idn_onnx")
    cache: dict[int, Artifact] = {}

    def get(scale: int) -> Artifact:
        if scale not in cache:
            exported = export_onnx(official_model("idn", scale), ExportOptions(exporter="legacy"))
            path = folder / f"idn_x{scale}.onnx"
            onnx.save(exported.proto, str(path))
            cache[scale] = Artifact(path, exported.metadata)
        return cache[scale]

    return get


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_through_onnxruntime_gives_the_papers_figures(idn_onnx, official_model, set5: Path, scale: int) -> None:
    report = evaluate_luma(open_runner(idn_onnx(scale)), official_model("idn", scale).info, load_dataset(set5, scale),
                           dataset="Set5")
    assert report.runner.startswith("onnxruntime")
    assert report.mean("psnr_y") == pytest.approx(SET5_IDN[scale], abs=0.01)
    assert report.mean("bicubic_psnr_y") == pytest.approx(SET5_BICUBIC[scale], abs=0.01)
    assert report.mean("ssim_y") > report.mean("bicubic_ssim_y") > 0.8
    assert [i.name for i in report.images] == ["baby", "bird", "butterfly", "head", "woman"]


def test_the_standard_protocol_scores_idn_from_the_rgb_lr_images(idn_onnx, official_model, set5: Path) -> None:
    # uint8 RGB LR images in, colour out: a different (lower) figure than the authors' float-LR one.
    info = official_model("idn", 4).info
    report = evaluate(open_runner(idn_onnx(4)), info, load_dataset(set5, 4), dataset="Set5")
    assert 31.5 < report.mean.psnr_y < SET5_IDN[4]
    assert report.mean.psnr_rgb < report.mean.psnr_y


def test_colour_output_is_the_network_y_with_bicubic_chroma(official_model, set5: Path) -> None:
    model = official_model("idn", 3)
    pair = load_dataset(set5, 3)[1]
    lr = pair.lr[:20, :24]
    result = super_resolve(PyTorchRunner(model), lr, model.info)
    assert result.shape == (60, 72, 3) and result.dtype == np.uint8
    from sr_export.data.tensors import image_to_batch

    y = PyTorchRunner(model).infer(image_to_batch(lr, model.info))[0, 0] * 255
    ycbcr = rgb_to_ycbcr(result)
    chroma = upscale(rgb_to_ycbcr(lr)[..., 1:], 3)
    # Going back through uint8 RGB costs at most a couple of levels.
    assert np.abs(ycbcr[..., 0] - np.clip(y, 0, 255)).max() < 2.5
    assert np.abs(ycbcr[..., 1:] - np.clip(chroma, 16, 240)).mean() < 1.0


def test_the_crop_and_shave_are_the_authors(set5: Path) -> None:
    # A perfect full-size result: only the region myshave keeps is compared, so
    # corrupting everything outside it changes nothing, and one pixel inside does.
    scale = 3
    hr = load_dataset(set5, scale)[0].hr
    hr_y, lr = luma_pair(hr, scale)
    assert lr.dtype == np.float64 and lr.shape == (hr_y.shape[0] // scale, hr_y.shape[1] // scale)
    result = hr_y / 255.0
    damaged = result.copy()
    damaged[:scale], damaged[-scale:], damaged[:, :scale], damaged[:, -scale:] = 0, 0, 0, 0
    assert score_luma(damaged, hr_y, upscale(lr, scale), scale)[0] == float("inf")
    damaged[scale, scale] = 0.5
    assert score_luma(damaged, hr_y, upscale(lr, scale), scale)[0] < 100
    assert caffe_region(result, scale).shape == (hr_y.shape[0] - scale + 1, hr_y.shape[1] - scale + 1)


def test_lr_comes_from_the_float_hr_y_not_from_the_uint8_lr_images(set5: Path) -> None:
    pair = load_dataset(set5, 4)[0]
    _, lr = luma_pair(pair.hr, 4)
    from_images = y_channel(pair.lr) / 255.0
    assert 0 < np.abs(lr - from_images).max() < 0.02


def test_an_rgb_model_cannot_use_the_idn_protocol(official_model) -> None:
    model = official_model("imdn", 2)
    with pytest.raises(SrExportError, match="feeds the Y channel alone"):
        evaluate_luma(PyTorchRunner(model), model.info, load_dataset("builtin", 2)[:1], dataset="builtin")
