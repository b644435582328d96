"""Any image size through an artifact that only takes some sizes.

Edge artifacts are often fixed-size (TFLite, Core ML, TensorRT profiles, graphs
that cannot be dynamic), and some networks only compute on sides that are a
multiple of their window. :func:`adapt_runner` wraps a backend's runner so that
callers (parity, evaluation, speed) can feed any image:

- a fixed-size artifact is run tile by tile: tiles of the artifact's size that
  overlap by ``overlap`` LR pixels of context on each side; each output pixel
  is taken from the tile in which it lies farthest from a cut edge, so for a
  network whose receptive field fits in the overlap the stitched result equals
  the full-image result. Inputs smaller than a tile are padded (reflect) up to
  it and the output cropped.
- a dynamic artifact that needs sides in multiples of N and does not pad by
  itself is fed a reflect-padded input and its output cropped back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sr_export.core.artifacts import ArtifactMetadata
from sr_export.core.errors import SrExportError
from sr_export.core.sizes import round_up
from sr_export.runtimes.base import Inferring, Runner

# Context (LR px per side) when an artifact records no receptive field.
FALLBACK_OVERLAP = 16
# A default overlap never exceeds a quarter of the tile: the stride stays at
# least half a tile, so tiling costs at most ~4x the work of one pass.
DEFAULT_OVERLAP_FRACTION = 4


@dataclass(frozen=True)
class Span:
    """One tile along one axis: where it starts and which input rows it contributes."""

    start: int
    keep_from: int
    keep_to: int


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[Span]:
    """Tiles of size ``tile`` covering ``[0, length)`` with ``overlap`` px of context per side.

    Tile starts are multiples of ``align``; the last tile ends at the image
    border, so ``length - tile`` must be a multiple of ``align`` too (see
    :func:`aligned_length`). An image shorter than one tile is one tile at 0
    (the caller pads).
    """
    overlap = usable_overlap(tile, overlap, align)
    if length <= tile:
        return [Span(0, 0, length)]
    if align > tile:
        # Tiles that start on multiples of ``align`` would leave gaps between them.
        raise SrExportError(f"tiles of {tile} px cannot start on multiples of {align} px (the model's tile alignment) "
                            f"without gaps; use a fixed size of at least {align} px, a multiple of {align}")
    stride = (tile - 2 * overlap) // align * align  # >= align: usable_overlap leaves room for one step
    starts = list(range(0, length - tile, stride)) + [length - tile]
    spans = []
    for index, start in enumerate(starts):
        # Cut halfway through the region two neighbouring tiles share.
        keep_from = 0 if index == 0 else (start + starts[index - 1] + tile) // 2
        keep_to = length if index == len(starts) - 1 else (starts[index + 1] + start + tile) // 2
        if keep_to > keep_from:
            spans.append(Span(start, keep_from, keep_to))
    return spans


def usable_overlap(tile: int, overlap: int, align: int = 1) -> int:
    """The context per side a tile can give: ``overlap``, but at most what leaves a stride of one
    alignment step (``tile - 2 * overlap >= align``), so that every kept pixel really has it."""
    if tile < 1 or align < 1:
        raise SrExportError(f"tile size and alignment must be positive, not {tile} and {align}")
    return max(0, min(overlap, (tile - align) // 2))


def aligned_length(length: int, tile: int, align: int = 1) -> int:
    """The padded length tiled: at least one tile, and a last tile that starts on the alignment."""
    return tile + round_up(max(0, length - tile), align)


def default_overlap(tile_hw: tuple[int, int], metadata: ArtifactMetadata | None) -> int:
    """Context per side from the measured receptive field, capped at a quarter tile."""
    measured = metadata.receptive_field if metadata is not None else None
    wanted = FALLBACK_OVERLAP if measured is None else measured
    cap = min(tile_hw) // DEFAULT_OVERLAP_FRACTION
    return max(0, min(wanted, cap))


def pad_to(batch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad an NCHW batch at the bottom/right up to ``height`` x ``width``."""
    extra_h, extra_w = height - batch.shape[2], width - batch.shape[3]
    if extra_h <= 0 and extra_w <= 0:
        return batch
    mode = "reflect" if min(batch.shape[2:]) > 1 else "edge"  # reflect needs two pixels
    return np.pad(batch, ((0, 0), (0, 0), (0, max(0, extra_h)), (0, max(0, extra_w))), mode=mode)


class WrappingRunner(Runner):
    """A runner that drives another (opened, closed and timed with it)."""

    def __init__(self, inner: Inferring) -> None:
        super().__init__()
        self.inner = inner
        self.is_active = getattr(inner, "is_active", True)
        self.size_bounds = getattr(inner, "size_bounds", None)

    def _activate(self) -> None:
        if isinstance(self.inner, Runner):
            self.inner.activate()

    def _deactivate(self) -> None:
        if isinstance(self.inner, Runner):
            self.inner.deactivate()


