"""Tiling is measured, not assumed: a fixed-size artifact records, when it is proven, how its stitched tiles
compare with the whole-image output on real images larger than its tile; `info` shows it, and the README's
figures are these measurements."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sr_export import api
from sr_export.cli.tables import describe_tiling

README = Path(__file__).resolve().parents[2] / "README.md"
ESPCN = f"{Path(__file__).resolve().parents[1] / 'fixtures' / 'espcn.py'}:ESPCN"
TILE = (64, 64)
NOISE_DB = 1.0  # measured figures may move this much between machines and ONNX Runtime builds


def readme_figure(label: str) -> float:
    match = re.search(rf"\| {re.escape(label)} \| approximate \| ([\d.]+) dB \|", README.read_text())
    assert match, f"README.md has no measured tiling row for {label}"
    return float(match.group(1))


@pytest.mark.parametrize(("name", "scale", "label"), [("erfdn", 4, "E-RFDN x4"), ("imdn", 4, "IMDN x4")])
def test_a_fixed_size_onnx_file_of_an_official_model_records_its_measured_tiling(
    official_model, tmp_path: Path, sr_export, name: str, scale: int, label: str
) -> None:
    artifact = api.build(official_model(name, scale), "cpu", tmp_path / f"{name}.onnx", shape=TILE)
    tiling = api.open_artifact(artifact.path).metadata.tiling
    # Both reach beyond any tile: E-RFDN's ESA (strided conv, max-pool, upsampling), IMDN's global pooling.
    assert tiling["verdict"] == "approximate"
    assert tiling["images"] and all(f"{TILE[0]}x{TILE[1]}" not in image for image in tiling["images"])
    assert abs(tiling["psnr_db"] - readme_figure(label)) <= NOISE_DB, (tiling, label)
    info = sr_export("info", artifact.path)
    assert info.code == 0 and "approximate (" in info.out and "stitched tiles vs the whole image" in info.out


def test_a_plain_conv_net_tiles_exactly(tmp_path: Path) -> None:
    model = api.load_model(ESPCN, scale=2, kwargs={"width": 8})
    artifact = api.build(model, "cpu", tmp_path / "espcn.onnx", shape=(32, 32))
    tiling = artifact.metadata.tiling
    assert tiling["verdict"] == "exact" and tiling["max_abs_error"] <= 1e-3
    assert describe_tiling(tiling).startswith("exact (")


def test_a_dynamic_file_runs_whole_images_and_records_no_tiling(tmp_path: Path) -> None:
    model = api.load_model(ESPCN, scale=2, kwargs={"width": 8})
    assert api.build(model, "cpu", tmp_path / "espcn.onnx").metadata.tiling == {}
