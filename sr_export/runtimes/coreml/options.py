"""How a Core ML program is converted: compute precision, deployment target, sizes, weights, route."""

from __future__ import annotations

from dataclasses import dataclass, field

from sr_export.runtimes.coreml.sizes import InputSizes

DEPLOYMENT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15")


DEFAULT_DEPLOYMENT_TARGET = "iOS17"


ROUTES = ("auto", "export", "trace")


@dataclass(frozen=True)
class CoreMLOptions:
    precision: str = "fp16"  # compute precision: fp16 or fp32
    deployment_target: str = DEFAULT_DEPLOYMENT_TARGET
    sizes: InputSizes = field(default_factory=InputSizes.from_options)
    int8_weights: bool = False
    rewrite: bool = True
    route: str = "auto"  # auto: torch.export, then torch.jit.trace

    @property
    def artifact_precision(self) -> str:
        # The parity tolerance follows the coarsest number format in the program.
        return "int8" if self.int8_weights else self.precision