class TiledRunner(WrappingRunner):
    """Runs a fixed-size runner over any input, tile by tile."""

    def __init__(self, inner: Inferring, tile_hw: tuple[int, int], scale: int, overlap: int, align: int = 1) -> None:
        if overlap < 0:
            raise SrExportError(f"tile overlap must be 0 or more, not {overlap}")
        super().__init__(inner)
        self.tile_hw = tile_hw
        self.scale = scale
        self.align = max(1, align)
        self.overlap = min(usable_overlap(side, overlap, self.align) for side in tile_hw)
        aligned = f", aligned to {self.align}" if self.align > 1 else ""
        self.name = f"{inner.name} [tiles {tile_hw[0]}x{tile_hw[1]}, overlap {self.overlap}{aligned}]"

    def padded_hw(self, height: int, width: int) -> tuple[int, int]:
        return aligned_length(height, self.tile_hw[0], self.align), aligned_length(width, self.tile_hw[1], self.align)

    def tile_count(self, height: int, width: int) -> int:
        padded_h, padded_w = self.padded_hw(height, width)
        return len(tile_spans(padded_h, self.tile_hw[0], self.overlap, self.align)) * len(
            tile_spans(padded_w, self.tile_hw[1], self.overlap, self.align)
        )

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        tile_h, tile_w = self.tile_hw
        if batch.shape[2:] == (tile_h, tile_w) and batch.shape[0] == 1:
            return self.inner.infer(batch)
        height, width = batch.shape[2:]
        padded_h, padded_w = self.padded_hw(height, width)
        s = self.scale
        rows = tile_spans(padded_h, tile_h, self.overlap, self.align)
        cols = tile_spans(padded_w, tile_w, self.overlap, self.align)
        outputs = []
        for sample in batch:
            padded = pad_to(sample[None], padded_h, padded_w)
            result: np.ndarray | None = None
            for row in rows:
                for col in cols:
                    tile = padded[:, :, row.start : row.start + tile_h, col.start : col.start + tile_w]
                    out = self.inner.infer(np.ascontiguousarray(tile))
                    if result is None:
                        result = np.empty((1, out.shape[1], padded_h * s, padded_w * s), dtype=out.dtype)
                    result[:, :, row.keep_from * s : row.keep_to * s, col.keep_from * s : col.keep_to * s] = out[
                        :, :,
                        (row.keep_from - row.start) * s : (row.keep_to - row.start) * s,
                        (col.keep_from - col.start) * s : (col.keep_to - col.start) * s,
                    ]
            assert result is not None
            outputs.append(result[:, :, : height * s, : width * s])
        return np.concatenate(outputs, axis=0)


class PaddedRunner(WrappingRunner):
    """Feeds a runner inputs padded (reflect) to a multiple of ``multiple``; crops the output back."""

    def __init__(self, inner: Inferring, multiple: int, scale: int) -> None:
        super().__init__(inner)
        self.multiple = multiple
        self.scale = scale
        self.name = f"{inner.name} [padded to x{multiple}]"

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        height, width = batch.shape[2:]
        padded = pad_to(batch, round_up(height, self.multiple), round_up(width, self.multiple))
        out = self.inner.infer(np.ascontiguousarray(padded))
        return out[:, :, : height * self.scale, : width * self.scale]


class SizeSetRunner(WrappingRunner):
    """Sizes a program takes (``accepts``) go straight through; any other runs in tiles of ``tile_hw``.

    For artifacts with a few enumerated input sizes (Core ML's enumerated shapes).
    """

    def __init__(self, inner: Inferring, accepts: Callable[[tuple[int, int]], bool], tile_hw: tuple[int, int],
                 scale: int, overlap: int, align: int = 1) -> None:
        super().__init__(inner)
        self.accepts = accepts
        self.tiled = TiledRunner(inner, tile_hw, scale, overlap, align)
        self.name = inner.name

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.accepts((int(batch.shape[2]), int(batch.shape[3]))):
            return self.inner.infer(batch)
        return self.tiled.infer(batch)


def adapt_runner(runner: Runner, metadata: ArtifactMetadata, *, tile_overlap: int | None = None) -> Runner:
    """``runner`` made to accept any input size its artifact's metadata allows for."""
    static = metadata.static_hw
    if static is not None:
        overlap = default_overlap(static, metadata) if tile_overlap is None else tile_overlap
        return TiledRunner(runner, static, metadata.scale, overlap, align=metadata.tile_alignment)
    if metadata.size_multiple > 1 and not metadata.pads_in_graph:
        return PaddedRunner(runner, metadata.size_multiple, metadata.scale)
    return runner
