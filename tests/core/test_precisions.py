"""One list of precisions, and parity bounds for every one of them."""

from __future__ import annotations

from sr_export.core.precisions import PRECISIONS
from sr_export.core.tolerances import TOLERANCES
from sr_export.runtimes.registry import get_runtime, runtime_names


def test_every_precision_has_parity_bounds_and_every_runtime_builds_known_ones() -> None:
    assert set(TOLERANCES) == set(PRECISIONS)
    for name in runtime_names():
        assert set(get_runtime(name).precisions) <= set(PRECISIONS), name


def test_bf16_bounds_sit_between_fp16_and_int8() -> None:
    fp16, bf16, int8 = TOLERANCES["fp16"], TOLERANCES["bf16"], TOLERANCES["int8"]
    assert int8.min_psnr_db < bf16.min_psnr_db < fp16.min_psnr_db
    assert fp16.max_abs_error < bf16.max_abs_error < int8.max_abs_error
