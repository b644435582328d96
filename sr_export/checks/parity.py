"""Parity: run two runners on the same inputs and judge the difference by the
precision's tolerance (:mod:`sr_export.core.tolerances`)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sr_export.core.io import write_text_atomic
from sr_export.core.tolerances import (
    Tolerance,
    format_psnr,
    judge,
    max_abs_bound,
    output_difference,
    tiled_tolerance,
    tolerance_for,
)
from sr_export.data.parity_inputs import ParityInput
from sr_export.runtimes.base import Inferring


@dataclass(frozen=True)
class CaseResult:
    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    max_abs_error: float
    mean_abs_error: float
    psnr_db: float  # math.inf when the outputs are identical
    passed: bool
    reason: str = ""
    tiled: bool = False  # run in tiles by a fixed-size artifact, judged by tiled_tolerance
    # The bound this case was judged by (tiled cases have a looser one than the report's tolerance), in the
    # units of psnr_db and max_abs_error; bound_max_abs_error None: no elementwise bound (INT8).
    bound_min_psnr_db: float | None = None
    bound_max_abs_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # JSON has no infinity: identical outputs get psnr_db null and identical true;
        # errors that could not be measured (shape mismatch) are null too.
        data["psnr_db"] = round(self.psnr_db, 3) if math.isfinite(self.psnr_db) else None
        data["identical"] = self.psnr_db == math.inf
        for key in ("max_abs_error", "mean_abs_error"):
            data[key] = data[key] if math.isfinite(data[key]) else None
        return data


@dataclass(frozen=True)
class ParityReport:
    candidate: str
    reference: str
    precision: str
    data_range: float
    tolerance: Tolerance
    cases: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def worst_psnr_db(self) -> float:
        return min(c.psnr_db for c in self.cases)

    @property
    def worst_max_abs_error(self) -> float:
        return max(c.max_abs_error for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "precision": self.precision,
            "data_range": self.data_range,
            "tolerance": asdict(self.tolerance),
            "tiled_tolerance": asdict(tiled_tolerance(self.tolerance)),
            "passed": self.passed,
            "cases": [c.to_dict() for c in self.cases],
        }

    def write_junit(self, path: str | Path, *, force: bool = False) -> None:
        suite = ET.Element(
            "testsuite",
            name=f"sr-export parity: {self.candidate} vs {self.reference}",
            tests=str(len(self.cases)),
            failures=str(sum(not c.passed for c in self.cases)),
        )
        for case in self.cases:
            element = ET.SubElement(suite, "testcase", classname="sr_export.parity", name=case.name)
            summary = (
                f"max|diff| {case.max_abs_error:.3g}, mean|diff| {case.mean_abs_error:.3g}, "
                f"PSNR {format_psnr(case.psnr_db)} dB"
            )
            if case.passed:
                ET.SubElement(element, "system-out").text = summary
            else:
                ET.SubElement(element, "failure", message=case.reason).text = summary
        ET.indent(suite)
        write_text_atomic(path, ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n", force=force)


def run_parity(
    candidate: Inferring,
    reference: Inferring,
    inputs: Sequence[ParityInput],
    *,
    data_range: float,
    precision: str = "fp32",
    tolerance: Tolerance | None = None,
    progress: Any = None,
) -> ParityReport:
    tolerance = tolerance or tolerance_for(precision)
    cases = []
    for case in inputs:
        got, want = candidate.infer(case.batch), reference.infer(case.batch)
        bound = tiled_tolerance(tolerance) if case.tiled else tolerance
        bounds = {"bound_min_psnr_db": bound.min_psnr_db, "bound_max_abs_error": max_abs_bound(bound, data_range)}
        if got.shape != want.shape:
            cases.append(
                CaseResult(case.name, case.batch.shape, got.shape, math.inf, math.inf, -math.inf, False,
                           f"output shape {got.shape} != reference {want.shape}", case.tiled, **bounds)
            )
        else:
            max_abs, mean_abs, psnr = output_difference(got, want, data_range)
            reason = judge(max_abs, psnr, data_range, bound)
            cases.append(CaseResult(case.name, case.batch.shape, got.shape, max_abs, mean_abs, psnr, not reason,
                                    reason, case.tiled, **bounds))
        if progress is not None:
            progress()
    return ParityReport(candidate.name, reference.name, precision, data_range, tolerance, tuple(cases))


def tiling_measurement(report: ParityReport) -> dict[str, Any]:
    """What the tiled cases of ``report`` measured: a fixed-size artifact's stitched tiles against the whole-image
    reference, on real images larger than its tile ({} when nothing ran tiled).

    "exact" when the worst tiled case is within the precision's own (untiled) bound, i.e. tiling adds no error
    that the precision does not; otherwise "approximate" with the figures. Rounded, so the artifact that
    carries it stays byte-identical across rebuilds.
    """
    tiled = [case for case in report.cases if case.tiled and math.isfinite(case.max_abs_error)]
    if not tiled:
        return {}
    worst = min(tiled, key=lambda case: (case.psnr_db, -case.max_abs_error))
    bound = report.tolerance
    exact = worst.psnr_db >= bound.min_psnr_db and worst.max_abs_error <= bound.max_abs_error * report.data_range
    return {
        "verdict": "exact" if exact else "approximate",
        "psnr_db": round(worst.psnr_db, 1) if math.isfinite(worst.psnr_db) else None,  # None: identical
        "max_abs_error": float(f"{worst.max_abs_error:.3g}"),
        "data_range": report.data_range,
        "precision": report.precision,
        "images": [case.name for case in tiled],
    }

