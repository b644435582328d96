"""INT8 ExecuTorch programs: PT2E with the XNNPACK quantizer, the SR-sensitive ops kept float by the SR rules.

One official IMDN x2 INT8 program is built by `sr-export build` (the INT8
check, output PSNR and built-in-image drop, runs on the way), calibrated on a
few patches of the default recipe to keep the test short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("executorch", reason="executorch not installed (pip install 'sr-export[executorch]')")

from sr_export.runtimes.executorch.sr_regions import float_nodes  # noqa: E402
from sr_export.runtimes.open import open_artifact  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def imdn_int8(tmp_path_factory: pytest.TempPathFactory):
    from sr_export.cli.export_cli import main

    folder = tmp_path_factory.mktemp("executorch-int8")
    recipe = folder / "few.toml"
    recipe.write_text((REPO / "calibration" / "default.toml").read_text().replace("count = 48", "count = 8"))
    report = folder / "build.json"
    assert main(["build", "--target", "executorch-xnnpack-int8", "--model", "imdn", "--scale", "2",
                 "--weights", "official", "--calib", str(recipe), "-o", str(folder), "--json", str(report)]) == 0
    return json.loads(report.read_text())


def test_the_int8_program_passes_the_int8_check(imdn_int8) -> None:
    (step,) = imdn_int8["steps"]
    check = step["check"]
    assert check["passed"] and step["metadata"]["precision"] == "int8"
    assert Path(step["artifact"]).name == "imdn_x2_int8-few.pte"
    artifact = open_artifact(step["artifact"])
    quantization = artifact.metadata.quantization
    assert quantization["recipe"] == "few" and quantization["calibration_patches"] == 8


def test_the_sr_sensitive_ops_stay_float(imdn_int8) -> None:
    (step,) = imdn_int8["steps"]
    reasons = step["metadata"]["quantization"]["float_ops"]
    assert reasons["conv2d"].startswith("first conv") and reasons["pixel_shuffle"].startswith("upsampler")
    assert any(r.startswith("last conv") for r in reasons.values())
    assert any(r.startswith("per-channel statistic") for r in reasons.values())  # IMDN's contrast attention


def test_keep_float_names_modules_and_unknown_nothing() -> None:
    import torch
    from torch import nn

    from sr_export.runtimes.executorch.lower import export_program

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    graph = export_program(net, torch.rand(1, 3, 32, 32), (16, 64)).module()
    plain = float_nodes(graph)
    assert "conv2d" in plain and "conv2d_2" not in plain
    kept = float_nodes(graph, ["2"])
    assert kept["conv2d_1"] == "inside 2 (keep_float)" and "conv2d_2" not in kept
