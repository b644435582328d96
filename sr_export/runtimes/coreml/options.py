"""How a Core ML program is converted: compute precision, deployment target, sizes, weights, route."""

from __future__ import annotations

from dataclasses import dataclass, field

from sr_export.core.errors import SrExportError
from sr_export.core.sizes import Size, parse_size
from sr_export.runtimes.coreml.sizes import InputSizes

DEPLOYMENT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")
DEFAULT_DEPLOYMENT_TARGET = "iOS17"
ROUTES = ("auto", "export", "trace")


@dataclass(frozen=True)
class CoreMLRuntimeOptions:
    """A profile's ``[options]`` for the coreml runtime (``sr-export coreml`` flags map onto these)."""

    shapes: tuple[str, ...] = ()  # enumerated LR sizes "HxW" (other sizes run in tiles of the first)
    range: str | None = None  # "MINxMIN:MAXxMAX": any LR size in this box (the default: 32x32:1024x1024)
    deployment_target: str = field(default=DEFAULT_DEPLOYMENT_TARGET, metadata={"choices": DEPLOYMENT_TARGETS})
    int8_weights: bool = False  # weights as linear 8-bit integers
    rewrite: bool = True  # the Core ML rewrites (E-RFDN's attention resize as gathers)
    route: str = field(default="auto", metadata={"choices": ROUTES})  # auto: torch.export, then torch.jit.trace
    # The device's OS as its runtime (coreml==iOS15, ios==16, macos==13): sets the deployment target.
    for_runtime: str | None = None

    def target(self) -> str:
        """The deployment target to build for: the device's OS when for_runtime names it."""
        from sr_export.runtimes.coreml.requirements import deployment_target_for

        return deployment_target_for(self.for_runtime) if self.for_runtime else self.deployment_target

    def input_sizes(self, shape: Size | None) -> InputSizes:
        bounds = parse_range(self.range) if self.range else None
        return InputSizes.from_options(shape, tuple(parse_size(s) for s in self.shapes), bounds)


def parse_range(text: str) -> tuple[Size, Size]:
    """'32x32:1080x1920' -> ((32, 32), (1080, 1920))."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise SrExportError(f"a size range is MINxMIN:MAXxMAX (e.g. 32x32:1080x1920), not '{text}'")
    return parse_size(parts[0]), parse_size(parts[1])


@dataclass(frozen=True)
class CoreMLOptions:
    precision: str = "fp16"  # compute precision: fp16 or fp32
    deployment_target: str = DEFAULT_DEPLOYMENT_TARGET
    sizes: InputSizes = field(default_factory=InputSizes.from_options)
    int8_weights: bool = False
    rewrite: bool = True
    route: str = "auto"  # auto: torch.export, then torch.jit.trace
    built_for: str | None = None  # the device runtime named by --for-runtime (recorded in the metadata)

    @property
    def artifact_precision(self) -> str:
        # The parity tolerance follows the coarsest number format in the program.
        return "int8" if self.int8_weights else self.precision
