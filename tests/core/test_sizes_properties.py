"""The one size parser, over every size and every text: round trips, bounds, and nothing but SrExportError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sr_export.core.errors import SrExportError
from sr_export.core.sizes import MAX_PIXELS, MAX_SIDE, as_size, hw_text, parse_chw, parse_size, parse_sizes

# No example database: a test run must leave nothing in the working tree.
PROPERTIES = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(1, MAX_SIDE)


def handled(height: int, width: int) -> bool:
    return 1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE and height * width <= MAX_PIXELS


@PROPERTIES
@given(height=sides, width=sides)
def test_every_size_in_bounds_round_trips_through_its_text(height: int, width: int) -> None:
    if not handled(height, width):
        with pytest.raises(SrExportError, match="larger than the largest size sr-export handles"):
            parse_size(hw_text((height, width)))
        return
    assert parse_size(hw_text((height, width))) == (height, width)
    assert parse_size(f"3x{height}x{width}") == (height, width)
    assert parse_size(f" {height} X {width} ") == (height, width)
    assert as_size((height, width)) == as_size(hw_text((height, width))) == (height, width)


@PROPERTIES
@given(height=st.integers(-(10**6), 0), width=st.integers(-(10**6), 10**6))
def test_a_side_below_one_is_refused_as_not_positive(height: int, width: int) -> None:
    for text in (f"{height}x{width}", f"{width}x{height}"):
        with pytest.raises(SrExportError, match="sizes must be positive"):
            parse_size(text)
    with pytest.raises(SrExportError, match="sizes must be positive"):
        as_size((height, width))


@PROPERTIES
@given(height=st.integers(MAX_SIDE + 1, 10**30), width=sides)
def test_a_side_over_the_bound_is_refused_with_the_bound_named(height: int, width: int) -> None:
    for text in (f"{height}x{width}", f"{width}x{height}", f"3x{height}x{width}"):
        with pytest.raises(SrExportError, match=f"H, W <= {MAX_SIDE}"):
            parse_size(text)


@PROPERTIES
@given(side=st.integers(MAX_PIXELS // MAX_SIDE + 1, MAX_SIDE))
def test_an_area_over_the_bound_is_refused_even_when_each_side_is_allowed(side: int) -> None:
    with pytest.raises(SrExportError, match=f"H x W <= {MAX_PIXELS}"):
        parse_size(f"{side}x{MAX_SIDE}")


@PROPERTIES
@given(st.text())
def test_any_text_is_a_size_or_one_sr_export_error(text: str) -> None:
    for parse in (parse_size, parse_sizes, lambda t: parse_chw(t, 3), as_size):
        try:
            parse(text)
        except SrExportError as exc:
            assert str(exc).strip()


@PROPERTIES
@given(st.lists(st.tuples(sides, sides).filter(lambda hw: handled(*hw)), min_size=1, max_size=5))
def test_a_size_list_round_trips(sizes: list[tuple[int, int]]) -> None:
    assert parse_sizes(",".join(hw_text(s) for s in sizes)) == sizes


@pytest.mark.parametrize("text", ["", ",", "32x32,,", ",32x32", "32x32, ,45x71"])
def test_a_size_list_with_an_empty_item_is_refused_not_shortened(text: str) -> None:
    with pytest.raises(SrExportError, match="empty item"):
        parse_sizes(text)


@pytest.mark.parametrize("text", ["1e3x64", "64.0x64", "1_000x64", "0x10x10", "65x3x3"])
def test_numbers_that_are_not_whole_sides_or_sane_channels_are_refused(text: str) -> None:
    with pytest.raises(SrExportError):
        parse_chw(text, 3)


@pytest.mark.parametrize("pair", [(float("nan"), 4), (float("inf"), 4), (2.5, 4), (4,), (4, 4, 4), ("a", 4)])
def test_a_size_pair_from_the_python_api_is_checked_too(pair: tuple) -> None:
    with pytest.raises(SrExportError, match="not a \\(height, width\\) pair"):
        as_size(pair)
