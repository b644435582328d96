"""The dataset half of the INT8 check: how much Y-PSNR quantisation costs.

Elementwise bounds say little about INT8 SR; what users see is lost detail,
banding and colour shifts, which the dataset PSNR drop and the PSNR between
outputs measure. The reference is the float model (PyTorch or the float
artifact) on the same images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sr_export.bench.evaluate import EvalReport, evaluate
from sr_export.core.model_info import ModelInfo
from sr_export.data.datasets import ImagePair
from sr_export.runtimes.base import Inferring


@dataclass(frozen=True)
class DatasetDrop:
    dataset: str
    reference: EvalReport
    candidate: EvalReport
    max_drop_db: float | None

    @property
    def drop_db(self) -> float:
        return self.reference.mean.psnr_y - self.candidate.mean.psnr_y

    @property
    def passed(self) -> bool:
        return self.max_drop_db is None or self.drop_db <= self.max_drop_db

    def reason(self) -> str:
        if self.passed:
            return ""
        return f"Y-PSNR drop {self.drop_db:.3f} dB > {self.max_drop_db:g} dB on {self.dataset}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "reference_psnr_y": round(self.reference.mean.psnr_y, 4),
            "candidate_psnr_y": round(self.candidate.mean.psnr_y, 4),
            "reference_ssim_y": round(self.reference.mean.ssim_y, 4),
            "candidate_ssim_y": round(self.candidate.mean.ssim_y, 4),
            "drop_db": round(self.drop_db, 4),
            "max_drop_db": self.max_drop_db,
            "passed": self.passed,
        }


def dataset_drop(
    candidate: Inferring,
    reference: Inferring,
    info: ModelInfo,
    pairs: Sequence[ImagePair],
    *,
    dataset: str,
    max_drop_db: float | None,
    progress: Callable[[], Any] | None = None,
) -> DatasetDrop:
    """Y-PSNR of both runners on ``pairs`` and the candidate's loss against the reference."""
    ref = evaluate(reference, info, pairs, dataset=dataset, progress=progress)
    got = evaluate(candidate, info, pairs, dataset=dataset, progress=progress)
    return DatasetDrop(dataset, ref, got, max_drop_db)
