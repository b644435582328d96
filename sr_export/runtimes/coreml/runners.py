"""Running an ML Program: Core ML's own ``predict`` on macOS, the numpy reference executor elsewhere.

Core ML's ``predict`` exists only on macOS; elsewhere artifacts are run by the
numpy reference executor in :mod:`sr_export.runtimes.coreml.reference`, and
the runner's name says which one ran.
"""

from __future__ import annotations

import sys
from abc import abstractmethod

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.runtimes.base import Runner
from sr_export.runtimes.coreml.convert import INPUT_NAME, OUTPUT_NAME
from sr_export.runtimes.coreml.quiet import import_coremltools, quiet_converter
from sr_export.runtimes.coreml.sizes import InputSizes, program_sizes
from sr_export.runtimes.tiling import SizeSetRunner, default_overlap


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


class CoreMLRunner(Runner):
    """An ML Program at the sizes it takes (one batch item at a time)."""

    sizes: InputSizes

    def __init__(self, artifact: Artifact) -> None:
        super().__init__()
        self.artifact = artifact
        self.activate()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        size = tuple(batch.shape[2:])
        if not self.sizes.accepts(size):  # type: ignore[arg-type]
            raise SrExportError(
                f"the Core ML program takes {self.sizes.describe()}, not {size[0]}x{size[1]}; "
                "open it with sr_export.runtimes.open.open_runner (tiles fixed sizes) or re-export with --range"
            )
        return np.concatenate([self._run(batch[i:i + 1]) for i in range(batch.shape[0])])

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch of a size the program takes."""


class ReferenceRunner(CoreMLRunner):
    """Runs the saved ML Program with the numpy reference executor (any OS)."""

    def _activate(self) -> None:
        from sr_export.runtimes.coreml.reference import MilProgram, load_spec

        self.program = MilProgram.from_package(self.artifact.path)
        self.sizes = program_sizes(load_spec(self.artifact.path))
        self.name = f"coreml-reference-executor (numpy, not Core ML) {self.artifact.metadata.precision}"

    def _deactivate(self) -> None:
        del self.program

    def _run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.program.run({INPUT_NAME: batch})
        return np.asarray(outputs[OUTPUT_NAME], np.float32)


class PredictRunner(CoreMLRunner):
    """Runs the package with Core ML itself (macOS only)."""

    def __init__(self, artifact: Artifact, compute_units: str = "ALL") -> None:
        self.compute_units = compute_units
        super().__init__(artifact)

    def _activate(self) -> None:
        ct = import_coremltools()
        with quiet_converter():
            self.model = ct.models.MLModel(str(self.artifact.path),
                                           compute_units=getattr(ct.ComputeUnit, self.compute_units))
        self.sizes = program_sizes(self.model.get_spec())
        self.name = f"coreml-predict {self.compute_units} {self.artifact.metadata.precision}"

    def _deactivate(self) -> None:
        del self.model

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            result = self.model.predict({INPUT_NAME: np.ascontiguousarray(batch, np.float32)})
        except Exception as exc:
            raise StageFailed("check", f"Core ML predict failed: {first_line(exc)}") from exc
        return np.asarray(result[OUTPUT_NAME], np.float32)


def with_enumerated_tiles(runner: CoreMLRunner) -> Runner:
    """A program with enumerated sizes runs any other size in tiles of its first one (the shared tiling)."""
    if not runner.sizes.enumerated:
        return runner
    tile = runner.sizes.enumerated[0]
    metadata = runner.artifact.metadata
    return SizeSetRunner(runner, runner.sizes.accepts, tile, metadata.scale, default_overlap(tile, metadata),
                         align=metadata.tile_alignment)
