"""Fixed-size artifacts run any image size: tiles with context, stitched back exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sr_export.core.artifacts import ArtifactMetadata
from sr_export.core.errors import SrExportError
from sr_export.runtimes.tiling import (
    PaddedRunner,
    TiledRunner,
    adapt_runner,
    aligned_length,
    default_overlap,
    tile_spans,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(("length", "tile", "overlap", "align"),
                         [(200, 64, 8, 1), (64, 64, 8, 1), (65, 64, 0, 1), (333, 48, 12, 1), (200, 64, 9, 8)])
def test_spans_cover_every_pixel_exactly_once_with_tiles_inside_the_image(length, tile, overlap, align) -> None:
    padded = aligned_length(length, tile, align)
    spans = tile_spans(padded, tile, overlap, align)
    kept = [i for s in spans for i in range(s.keep_from, s.keep_to)]
    assert kept == list(range(padded))
    assert all(0 <= s.start and s.start + tile <= padded for s in spans)
    assert all(s.start % align == 0 for s in spans)


def test_every_kept_pixel_has_the_overlap_as_context_except_at_the_image_border() -> None:
    spans = tile_spans(500, 64, 16)
    for span in spans:
        assert span.keep_from == 0 or span.keep_from - span.start >= 16
        assert span.keep_to == 500 or span.start + 64 - span.keep_to >= 16


def test_an_image_smaller_than_a_tile_is_one_tile() -> None:
    assert tile_spans(30, 64, 8) == tile_spans(64, 64, 8)[:1] or len(tile_spans(30, 64, 8)) == 1


def test_bad_tiling_settings_are_errors() -> None:
    with pytest.raises(SrExportError, match="positive"):
        tile_spans(100, 0, 4)
    with pytest.raises(SrExportError, match="overlap must be 0 or more"):
        TiledRunner(_FixedSize(_conv_net(2), (32, 32)), (32, 32), 2, -1)


def _conv_net(scale: int, convs: int = 4) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for index in range(convs):
        layers += [nn.Conv2d(3 if index == 0 else 8, 8, 3, padding=1), nn.ReLU()]
    layers += [nn.Conv2d(8, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
    return nn.Sequential(*layers).eval()


@dataclass
class _FixedSize:
    """A runner that, like a fixed-shape engine, refuses every other input size."""

    module: nn.Module
    hw: tuple[int, int]
    name: str = "fixed"
    calls: int = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        assert batch.shape[2:] == self.hw, batch.shape
        self.calls += 1
        with torch.inference_mode():
            return self.module(torch.from_numpy(batch)).numpy()


def _image(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.random((1, 3, height, width), dtype=np.float32)


@pytest.mark.parametrize("size", [(100, 71), (64, 200), (129, 130)])
def test_tiles_with_the_receptive_field_as_overlap_reproduce_the_whole_image(size: tuple[int, int]) -> None:
    net = _conv_net(3)  # five 3x3 convs: 5 px of context per side
    inner = _FixedSize(net, (48, 48))
    tiled = TiledRunner(inner, (48, 48), scale=3, overlap=5)
    whole = _FixedSize(net, size).infer(_image(*size))
    stitched = tiled.infer(_image(*size))
    assert stitched.shape == whole.shape
    np.testing.assert_allclose(stitched, whole, atol=1e-5)
    assert inner.calls == tiled.tile_count(*size) > 1


def test_too_little_overlap_shows_at_the_seams() -> None:
    net = _conv_net(2)
    tiled = TiledRunner(_FixedSize(net, (32, 32)), (32, 32), scale=2, overlap=0)
    whole = _FixedSize(net, (70, 70)).infer(_image(70, 70))
    assert np.abs(tiled.infer(_image(70, 70)) - whole).max() > 1e-3


def test_a_window_model_needs_tiles_aligned_to_its_windows() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("window_attention", FIXTURES / "window_attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.WindowSR(scale=2).eval()
    whole = _FixedSize(net, (90, 75)).infer(_image(90, 75))
    aligned = TiledRunner(_FixedSize(net, (40, 40)), (40, 40), scale=2, overlap=12, align=8)
    unaligned = TiledRunner(_FixedSize(net, (40, 40)), (40, 40), scale=2, overlap=12)
    np.testing.assert_allclose(aligned.infer(_image(90, 75)), whole, atol=1e-5)
    assert np.abs(unaligned.infer(_image(90, 75)) - whole).max() > 1e-3


def test_padded_runner_feeds_multiples_and_crops_back() -> None:
    net = _conv_net(2)
    seen: list[tuple[int, ...]] = []

    class Recording:
        name = "recording"

        def infer(self, batch: np.ndarray) -> np.ndarray:
            seen.append(batch.shape)
            with torch.inference_mode():
                return net(torch.from_numpy(batch)).numpy()

    out = PaddedRunner(Recording(), multiple=16, scale=2).infer(_image(45, 71))
    assert seen == [(1, 3, 48, 80)] and out.shape == (1, 3, 90, 142)


def test_adapt_runner_tiles_fixed_pads_multiples_and_leaves_dynamic_alone() -> None:
    base = dict(model="m", scale=2, in_channels=3, data_range=1.0, color="rgb", format="onnx", backend="onnxruntime",
                precision="fp32")
    runner = _FixedSize(_conv_net(2), (32, 32))
    fixed = ArtifactMetadata(**base, input_shape=(1, 3, 32, 32), receptive_field=40)
    assert isinstance(adapt_runner(runner, fixed), TiledRunner)
    assert adapt_runner(runner, fixed).overlap == 8  # receptive field capped at a quarter tile
    assert adapt_runner(runner, fixed, tile_overlap=3).overlap == 3
    multiple = ArtifactMetadata(**base, input_shape=("batch", 3, "height", "width"), size_multiple=8)
    assert isinstance(adapt_runner(runner, multiple), PaddedRunner)
    dynamic = ArtifactMetadata(**base, input_shape=("batch", 3, "height", "width"))
    assert adapt_runner(runner, dynamic) is runner
    assert default_overlap((64, 64), None) == 16
