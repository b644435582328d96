"""`sr-export import-caffe` and `sr-bench eval --protocol` for IDN, from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch


def test_import_caffe_writes_a_checkpoint_that_loads_as_idn(sr_export, sr_bench, weights_dir: Path, tmp_path: Path) -> None:
    folder = weights_dir / "idn_caffe"
    output = tmp_path / "out" / "idn_x3.pth"
    result = sr_export("import-caffe", folder / "IDN_x3_deploy.prototxt", folder / "IDN_x3.caffemodel",
                       "-o", output, "--json", tmp_path / "report.json")
    assert result.code == 0, result.err
    assert "idn x3: 62 blobs from 31 Caffe layers, 552,769 parameters" in result.out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["check"]["passed"] and report["check"]["max_abs_diff"] < 1e-5
    assert report["mapped"][-2] == {"layer": "upsample", "key": "upsample.weight", "shape": [64, 1, 17, 17]}
    state = torch.load(output, weights_only=True)
    assert int(state["scale_factor"]) == 3
    assert [p.name for p in output.parent.iterdir()] == ["idn_x3.pth"]  # no temporary files left

    profile = sr_bench("profile", "--model", "idn", "--weights", output, "--input", "24x24", "--no-graph",
                       "--json", "-")
    assert profile.code == 0, profile.err
    assert '"params": 552769' in profile.out


def test_import_caffe_without_the_right_prototxt_fails_in_one_line_and_writes_nothing(
    sr_export, weights_dir: Path, tmp_path: Path
) -> None:
    folder = weights_dir / "idn_caffe"
    output = tmp_path / "idn.pth"
    result = sr_export("import-caffe", folder / "IDN_x2_deploy.prototxt", folder / "IDN_x4.caffemodel", "-o", output)
    assert result.code == 2
    assert "describe different networks" in result.error()
    assert not output.exists() and list(tmp_path.iterdir()) == []


def _small_dataset(set5: Path, folder: Path) -> Path:
    """Two 96x96 HR crops of Set5 (LR 24x24 at x4): enough for the CLI, cheap to run."""
    from PIL import Image

    from sr_export.data.images import read_image

    (folder / "HR").mkdir(parents=True)
    for name in ("butterfly", "bird"):
        Image.fromarray(read_image(set5 / "HR" / f"{name}.bmp")[100:196, 60:156]).save(folder / "HR" / f"{name}.png")
    return folder


def test_a_caffemodel_loads_directly_and_finds_its_prototxt(
    sr_bench, weights_dir: Path, set5: Path, tmp_path: Path
) -> None:
    dataset = _small_dataset(set5, tmp_path / "data")
    copy = tmp_path / "models"
    copy.mkdir()
    for name in ("IDN_x4.caffemodel", "IDN_x4_deploy.prototxt"):
        shutil.copy(weights_dir / "idn_caffe" / name, copy / name)
    result = sr_bench("eval", "--model", "idn", "--weights", copy / "IDN_x4.caffemodel", "--dataset", dataset,
                      "--json", "-")
    assert result.code == 0, result.err
    scores = json.loads(result.out)
    assert scores["scale"] == 4 and len(scores["images"]) == 2 and scores["protocol"].startswith("IDN authors' MATLAB test")
    assert scores["mean"]["psnr_y"] > scores["mean"]["bicubic_psnr_y"] + 1.0

    (copy / "IDN_x4_deploy.prototxt").rename(copy / "elsewhere.prototxt")
    missing = sr_bench("eval", "--model", "idn", "--weights", copy / "IDN_x4.caffemodel", "--dataset", dataset)
    assert "pass --prototxt" in missing.error()
    given = sr_bench("eval", "--model", "idn", "--weights", copy / "IDN_x4.caffemodel", "--prototxt",
                     copy / "elsewhere.prototxt", "--dataset", dataset, "--protocol", "standard", "--json", "-")
    assert given.code == 0, given.err
    assert json.loads(given.out)["mean"]["psnr_rgb"] > 25


def test_the_idn_protocol_needs_a_y_channel_model(sr_bench) -> None:
    result = sr_bench("eval", "--model", "imdn", "--scale", "4", "--dataset", "builtin", "--protocol", "idn")
    assert "feeds the Y channel alone" in result.error()
