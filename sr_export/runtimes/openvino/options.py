"""What an OpenVINO build and its runs take: a profile's ``[options]`` for the openvino runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sr_export.core.errors import SrExportError

PRECISIONS = ("fp32", "bf16", "int8")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
# A device as OpenVINO names it: CPU, GPU, GPU.1, NPU, or a virtual one over a list (AUTO:GPU,CPU, HETERO:...).
_DEVICE = re.compile(r"^(?:[A-Z]+(?:\.\d+)?)(?::[A-Z]+(?:\.\d+)?(?:,[A-Z]+(?:\.\d+)?)*)?$")


@dataclass(frozen=True)
class OpenVinoOptions:
    """``[options]`` of an openvino profile (``--option KEY=VALUE`` on ``sr-export build``).

    The device, streams and hint are compile settings, not part of the IR: the
    build proves the IR on ``device`` and records it, and runs here and on a
    board compile it with the same settings.
    """

    device: str = "CPU"  # CPU | GPU | GPU.<n> | NPU | AUTO (AUTO:GPU,CPU ...); must be present where it runs
    streams: int = 1  # NUM_STREAMS: 1 for one frame at a time; more only pays with parallel requests
    performance_hint: str = field(default="LATENCY", metadata={"choices": PERFORMANCE_HINTS})
    calibration: str = "accuracy"  # INT8: a recipe name in calibration/ or a path to one (needs max_drop)

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise SrExportError(f"options.device is {self.device!r}; an OpenVINO device name such as CPU, GPU, "
                                "GPU.1, NPU or AUTO")
        if not 1 <= self.streams <= 64:
            raise SrExportError(f"options.streams is {self.streams}; a whole number from 1 to 64")
