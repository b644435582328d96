"""Tile planning over every image size, tile size, overlap and alignment: the tiles cover each pixel
exactly once, every kept pixel has its context, and a shift-invariant conv net stitched from tiles
equals the net run on the whole image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo, ModelRequest
from sr_export.models.loader import LoadedModel
from sr_export.runtimes.pytorch import PyTorchRunner
from sr_export.runtimes.tiling import TiledRunner, aligned_length, tile_spans, usable_overlap

PLANS = settings(max_examples=200, deadline=None, database=None)
NETS = settings(max_examples=30, deadline=None, database=None)


@st.composite
def plans(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(image length, tile, overlap, alignment), the tile at least one alignment step."""
    align = draw(st.integers(1, 8))
    tile = draw(st.integers(align, 96))
    return draw(st.integers(1, 400)), tile, draw(st.integers(0, 64)), align


@PLANS
@given(plans())
def test_the_kept_parts_of_the_tiles_cover_every_pixel_exactly_once(plan: tuple[int, int, int, int]) -> None:
    length, tile, overlap, align = plan
    padded = aligned_length(length, tile, align)
    spans = tile_spans(padded, tile, overlap, align)
    assert [i for s in spans for i in range(s.keep_from, s.keep_to)] == list(range(padded))
    for span in spans:
        assert span.start % align == 0
        assert 0 <= span.start <= span.keep_from < span.keep_to <= span.start + tile
        assert span.start + tile <= max(padded, tile)


@PLANS
@given(plans())
def test_every_kept_pixel_has_the_overlap_as_context_away_from_the_image_border(plan) -> None:
    length, tile, overlap, align = plan
    padded = aligned_length(length, tile, align)
    context = usable_overlap(tile, overlap, align)
    assert context == min(overlap, (tile - align) // 2)  # all that was asked, as far as the tile allows
    for span in tile_spans(padded, tile, overlap, align):
        assert span.keep_from == 0 or span.keep_from - span.start >= context
        assert span.keep_to == padded or span.start + tile - span.keep_to >= context


@PLANS
@given(tile=st.integers(1, 32), extra=st.integers(1, 8), length=st.integers(1, 200))
def test_tiles_narrower_than_the_alignment_are_refused_not_left_with_gaps(tile: int, extra: int, length: int) -> None:
    align = tile + extra
    padded = aligned_length(length, tile, align)
    if padded <= tile:
        assert len(tile_spans(padded, tile, 4, align)) == 1
        return
    with pytest.raises(SrExportError, match="without gaps"):
        tile_spans(padded, tile, 4, align)


def _tiny_net(scale: int, convs: int, seed: int) -> LoadedModel:
    """``convs`` 3x3 convolutions (zero padded) then a pixel shuffle: each output pixel sees ``convs`` LR
    pixels to each side, and the net is shift-invariant away from the image border."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for index in range(convs - 1):
        layers += [nn.Conv2d(3 if index == 0 else 4, 4, 3, padding=1), nn.ReLU()]
    layers += [nn.Conv2d(3 if convs == 1 else 4, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
    info = ModelInfo(name="tiny", scale=scale)
    return LoadedModel(nn.Sequential(*layers).eval(), info, ModelRequest("tiny", scale=scale))


@st.composite
def tilings(draw: st.DrawFn) -> dict:
    """An image at least one tile in each side, whose tiling needs no padding, and an overlap no smaller
    than the net's reach (which the tile must have room for)."""
    convs, align = draw(st.integers(1, 3)), draw(st.sampled_from([1, 1, 2, 4]))
    tile_h, tile_w = (draw(st.integers(2 * convs + align, 24)) for _ in range(2))
    height = tile_h + align * draw(st.integers(0, 40 // align))
    width = tile_w + align * draw(st.integers(0, 40 // align))
    return {"convs": convs, "align": align, "tile": (tile_h, tile_w), "image": (height, width),
            "overlap": draw(st.integers(convs, convs + 4)), "scale": draw(st.integers(1, 3)),
            "seed": draw(st.integers(0, 2**16))}


@NETS
@given(tilings())
def test_stitched_tiles_equal_the_whole_image_for_a_shift_invariant_net(case: dict) -> None:
    model = _tiny_net(case["scale"], case["convs"], case["seed"])
    whole = PyTorchRunner(model, threads=1)
    tiled = TiledRunner(PyTorchRunner(model, threads=1), case["tile"], case["scale"], case["overlap"],
                        align=case["align"])
    assert tiled.overlap >= case["convs"]  # the tile had room for the context asked
    image = np.random.default_rng(case["seed"]).random((1, 3, *case["image"]), dtype=np.float32)
    expected, stitched = whole.infer(image), tiled.infer(image)
    assert stitched.shape == expected.shape
    np.testing.assert_allclose(stitched, expected, rtol=1e-5, atol=1e-5)
