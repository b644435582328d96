"""The regression gate over every threshold: NaN and infinity refused, the verdict monotone in each bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sr_export.bench.compare import gate, parse_percent
from sr_export.bench.history import RunRecord
from sr_export.core.errors import SrExportError

PROPERTIES = settings(max_examples=60, deadline=None, database=None)

latencies = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)
psnrs = st.floats(5.0, 60.0, allow_nan=False, allow_infinity=False)
thresholds = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def run(median_ms: float, psnr_y: float | None, run_id: int) -> RunRecord:
    return RunRecord.from_dict({"model": "espcn", "scale": 2, "target": "cpu", "id": run_id, "psnr_y": psnr_y,
                                "sizes": [{"input_hw": [64, 64], "inference": {"median_ms": median_ms}}]})


def passes(base: RunRecord, new: RunRecord, max_slowdown: float, max_psnr_drop: float | None) -> bool:
    return gate([base], [new], max_slowdown=max_slowdown, max_psnr_drop=max_psnr_drop).passed


@PROPERTIES
@given(bad=not_finite, good=thresholds)
def test_a_threshold_that_is_not_finite_is_refused(bad: float, good: float) -> None:
    base, new = run(10.0, 30.0, 1), run(790.0, 21.0, 2)  # +7800 % latency, -9 dB: must never pass
    with pytest.raises(SrExportError, match="max slowdown must be a finite number"):
        gate([base], [new], max_slowdown=bad, max_psnr_drop=good)
    with pytest.raises(SrExportError, match="max PSNR drop must be a finite number"):
        gate([base], [new], max_slowdown=good, max_psnr_drop=bad)


@PROPERTIES
@given(bad=st.floats(max_value=-1e-9, allow_nan=False) | not_finite)
def test_a_negative_or_not_finite_percentage_is_refused(bad: float) -> None:
    for text in (f"{bad}%", str(bad)):
        with pytest.raises(SrExportError, match="finite number >= 0"):
            parse_percent(text)


@PROPERTIES
@given(value=thresholds)
def test_a_percentage_reads_as_the_fraction(value: float) -> None:
    assert parse_percent(f"{value!r}%") == pytest.approx(value / 100)
    assert parse_percent(repr(value)) == value


@PROPERTIES
@given(base_ms=latencies, new_ms=latencies, low=thresholds, high=thresholds)
def test_passing_at_a_slowdown_bound_passes_at_every_larger_one(base_ms, new_ms, low, high) -> None:
    low, high = sorted((low, high))
    base, new = run(base_ms, None, 1), run(new_ms, None, 2)
    if passes(base, new, low, None):
        assert passes(base, new, high, None)
    assert passes(base, new, high, None) == (new_ms / base_ms - 1.0 <= high)


@PROPERTIES
@given(base_psnr=psnrs, new_psnr=psnrs, low=thresholds, high=thresholds)
def test_passing_at_a_psnr_drop_bound_passes_at_every_larger_one(base_psnr, new_psnr, low, high) -> None:
    low, high = sorted((low, high))
    base, new = run(10.0, base_psnr, 1), run(10.0, new_psnr, 2)
    if passes(base, new, 0.0, low):
        assert passes(base, new, 0.0, high)
    assert passes(base, new, 0.0, high) == (base_psnr - new_psnr <= high)


def test_compare_cannot_call_an_artifact_identical_or_changed_without_both_hashes() -> None:
    from sr_export.bench.compare import artifact_change

    hashed, unhashed = run(1.0, None, 1), run(1.0, None, 2)
    hashed.artifact_sha256 = "ab" * 32
    change = artifact_change(unhashed, hashed)
    assert change.status == "unknown" and change.to_dict()["rebuilt"] is False
    assert "unknown" in change.describe()
