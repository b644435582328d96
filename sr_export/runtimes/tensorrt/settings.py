"""What a TensorRT engine is built with: precision, the input-shape profile, workspace, caches.

Pure data, no TensorRT: the same settings drive the Python API build
(:mod:`sr_export.runtimes.tensorrt`) and the trtexec command line
(:mod:`sr_export.runtimes.tensorrt.trtexec`), and come from a target profile's
``[options]`` table or from ``sr-export trt`` flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.core.sizes import hw_text, parse_size
from sr_export.runtimes.options import parse_options

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATORS = ("none", "entropy")  # entropy: TensorRT 10's implicit IInt8EntropyCalibrator2

# LR sizes SR needs: small tiles and test images (Set5 x4 has 57 px sides) up to a 720p frame (x2 -> 1440p, x4 -> 2880p).
DEFAULT_MIN = (32, 32)
DEFAULT_OPT = (360, 640)
DEFAULT_MAX = (720, 1280)
# Activation memory grows with the largest profile shape; an engine for bigger
# frames is built with tiles (--shape) instead.
MAX_SIDE = 2160
DEFAULT_WORKSPACE_MB = 2048



@dataclass(frozen=True)
class TensorRTRuntimeOptions:
    """A profile's ``[options]`` for the tensorrt runtime (``sr-export trt`` flags map onto these)."""

    shape: str | None = None  # one fixed LR size "HxW"
    min_shape: str | None = None  # the shape profile: smallest, tuned-for and largest LR size
    opt_shape: str | None = None
    max_shape: str | None = None
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: str | None = None  # kernel timings reused across builds
    calibrator: str = field(default="none", metadata={"choices": CALIBRATORS})  # "entropy": TensorRT 10 only
    calibration: str | None = None  # INT8: a recipe; without one, INT8 is built from a QDQ ONNX given
    builder_optimization_level: int | None = None


