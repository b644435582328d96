"""The pixel-shuffle rewrite: same outputs, DCR order, rank-4 tensors only, caller's model untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sr_export.rewrites import apply_rewrites
from sr_export.rewrites.pixel_shuffle import DepthToSpaceDCR, apply, crd_to_dcr


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_permuted_conv_plus_dcr_equals_conv_plus_pixel_shuffle(factor: int) -> None:
    torch.manual_seed(factor)
    original = nn.Sequential(nn.Conv2d(8, 3 * factor * factor, 3, padding=1), nn.PixelShuffle(factor)).eval()
    rewritten = copy.deepcopy(original)
    assert apply(rewritten) == 1
    assert isinstance(rewritten[1], DepthToSpaceDCR)
    x = torch.randn(2, 8, 7, 5)
    torch.testing.assert_close(rewritten(x), original(x), rtol=0, atol=1e-6)


def test_dcr_reads_channels_depth_first() -> None:
    # Channel (i*r + j)*C + c lands on pixel (i, j) of output channel c.
    r, c = 2, 3
    x = torch.zeros(1, r * r * c, 1, 1)
    x[0, (1 * r + 0) * c + 2] = 1.0
    y = DepthToSpaceDCR(r)(x)
    assert y.shape == (1, c, 2, 2)
    assert y[0, 2, 1, 0] == 1.0 and y.sum() == 1.0


def test_crd_to_dcr_is_a_permutation() -> None:
    order = crd_to_dcr(3, 4)
    assert sorted(order.tolist()) == list(range(48))
    assert order[:3].tolist() == [0, 16, 32]  # DCR channels 0..2 are pixel (0,0) of channels 0..2


def test_dcr_never_builds_tensors_above_rank_4() -> None:
    graph = torch.export.export(DepthToSpaceDCR(3), (torch.randn(1, 27, 4, 5),)).graph
    ranks = [len(node.meta["val"].shape) for node in graph.nodes if "val" in node.meta and hasattr(node.meta["val"], "shape")]
    assert ranks and max(ranks) == 4


def test_a_shuffle_without_a_conv_in_front_is_left_alone() -> None:
    model = nn.Sequential(nn.ReLU(), nn.PixelShuffle(2))
    assert apply(model) == 0
    assert isinstance(model[1], nn.PixelShuffle)


def test_apply_rewrites_returns_a_copy_and_names_what_it_did(official_model) -> None:
    model = official_model("imdn", 2).module.eval()
    rewritten, applied = apply_rewrites(model, "tflite")
    assert applied == ["pixel-shuffle-dcr (1 site)"]
    assert isinstance(model.upsampler[1], nn.PixelShuffle)  # the caller's module is untouched
    x = torch.rand(1, 3, 20, 24)
    with torch.inference_mode():
        torch.testing.assert_close(rewritten(x), model(x), rtol=0, atol=1e-5)


def test_no_rewrite_hands_back_the_module_itself() -> None:
    model = nn.Sequential(nn.Conv2d(3, 12, 1), nn.PixelShuffle(2))
    same, applied = apply_rewrites(model, "tflite", enabled=False)
    assert same is model and applied == []
