"""Core ML rewrites change how a model is spelled, never what it computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_export.models.blocks import EnhancedSpatialAttention
from sr_export.models.loader import ModelRequest, load_model
from sr_export.rewrites.coreml import GatherResizeESA, resize_bilinear_like, rewrite_for_coreml


@pytest.mark.parametrize(("source", "target"), [((3, 3), (32, 32)), ((2, 5), (17, 40)), ((9, 8), (9, 8)), ((1, 1), (4, 7))])
def test_gather_resize_equals_interpolate(source, target) -> None:
    m = torch.randn(2, 5, *source)
    want = F.interpolate(m, size=target, mode="bilinear", align_corners=False)
    got = resize_bilinear_like(m, torch.empty(1, 1, *target))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_erfdn_rewrite_replaces_every_esa_and_keeps_outputs() -> None:
    model = load_model(ModelRequest("erfdn", scale=2, kwargs={"channels": 16}))
    rewritten, applied = rewrite_for_coreml(model.module)
    blocks = [m for m in model.module.modules() if type(m) is EnhancedSpatialAttention]
    assert blocks and len([m for m in rewritten.modules() if isinstance(m, GatherResizeESA)]) == len(blocks)
    assert applied == [f"attention resize to the input size as gathers ({len(blocks)} ESA blocks)"]
    assert not any(isinstance(m, GatherResizeESA) for m in model.module.modules())  # the original is untouched
    with torch.inference_mode():
        for size in ((15, 15), (24, 37), (64, 48)):
            x = torch.rand(1, 3, *size)
            torch.testing.assert_close(rewritten(x), model.module(x), rtol=1e-5, atol=1e-5)


def test_models_without_attention_resizes_are_left_alone() -> None:
    model = load_model(ModelRequest("imdn", scale=2, kwargs={"channels": 16}))
    rewritten, applied = rewrite_for_coreml(model.module)
    assert rewritten is model.module and applied == []
