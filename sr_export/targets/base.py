"""The interface every target implements (after Polygraphy's loaders and runners).

A *target* turns an exported ONNX artifact into whatever its runtime eats
(``build``), and opens an artifact as a *runner* (``load``). A runner has one
method, ``infer(batch) -> output``, on NCHW float32 arrays in the model's data
range. Parity checks, ``sr-bench speed`` and ``sr-bench eval`` only ever see
runners, so they work with any backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from sr_export.artifacts import Artifact


class Runner(Protocol):
    name: str

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch; return the NCHW float32 output."""
        ...


class Target(ABC):
    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]

    @abstractmethod
    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32") -> Artifact:
        """Compile ``onnx_artifact`` for this runtime and return the new artifact."""

    @abstractmethod
    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        """Open ``artifact`` for inference."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Runtime versions and device, for reports."""
