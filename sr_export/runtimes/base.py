"""The interface every target implements (after Polygraphy's loaders and runners).

A *target* turns a model into whatever its runtime eats and opens such an
artifact as a *runner*. A runner has one method, ``infer(batch) -> output``,
on NCHW float32 arrays in the model's data range. Parity checks,
``sr-bench speed`` and ``sr-bench eval`` only ever see runners, so they work
with any backend.

Targets that compile an ONNX graph (ONNX Runtime, TensorRT) implement
:meth:`Target.build`; targets that convert from PyTorch (TFLite, Core ML)
override :meth:`Target.from_model`, whose default goes through ONNX.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from sr_export.core.artifacts import Artifact

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel


class Runner(Protocol):
    name: str

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch; return the NCHW float32 output."""
        ...


class Target(ABC):
    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]

    @abstractmethod
    def build(
        self,
        onnx_artifact: Artifact,
        output: Path | None,
        *,
        precision: str = "fp32",
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Compile ``onnx_artifact`` for this runtime and return the new artifact.

        ``output`` is the file to write, or a folder to write it in (None: beside
        the ONNX file); ``options`` are the target profile's backend settings.
        """

    def from_model(
        self,
        model: LoadedModel,
        output: Path,
        *,
        precision: str = "fp32",
        shape: tuple[int, int] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Export ``model`` for this runtime into the folder ``output``.

        The default route: a verified ONNX export (dynamic unless ``shape``
        fixes the LR size), written beside, then :meth:`build`.
        """
        from sr_export.export.onnx import ExportOptions, save_export

        exported = save_export(model, ExportOptions(shape=shape), output)
        return self.build(exported, output, precision=precision, options=options)

    @abstractmethod
    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        """Open ``artifact`` for inference (at the sizes the artifact itself takes)."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Runtime versions and device, for reports."""
