"""The parity table states the bound each row was judged by: tiled rows have a looser one than whole-image rows."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from sr_export.checks.parity import run_parity
from sr_export.cli.tables import parity_table
from sr_export.data.parity_inputs import ParityInput, builtin_parity_inputs
from sr_export.models.loader import ModelInfo


class Off:
    """A runner computing a fixed function, off its reference by ``offset``, for checking the table itself."""

    def __init__(self, name: str, offset: float) -> None:
        self.name, self.offset = name, offset

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(batch, 2, 2), 2, 3) + self.offset


def _render(report) -> list[str]:
    console = Console(file=io.StringIO(), width=200, record=True)
    console.print(parity_table(report))
    return console.export_text().splitlines()


def _inputs(*, tiled: bool) -> list[ParityInput]:
    whole = builtin_parity_inputs(ModelInfo("toy", 2), sizes=[(24, 24)], per_size=1)[0]
    return [whole] + ([ParityInput("tiles", whole.batch, tiled=True)] if tiled else [])


def test_tiled_rows_show_their_looser_bound_and_the_title_no_single_bound() -> None:
    # 0.05 off on a 0-255 range is 74 dB: under FP32's 80 dB for a whole image, within the tiling bound (40 dB).
    report = run_parity(Off("a", 0.05), Off("b", 0.0), _inputs(tiled=True), data_range=255.0)
    title, *rest = _render(report)
    assert "(fp32; bounds per row)" in title and "<=" not in title
    whole = next(line for line in rest if "astronaut" in line)
    tiled = next(line for line in rest if "tiles (tiled)" in line)
    assert "PSNR >= 80 dB, max|diff| <= 0.255" in whole and "PSNR 74.2 dB < 80 dB" in whole
    assert "PSNR >= 40 dB, max|diff| <= 63.8" in tiled and tiled.rstrip(" │").endswith("ok")


def test_rows_sharing_one_bound_have_it_in_the_title_too() -> None:
    report = run_parity(Off("a", 0.0), Off("b", 0.0), _inputs(tiled=False), data_range=255.0, precision="fp16")
    title, *rest = _render(report)
    assert "(fp16: PSNR >= 50 dB, max|diff| <= 5.1)" in title
    assert any("PSNR >= 50 dB, max|diff| <= 5.1" in line for line in rest)


def test_an_int8_table_states_its_psnr_bound_and_no_elementwise_one() -> None:
    report = run_parity(Off("a", 1.0), Off("b", 0.0), _inputs(tiled=True), data_range=255.0, precision="int8")
    text = "\n".join(_render(report))
    assert "(int8: PSNR >= 35 dB)" in text
    assert "max|diff| <=" not in text and "<= 255" not in text
