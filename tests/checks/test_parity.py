"""Parity verdicts: error measures, tolerances per precision, reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_export.checks.parity import run_parity
from sr_export.core.errors import SrExportError
from sr_export.core.tolerances import TOLERANCES, judge, output_difference, tolerance_for
from sr_export.data.parity_inputs import ParityInput, builtin_parity_inputs
from sr_export.models.loader import ModelInfo


class Scaled:
    """A runner computing a fixed function, for checking the checker itself."""

    def __init__(self, name: str, factor: float, upscale: int = 2) -> None:
        self.name, self.factor, self.upscale = name, factor, upscale

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(batch, self.upscale, 2), self.upscale, 3) * self.factor


def test_output_difference_uses_the_data_range_as_peak() -> None:
    a = np.zeros((1, 1, 10, 10))
    b = a.copy()
    b[0, 0, 0, 0] = 2.55  # MSE = 2.55^2 / 100
    max_abs, mean_abs, psnr = output_difference(b, a, 255.0)
    assert (max_abs, mean_abs) == (pytest.approx(2.55), pytest.approx(0.0255))
    assert psnr == pytest.approx(10 * math.log10(255**2 / (2.55**2 / 100)))
    assert output_difference(a, a, 1.0)[2] == math.inf


def test_tolerances_are_ordered_by_precision() -> None:
    fp32, fp16, int8 = (TOLERANCES[p] for p in ("fp32", "fp16", "int8"))
    assert fp32.min_psnr_db == 80.0
    assert fp32.min_psnr_db > fp16.min_psnr_db > int8.min_psnr_db
    assert fp32.max_abs_error < fp16.max_abs_error < int8.max_abs_error
    with pytest.raises(SrExportError, match="no parity tolerance for precision 'int4'"):
        tolerance_for("int4")


def test_judge_names_every_violated_bound() -> None:
    assert judge(1e-6, 120.0, 1.0, TOLERANCES["fp32"]) == ""
    reason = judge(0.5, 20.0, 1.0, TOLERANCES["fp32"])
    assert "PSNR 20.0 dB < 80 dB" in reason and "max|diff| 0.5 > 0.001" in reason


def test_run_parity_passes_identical_and_fails_different_runners() -> None:
    info = ModelInfo("toy", 2)
    inputs = builtin_parity_inputs(info)
    same = run_parity(Scaled("a", 1.0), Scaled("b", 1.0), inputs, data_range=1.0)
    assert same.passed and all(math.isinf(c.psnr_db) for c in same.cases)
    assert all(c.to_dict()["identical"] and c.to_dict()["psnr_db"] is None for c in same.cases)
    off = run_parity(Scaled("a", 1.001), Scaled("b", 1.0), inputs, data_range=1.0)
    assert not off.passed
    fp16 = run_parity(Scaled("a", 1.001), Scaled("b", 1.0), inputs, data_range=1.0, precision="fp16")
    assert fp16.passed  # 0.1% gain error is fine for FP16, not for FP32


def test_shape_mismatch_is_a_failed_case_not_a_crash() -> None:
    report = run_parity(Scaled("a", 1.0, upscale=3), Scaled("b", 1.0), [ParityInput("x", np.zeros((1, 3, 8, 8), np.float32))],
                        data_range=1.0)
    assert not report.passed and "output shape" in report.cases[0].reason
    assert report.to_dict()["cases"][0]["max_abs_error"] is None


def test_builtin_inputs_are_real_photos_at_the_requested_sizes() -> None:
    info = ModelInfo("toy", 4, data_range=255.0)
    inputs = builtin_parity_inputs(info)
    assert [c.hw for c in inputs] == [(64, 64), (64, 64), (45, 71), (45, 71)]
    for case in inputs:
        assert case.batch.dtype == np.float32 and case.batch.max() <= 255.0
        assert case.batch.std() > 10  # natural images, not a flat field
    with pytest.raises(SrExportError, match="needs inputs of at least 15x15"):
        builtin_parity_inputs(ModelInfo("esa", 4, min_input_size=15), sizes=[(8, 8)])


def _tiled_and_whole(info: ModelInfo) -> list[ParityInput]:
    whole = builtin_parity_inputs(info, sizes=[(24, 24)])[0]
    return [whole, ParityInput(f"{whole.name}-tiles", whole.batch, tiled=True)]


def test_each_case_carries_the_bound_it_was_judged_by_and_the_json_keeps_its_old_keys() -> None:
    inputs = _tiled_and_whole(ModelInfo("toy", 2))
    report = run_parity(Scaled("a", 1.0), Scaled("b", 1.0), inputs, data_range=255.0)
    whole, tiled = report.cases
    assert (whole.bound_min_psnr_db, whole.bound_max_abs_error) == (80.0, pytest.approx(0.255))
    assert (tiled.bound_min_psnr_db, tiled.bound_max_abs_error) == (40.0, pytest.approx(63.75))
    data = report.to_dict()
    assert {"candidate", "reference", "precision", "data_range", "tolerance", "tiled_tolerance", "passed"} <= set(data)
    assert data["tolerance"]["max_abs_error"] == 1e-3  # still a fraction of the data range, as before
    case = data["cases"][1]
    assert {"name", "max_abs_error", "psnr_db", "passed", "reason", "tiled", "identical"} <= set(case)
    assert case["bound_min_psnr_db"] == 40.0 and case["bound_max_abs_error"] == pytest.approx(63.75)


def test_an_int8_case_has_no_elementwise_bound() -> None:
    inputs = builtin_parity_inputs(ModelInfo("toy", 2), sizes=[(24, 24)])
    report = run_parity(Scaled("a", 1.0), Scaled("b", 1.0), inputs, data_range=255.0, precision="int8")
    assert report.to_dict()["cases"][0]["bound_max_abs_error"] is None
    assert report.cases[0].bound_min_psnr_db == 35.0