@dataclass(frozen=True)
class ShapeProfile:
    """LR input sizes (height, width) an engine accepts: any size between ``min`` and ``max``, tuned for ``opt``."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    @property
    def static(self) -> bool:
        return self.min == self.opt == self.max

    def contains(self, hw: tuple[int, int]) -> bool:
        return all(lo <= v <= hi for lo, v, hi in zip(self.min, hw, self.max))

    def nchw(self, batch: int, channels: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return tuple((batch, channels, *hw) for hw in (self.min, self.opt, self.max))  # type: ignore[return-value]

    def describe(self) -> str:
        if self.static:
            return hw_text(self.opt)
        return f"{hw_text(self.min)}..{hw_text(self.max)} (opt {hw_text(self.opt)})"

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShapeProfile:
        return cls(*(tuple(int(v) for v in data[k]) for k in ("min", "opt", "max")))  # type: ignore[arg-type]


def shape_profile(
    *,
    shape: tuple[int, int] | None = None,
    min: tuple[int, int] | None = None,  # noqa: A002 - the names users type
    opt: tuple[int, int] | None = None,
    max: tuple[int, int] | None = None,  # noqa: A002
    min_input_size: int = 1,
) -> ShapeProfile:
    """A bounded profile: one fixed ``shape``, or min/opt/max (missing ones from the video defaults)."""
    if shape is not None:
        if any(v is not None for v in (min, opt, max)):
            raise SrExportError("give either --shape or --min/--opt/--max, not both")
        profile = ShapeProfile(shape, shape, shape)
    else:
        low, high = min or DEFAULT_MIN, max or DEFAULT_MAX
        _check_min_max(low, high, min_given=min is not None, max_given=max is not None)
        middle = opt or tuple(sorted((lo, d, hi))[1] for lo, d, hi in zip(low, DEFAULT_OPT, high))
        profile = ShapeProfile(low, middle, high)  # type: ignore[arg-type]
    _check_profile(profile, min_input_size)
    return profile


def _check_min_max(low: tuple[int, int], high: tuple[int, int], *, min_given: bool, max_given: bool) -> None:
    """min <= max, in the words of the flags the user gave (the default opt is derived from both, so an
    inverted pair must not be reported as a bad --opt)."""
    if all(lo <= hi for lo, hi in zip(low, high)):
        return
    if min_given and max_given:
        raise SrExportError(f"--min {hw_text(low)} is larger than --max {hw_text(high)} in height or width; "
                            "a shape profile needs min <= max")
    if min_given:
        raise SrExportError(f"--min {hw_text(low)} is larger than the default --max {hw_text(high)} in height or "
                            "width; give --max too")
    raise SrExportError(f"--max {hw_text(high)} is smaller than the default --min {hw_text(low)} in height or width; "
                        "give --min too")


def _check_profile(profile: ShapeProfile, min_input_size: int) -> None:
    for a, b, names in ((profile.min, profile.opt, "min <= opt"), (profile.opt, profile.max, "opt <= max")):
        if not all(x <= y for x, y in zip(a, b)):
            raise SrExportError(f"--opt {hw_text(profile.opt)} is not between --min {hw_text(profile.min)} and "
                                f"--max {hw_text(profile.max)} in height or width (a shape profile needs {names})")
    if min(profile.min) < min_input_size:
        raise SrExportError(f"the model needs inputs of at least {min_input_size}x{min_input_size}, "
                            f"not {hw_text(profile.min)}")
    if max(profile.max) > MAX_SIDE:
        raise SrExportError(f"profile maximum {hw_text(profile.max)} exceeds {MAX_SIDE} px per side; "
                            "build for tiles (e.g. --max 720x1280) and let sr-export tile bigger frames")


@dataclass(frozen=True)
class EngineSettings:
    precision: str = "fp32"
    profile: ShapeProfile = ShapeProfile(DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None
    calibrator: str = "none"  # "entropy": TensorRT 10 implicit calibration of the FP32 graph
    calibration: str | None = None  # recipe name or path, for --int8 --calib
    builder_optimization_level: int | None = None  # TensorRT's default (3) when None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SrExportError(f"TensorRT precision must be one of {', '.join(PRECISIONS)}, not '{self.precision}'")
        if self.calibrator not in CALIBRATORS:
            raise SrExportError(f"calibrator must be one of {', '.join(CALIBRATORS)}, not '{self.calibrator}'")
        if self.calibrator != "none" and self.precision != "int8":
            raise SrExportError("a calibrator only applies to --int8")
        if self.workspace_mb < 16:
            raise SrExportError(f"workspace {self.workspace_mb} MB is too small; give at least 16 MB")
        level = self.builder_optimization_level
        if level is not None and not 0 <= level <= 5:
            raise SrExportError(f"builder_optimization_level must be 0..5, not {level}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "profile": self.profile.to_dict(),
            "workspace_mb": self.workspace_mb,
            "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "calibrator": self.calibrator,
            "calibration": self.calibration,
            "builder_optimization_level": self.builder_optimization_level,
        }


def settings_from_options(
    options: Mapping[str, Any] | TensorRTRuntimeOptions | None, precision: str = "fp32", *, min_input_size: int = 1
) -> EngineSettings:
    """EngineSettings from a target profile's ``[options]`` (a table or the typed options); unknown keys are errors."""
    if not isinstance(options, TensorRTRuntimeOptions):
        options = parse_options(TensorRTRuntimeOptions, options, runtime="TensorRT")

    def size(text: str | None) -> tuple[int, int] | None:
        return parse_size(text) if text is not None else None

    profile = shape_profile(shape=size(options.shape), min=size(options.min_shape), opt=size(options.opt_shape),
                            max=size(options.max_shape), min_input_size=min_input_size)
    return EngineSettings(
        precision=precision,
        profile=profile,
        workspace_mb=options.workspace_mb,
        timing_cache=Path(options.timing_cache).expanduser() if options.timing_cache else None,
        calibrator=options.calibrator,
        calibration=options.calibration,
        builder_optimization_level=options.builder_optimization_level,
    )


def with_overrides(settings: EngineSettings, **changes: Any) -> EngineSettings:
    """``settings`` with the given fields replaced; None leaves a field as it is."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
