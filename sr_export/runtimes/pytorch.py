"""PyTorch eager execution: the reference every artifact is compared with."""

from __future__ import annotations

import numpy as np
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.loader import LoadedModel
from sr_export.runtimes.base import Runner


class PyTorchRunner(Runner):
    def __init__(self, model: LoadedModel, threads: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.threads = threads
        self.name = "pytorch-eager fp32"
        self.activate()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.model.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise SrExportError(f"{self.model.info.name} failed on a {'x'.join(map(str, batch.shape))} input: {first}") from exc
