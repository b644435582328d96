"""What a check reports: the verdict a CI job reads is the whole check's, not the parity half's."""

from __future__ import annotations

from pathlib import Path

from sr_export.bench.checking import CheckReport
from sr_export.bench.evaluate import EvalReport, ImageScore
from sr_export.bench.metrics import QualityScores
from sr_export.bench.quality_drop import DatasetDrop
from sr_export.checks.parity import CaseResult, ParityReport
from sr_export.core.tolerances import tolerance_for


def _evaluated(psnr_y: float) -> EvalReport:
    scores = QualityScores(psnr_y=psnr_y, ssim_y=0.95, psnr_rgb=psnr_y - 1, ssim_rgb=0.94)
    return EvalReport("runner", "builtin", 2, (ImageScore("astronaut", (64, 64), "builtin", scores),))


def _int8_report(candidate_psnr_y: float) -> CheckReport:
    case = CaseResult("astronaut-64x64", (1, 3, 64, 64), (1, 3, 128, 128), 9.0, 0.5, 44.0, True)
    parity = ParityReport("int8.tflite", "pytorch", "int8", 1.0, tolerance_for("int8"), (case,))
    return CheckReport(Path("int8.tflite"), parity, DatasetDrop("builtin", _evaluated(36.0), _evaluated(candidate_psnr_y),
                                                                0.3))


def test_an_int8_file_within_parity_but_over_its_drop_bound_reports_failed() -> None:
    data = _int8_report(35.6).to_dict()
    assert data["passed"] is False and data["parity_passed"] is True and data["dataset_drop"]["passed"] is False
    assert "drop 0.400 dB > 0.3 dB" in _int8_report(35.6).failure()


def test_an_int8_file_within_both_bounds_reports_passed() -> None:
    data = _int8_report(35.8).to_dict()
    assert data["passed"] is True and data["parity_passed"] is True
