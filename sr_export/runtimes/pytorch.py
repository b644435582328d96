"""PyTorch eager execution: the reference every artifact is compared with."""

from __future__ import annotations

import numpy as np
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.loader import LoadedModel


class PyTorchRunner:
    def __init__(self, model: LoadedModel, threads: int | None = None) -> None:
        self.model = model
        self.threads = threads
        self.name = "pytorch-eager fp32"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.model.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise SrExportError(f"{self.model.info.name} failed on a {'x'.join(map(str, batch.shape))} input: {first}") from exc
