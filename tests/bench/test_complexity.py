"""The AIM 2020 / NTIRE 2022 counter reproduces the published figures to the digit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sr_export.bench.complexity import count_aim

# ../shared/reference/numbers.md, "AIM 2020 / NTIRE 2022 complexity metrics".
PUBLISHED = {
    ("erfdn", 4): (433_448, 27_102_622_560, 112_034_240, 64),
    ("imdn", 4): (715_176, 46_598_720_536, 122_683_800, 46),
    ("imdn", 2): (694_404, 45_239_766_040, 120_324_504, 46),
}


@pytest.mark.parametrize(("name", "scale"), sorted(PUBLISHED))
def test_official_models_match_the_challenge_table(official_model, name: str, scale: int) -> None:
    count = count_aim(official_model(name, scale).module, (1, 3, 256, 256))
    assert (count.params, count.flops, count.activations, count.conv_count) == PUBLISHED[(name, scale)]


def test_definition_on_a_hand_counted_network() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),            # 3*3*3*8 * 10*12 MACs, 8*120 activations
        nn.LeakyReLU(0.05),                        # 8*120 ops
        nn.Conv2d(8, 8, 3, padding=1, groups=4),   # 3*3*8*8/4 * 120
        nn.Sigmoid(),                              # not counted
        nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1),  # 4*4*8*2 * 20*24
    )
    count = count_aim(net, (1, 3, 10, 12))
    assert count.flops == 27 * 8 * 120 + 8 * 120 + 9 * 16 * 120 + 16 * 16 * 480
    assert count.activations == 8 * 120 + 8 * 120 + 2 * 480
    assert count.conv_count == 3
    assert count.params == sum(p.numel() for p in net.parameters())


def test_functional_convs_are_invisible_to_the_challenge_counter() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 3, 3, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.conv2d(x, self.weight, padding=1)

    count = count_aim(Functional(), (1, 3, 8, 8))
    assert (count.flops, count.conv_count, count.params) == (0, 0, 108)


def test_a_reused_activation_module_counts_every_call() -> None:
    class Reuse(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.conv(self.act(x)))

    count = count_aim(Reuse(), (1, 2, 5, 5))
    assert count.flops == 2 * 50 + 4 * 25  # two ReLU calls + the 1x1 conv
