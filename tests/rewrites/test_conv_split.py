"""The conv-split rewrite: a conv whose output is split along channels becomes one conv per chunk.

Same outputs (with the official IMDN and IDN weights: bit for bit in
PyTorch), no split left, module paths kept, the caller's model untouched;
anything that is not provably a channel split of one conv's output is left
as it is.
"""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from sr_export.rewrites import apply_rewrites, rewrites_for
from sr_export.rewrites.conv_split import ConvChunks, apply


def splits_left(module: nn.Module) -> int:
    """How many split / chunk calls the module's exported graph still makes."""
    graph = torch.export.export(module, (torch.rand(1, 8, 12, 10),)).graph
    return sum(1 for node in graph.nodes if node.op == "call_function" and "split" in str(node.target))


class Distill(nn.Module):
    """IMDN's pattern: conv, activation, a quarter of the channels split off."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.LeakyReLU(0.05, inplace=True)
        self.c2 = nn.Conv2d(6, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1, r1 = torch.split(self.act(self.c1(x)), (2, 6), dim=1)
        return torch.cat([d1, self.c2(r1)[:, :6]], dim=1)


class Wrapper(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def rewritten_equals_original(block: nn.Module, sites: int) -> Wrapper:
    torch.manual_seed(0)
    model = Wrapper(block).eval()
    x = torch.randn(2, 8, 9, 11)
    expected = model(x)
    assert apply(model) == sites
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)
    return model


def test_a_split_conv_becomes_one_conv_per_chunk_with_the_same_output() -> None:
    model = rewritten_equals_original(Distill(), 1)
    assert isinstance(model.block, fx.GraphModule) and isinstance(model.block.c1, ConvChunks)
    # The chunks keep the conv's path (IMDB1.c1 -> IMDB1.c1.0), so keep_float names still reach them.
    assert {name for name, _ in model.named_modules()} >= {"block.c1.0", "block.c1.1"}
    assert [conv.out_channels for conv in model.block.c1.children()] == [2, 6]
    assert splits_left(model) == 0 and apply(model) == 0  # idempotent


class Variants(nn.Module):
    """Tensor.split by size, torch.chunk, functional activations, and a chunk nobody reads (no conv for it)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(8, 9, 1), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, _, third = nn.functional.leaky_relu(self.a(x), 0.1).relu().split(3, dim=1)
        left, right = torch.chunk(self.b(x), 2, dim=-3)
        return torch.cat([first, third, left * right], dim=1)


def test_split_sizes_chunks_and_activation_chains_are_rewritten() -> None:
    model = rewritten_equals_original(Variants(), 2)
    assert [conv.out_channels for conv in model.block.a.children()] == [3, 3]  # the unread middle chunk is gone
    assert splits_left(model) == 0


class Nested(nn.Module):
    """A site in the module and one in its child."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.c = Distill(), nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.c(self.inner(x)), 4, dim=1)
        return torch.cat([b, a], dim=1)


def test_a_site_inside_a_rewritten_module_is_rewritten_too() -> None:
    model = rewritten_equals_original(Nested(), 2)
    assert isinstance(model.block.c, ConvChunks) and isinstance(model.block.inner.c1, ConvChunks)
    assert splits_left(model) == 0


class NotRewritable(nn.Module):
    """Splits that are not of one conv's own output along channels."""

    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.shared = nn.Conv2d(8, 8, 1)
        self.rows = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g1, g2 = torch.split(self.grouped(x), 4, dim=1)  # grouped conv
        s = self.shared(x)
        s1, s2 = torch.split(s, 4, dim=1)  # the conv's output is read elsewhere too
        top, bottom = torch.split(self.rows(x), (4, 5), dim=2)  # rows, not channels
        return torch.cat([g1 * g2, s1 + s2, s[:, :4]], dim=1) + top.mean() + bottom.mean()


def test_anything_else_is_left_as_it_is() -> None:
    model = rewritten_equals_original(NotRewritable(), 0)
    assert type(model.block) is NotRewritable


# IMDN x2 and IDN x3: the official models other tests load already (the session keeps them).
@pytest.mark.parametrize(("name", "scale", "sites"), [("imdn", 2, 18), ("idn", 3, 4)])
def test_official_zoo_models_are_unchanged_bit_for_bit(official_model, name: str, scale: int, sites: int) -> None:
    model = official_model(name, scale)
    rewritten, applied = apply_rewrites(model.module, "executorch")
    assert applied == [f"conv-split ({sites} sites)"]
    x = torch.rand(1, model.info.in_channels, 24, 20) * model.info.data_range
    with torch.inference_mode():
        assert torch.equal(rewritten(x), model.module(x))
    assert not any(isinstance(m, ConvChunks) for m in model.module.modules())  # the caller's model is untouched


def test_executorch_gets_the_rewrite() -> None:
    assert "conv-split" in rewrites_for("executorch") and "conv-split" not in rewrites_for("tflite")
