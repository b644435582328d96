"""PNG charts for people who would rather look than read tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sr_export.core.io import atomic_path


def latency_chart(
    groups: Sequence[str], series: Mapping[str, Sequence[float]], path: Path, *, title: str,
    ylabel: str = "median latency (ms)", force: bool = False,
) -> Path:
    """Grouped bars: one group per model/size, one bar per runner."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) + 2), 4.0), dpi=120)
    width = 0.8 / max(1, len(series))
    for index, (label, values) in enumerate(series.items()):
        positions = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = axes.bar(positions, values, width, label=label)
        axes.bar_label(bars, fmt="%.0f", fontsize=7)
    axes.set_xticks(range(len(groups)), groups, fontsize=8)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path, force=force) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path
