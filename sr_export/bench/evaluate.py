"""Image quality of any runner on a dataset (``sr-bench eval``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.bench.metrics import QualityScores, mean_scores, score
from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo
from sr_export.data.datasets import ImagePair
from sr_export.data.tensors import batch_to_image, image_to_batch
from sr_export.runtimes.base import Inferring


@dataclass(frozen=True)
class ImageScore:
    name: str
    lr_size: tuple[int, int]
    lr_source: str
    scores: QualityScores


@dataclass(frozen=True)
class EvalReport:
    runner: str
    dataset: str
    scale: int
    images: tuple[ImageScore, ...]

    @property
    def mean(self) -> QualityScores:
        return mean_scores([i.scores for i in self.images])

    @property
    def psnr_y(self) -> float:
        """Mean Y-PSNR over the dataset (dB)."""
        return self.mean.psnr_y

    @property
    def ssim_y(self) -> float:
        """Mean Y-SSIM over the dataset."""
        return self.mean.ssim_y

    def to_dict(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "dataset": self.dataset,
            "scale": self.scale,
            "protocol": "uint8 RGB LR -> model -> clamp, round; BT.601 Y (rgb2ycbcr) and RGB; "
            "HR mod-cropped, shave=scale; PSNR peak 255; SSIM gaussian sigma 1.5",
            "mean": self.mean.to_dict(),
            "images": [
                {"name": i.name, "lr_size": list(i.lr_size), "lr_source": i.lr_source, **i.scores.to_dict()}
                for i in self.images
            ],
        }


def super_resolve(runner: Inferring, lr: np.ndarray, info: ModelInfo) -> np.ndarray:
    if min(lr.shape[:2]) < info.min_input_size:
        raise SrExportError(f"{info.name} needs LR images of at least {info.min_input_size} px per side")
    return batch_to_image(runner.infer(image_to_batch(lr, info)), info, lr)


def evaluate(
    runner: Inferring,
    info: ModelInfo,
    pairs: Sequence[ImagePair],
    *,
    dataset: str,
    progress: Callable[[], Any] | None = None,
) -> EvalReport:
    images = []
    for pair in pairs:
        result = super_resolve(runner, pair.lr, info)
        images.append(ImageScore(pair.name, pair.lr.shape[:2], pair.lr_source, score(result, pair.hr, info.scale)))
        if progress is not None:
            progress()
    return EvalReport(runner.name, dataset, info.scale, tuple(images))
