"""Running a ``.pte`` program here: the device session in-process, sizes outside its bounds refused in one line."""

from __future__ import annotations

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, first_line
from sr_export.core.sizes import Size
from sr_export.runtimes.base import Runner
from sr_export.runtimes.executorch.device import ExecuTorchSession
from sr_export.runtimes.tiling import SizeSetRunner, default_overlap


class ExecuTorchRunner(Runner):
    """A dynamic program takes any LR size within its bounds (:attr:`size_bounds`); a fixed one, its own."""

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        super().__init__()
        self.artifact = artifact
        self.threads = threads
        self.activate()
        self.name = f"executorch-xnnpack {artifact.metadata.precision}"

    def _activate(self) -> None:
        meta = self.artifact.metadata
        low, high = bounds_of(meta.input_shape)
        try:
            self._session = ExecuTorchSession(self.artifact.path, self.threads, smallest=low, largest=high)
        except Exception as exc:  # the runtime's loader refuses a damaged file with its own exception types
            raise SrExportError(f"ExecuTorch cannot load {self.artifact.path}: {first_line(exc)}; "
                                "damaged? re-export it") from exc
        self.size_bounds = (self._session.smallest, self._session.largest)

    def _deactivate(self) -> None:
        del self._session

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        problem = self._session.fits(int(batch.shape[2]), int(batch.shape[3]))
        if problem:
            raise SrExportError(f"{self.artifact.path.name}: {problem}")
        return self._session.infer(batch)


def with_tiles_beyond_bounds(runner: ExecuTorchRunner) -> Runner:
    """A dynamic program runs sizes within its bounds whole and larger ones in tiles of its largest size
    (the shared tiling); a fixed-size one is tiled by :func:`sr_export.runtimes.open.open_runner` already."""
    metadata = runner.artifact.metadata
    if metadata.static_hw is not None or runner.size_bounds is None:
        return runner
    smallest, largest = runner.size_bounds
    if min(largest) < max(smallest):  # tiles must themselves fit
        return runner

    def accepts(hw: tuple[int, int]) -> bool:
        return hw[0] <= largest[0] and hw[1] <= largest[1]

    return SizeSetRunner(runner, accepts, largest, metadata.scale, default_overlap(largest, metadata),
                         align=metadata.tile_alignment)


def dynamic_dim(name: str, low: int, high: int) -> str:
    """How a bounded dynamic side is written in ``ArtifactMetadata.input_shape``: 'height:32..1024'."""
    return f"{name}:{low}..{high}"


def bounds_of(input_shape: tuple[int | str, ...]) -> tuple[Size | None, Size | None]:
    """(smallest, largest) LR size an artifact takes: its fixed size, else the bounds its dynamic dims record
    (None: unknown; the program's own planned size is then the largest)."""
    sides = input_shape[2:4] if len(input_shape) == 4 else ()
    if sides and all(isinstance(d, int) for d in sides):
        fixed = (int(sides[0]), int(sides[1]))
        return fixed, fixed
    spans = [str(dim).partition(":")[2].partition("..") for dim in sides]
    if len(spans) == 2 and all(sep and low.isdigit() and high.isdigit() for low, sep, high in spans):
        return (int(spans[0][0]), int(spans[1][0])), (int(spans[0][2]), int(spans[1][2]))
    return None, None
