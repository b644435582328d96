"""What an ExecuTorch build takes: the LR size range of its dynamic input, the SR rewrites, INT8's recipe."""

from __future__ import annotations

from dataclasses import dataclass

from sr_export.core.errors import SrExportError

PRECISIONS = ("fp32", "int8")
# The LR sides a dynamic program takes unless the profile says otherwise (memory is planned for the largest).
DEFAULT_MIN_SIDE = 32
DEFAULT_MAX_SIDE = 1024


@dataclass(frozen=True)
class ExecuTorchRuntimeOptions:
    """A profile's ``[options]`` for the executorch runtime."""

    min_side: int = DEFAULT_MIN_SIDE  # smallest LR height / width the dynamic program takes
    max_side: int = DEFAULT_MAX_SIDE  # largest; ExecuTorch plans its memory for this size
    # The SR-aware rewrites of sr_export.rewrites registered for "executorch": conv-split (XNNPACK has no
    # split kernel, so IMDN's and IDN's channel splits would run on portable kernels and cut each block into
    # several partitions). What stays portable is the pixel shuffle's two reshapes of symbolic sizes; as
    # depth-to-space (pixel-shuffle-dcr) they stay symbolic, and as a transposed conv XNNPACK runs it slower.
    rewrite: bool = True
    calibration: str = "default"  # INT8: a recipe name in calibration/ or a path to one
    keep_float: tuple[str, ...] = ()  # INT8: more module names (dotted, as in the model) kept in float

    def __post_init__(self) -> None:
        if not 1 <= self.min_side <= self.max_side:
            raise SrExportError(f"options.min_side ({self.min_side}) and options.max_side ({self.max_side}) must "
                                "satisfy 1 <= min_side <= max_side")
