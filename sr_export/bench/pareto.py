"""The Pareto front of (latency, drop) points: what `sr-bench tune` and the INT8 frontier both draw."""

from __future__ import annotations

from collections.abc import Sequence


def non_dominated(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, loss) points no other point matches or beats on both and beats on one."""
    return [i for i, (cost, loss) in enumerate(points)
            if not any(c <= cost and lo <= loss and (c, lo) != (cost, loss) for c, lo in points)]
