"""PNG charts for people who would rather look than read tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
    return _save(plt, figure, path, force)


def pareto_chart(points: Sequence[tuple[str, float, float, bool, bool]], path: Path, *, max_drop: float,
                 title: str, xlabel: str, force: bool = False, bound: str = "budget") -> Path:
    """Quality drop against latency: ``points`` are (label, latency_ms, drop_db, on_front, chosen); the front is
    joined by a line, the budget is a dashed line and the choice is ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 4.4), dpi=120)
    for label, latency, drop, on_front, chosen in points:
        axes.scatter([latency], [drop], s=60 if on_front else 30, color="C0" if on_front else "C7", zorder=3)
        if chosen:
            axes.scatter([latency], [drop], s=220, facecolors="none", edgecolors="C3", linewidths=2, zorder=4)
        axes.annotate(label, (latency, drop), textcoords="offset points", xytext=(5, 4), fontsize=7)
    front = sorted((latency, drop) for _, latency, drop, on_front, _ in points if on_front)
    if len(front) > 1:
        axes.plot([p[0] for p in front], [p[1] for p in front], color="C0", alpha=0.6, zorder=2)
    axes.axhline(max_drop, color="C3", linestyle="--", linewidth=1, label=f"{bound} {max_drop:g} dB")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("Y-PSNR drop vs FP32 PyTorch (dB)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(plt, figure, path, force)


def _save(plt: Any, figure: Any, path: Path, force: bool) -> Path:
    """Write ``figure`` as a PNG at ``path`` (atomically) and release it."""
    figure.tight_layout()
    with atomic_path(path, force=force) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path
