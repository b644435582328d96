"""Running an ML Program: Core ML's own ``predict`` on macOS, the numpy reference executor elsewhere.

Core ML's ``predict`` exists only on macOS; elsewhere artifacts are run by the
numpy reference executor in :mod:`sr_export.runtimes.coreml.reference`, and
the runner's name says which one ran.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.runtimes.coreml.convert import INPUT_NAME, OUTPUT_NAME
from sr_export.runtimes.coreml.quiet import import_coremltools, quiet_converter
from sr_export.runtimes.coreml.sizes import InputSizes, program_sizes


def can_predict() -> bool:
    """Whether Core ML itself can run here (macOS with coremltools' native module)."""
    if sys.platform != "darwin":
        return False
    try:
        import_coremltools()
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False
    return True


class _CoreMLRunnerBase(ABC):
    name: str
    sizes: InputSizes
    scale: int

    def infer(self, batch: np.ndarray) -> np.ndarray:
        size = tuple(batch.shape[2:])
        if self.sizes.accepts(size):  # type: ignore[arg-type]
            return np.concatenate([self._run(batch[i:i + 1]) for i in range(batch.shape[0])])
        if self.sizes.enumerated:
            # Any other size runs in tiles of the first enumerated one.
            from sr_export.runtimes.tiling import TiledRunner

            tile = self.sizes.enumerated[0]
            inner = _SizeRestricted(self)
            return TiledRunner(inner, tile, self.scale, self._overlap).infer(batch)
        raise SrExportError(
            f"the Core ML program takes {self.sizes.describe()}, not {size[0]}x{size[1]}; "
            "open it with sr_export.runtimes.open_runner (tiles fixed sizes) or re-export with --range"
        )

    _overlap: int = 8

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch of a size the program takes."""


class _SizeRestricted:
    """The exact-size part of a runner, for TiledRunner to drive."""

    def __init__(self, runner: _CoreMLRunnerBase) -> None:
        self.runner, self.name = runner, runner.name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.runner._run(batch)


class ReferenceRunner(_CoreMLRunnerBase):
    """Runs the saved ML Program with the numpy reference executor (any OS)."""

    def __init__(self, artifact: Artifact) -> None:
        from sr_export.runtimes.coreml.reference import MilProgram, load_spec

        self.program = MilProgram.from_package(artifact.path)
        self.sizes = program_sizes(load_spec(artifact.path))
        self.scale = artifact.metadata.scale
        self._overlap = artifact.metadata.receptive_field or 8
        self.name = f"coreml-reference-executor (numpy, not Core ML) {artifact.metadata.precision}"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.program.run({INPUT_NAME: batch})
        return np.asarray(outputs[OUTPUT_NAME], np.float32)


class PredictRunner(_CoreMLRunnerBase):
    """Runs the package with Core ML itself (macOS only)."""

    def __init__(self, artifact: Artifact, compute_units: str = "ALL") -> None:
        ct = import_coremltools()
        with quiet_converter():
            self.model = ct.models.MLModel(str(artifact.path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.sizes = program_sizes(self.model.get_spec())
        self.scale = artifact.metadata.scale
        self._overlap = artifact.metadata.receptive_field or 8
        self.name = f"coreml-predict {compute_units} {artifact.metadata.precision}"

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            result = self.model.predict({INPUT_NAME: np.ascontiguousarray(batch, np.float32)})
        except Exception as exc:
            raise StageFailed("check", f"Core ML predict failed: {first_line(exc)}") from exc
        return np.asarray(result[OUTPUT_NAME], np.float32)
