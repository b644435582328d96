"""How closely different runtimes' INT8 builds of one model agree, output against output.

Each runtime quantises the same checkpoint from the same calibration
patches, but not necessarily with the same encodings (LiteRT, NNCF and
PT2E calibrate their own tensors) nor the same integer rounding. The
agreement table is the PSNR between every pair of outputs on the same
inputs, FP32 included as a row of its own, so that "INT8 on runtime A
matches INT8 on runtime B to N dB" is a measured statement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Agreement:
    labels: tuple[str, ...]
    psnr: tuple[tuple[float, ...], ...]  # [i][j]: dB between labels i and j over every input, pooled
    worst: tuple[tuple[float, ...], ...]  # [i][j]: dB on the input where i and j differ most
    inputs: int

    def between(self, a: str, b: str) -> float:
        return self.psnr[self.labels.index(a)][self.labels.index(b)]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "labels": list(self.labels),
                "psnr_db": [[_rounded(v) for v in row] for row in self.psnr],
                "worst_input_psnr_db": [[_rounded(v) for v in row] for row in self.worst]}

    def markdown(self) -> str:
        """The pooled matrix as a Markdown table, the worst input's figure in brackets."""
        lines = ["| | " + " | ".join(self.labels) + " |", "|---" * (len(self.labels) + 1) + "|"]
        for i, label in enumerate(self.labels):
            cells = ["-" if i == j else f"{_shown(self.psnr[i][j])} ({_shown(self.worst[i][j])})"
                     for j in range(len(self.labels))]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _rounded(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 2)  # JSON has no infinity: identical outputs are null


def _shown(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.1f}"


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _psnr(mse: float, peak: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def agreement(outputs: Mapping[str, Sequence[np.ndarray]], data_range: float) -> Agreement:
    """Pairwise PSNR between each label's outputs (same inputs, same order), clipped to ``[0, data_range]``.

    Outputs are clipped as a saved image would be; an output with a
    different shape or count from the others is an error, not a silent
    comparison of different things.
    """
    labels = tuple(outputs)
    if len(labels) < 2:
        raise ValueError("agreement needs the outputs of at least two runtimes")
    clipped = {label: [np.clip(np.asarray(o, np.float64), 0.0, data_range) for o in outputs[label]]
               for label in labels}
    counts = {len(v) for v in clipped.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every runtime needs the same, non-zero number of outputs, got {sorted(counts)}")
    for index in range(counts.pop()):
        shapes = {clipped[label][index].shape for label in labels}
        if len(shapes) != 1:
            raise ValueError(f"input {index}: the runtimes' outputs have different shapes {sorted(shapes)}")
    n = len(labels)
    pooled = [[math.inf] * n for _ in range(n)]
    worst = [[math.inf] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            errors = [_mse(a, b) for a, b in zip(clipped[labels[i]], clipped[labels[j]])]
            sizes = [a.size for a in clipped[labels[i]]]
            pooled[i][j] = pooled[j][i] = _psnr(float(np.average(errors, weights=sizes)), data_range)
            worst[i][j] = worst[j][i] = _psnr(max(errors), data_range)
    return Agreement(labels, tuple(map(tuple, pooled)), tuple(map(tuple, worst)), len(clipped[labels[0]]))
