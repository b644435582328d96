"""trtexec, for devices where TensorRT's command-line tools are all there is (Jetson images).

The same :class:`~sr_export.runtimes.tensorrt.settings.EngineSettings` that
drive the Python API build give the trtexec argument list, and trtexec's
"Performance summary" is parsed into numbers (throughput, latency
percentiles, host-to-device / GPU compute / device-to-host times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tensorrt.settings import EngineSettings


def _dims(batch: int, channels: int, hw: tuple[int, int]) -> str:
    return f"{batch}x{channels}x{hw[0]}x{hw[1]}"


def build_command(
    onnx: Path,
    engine: Path,
    settings: EngineSettings,
    *,
    input_name: str = "input",
    channels: int = 3,
    tensorrt_major: int = 10,
    trtexec: str = "trtexec",
) -> list[str]:
    """The trtexec argument list that builds ``engine`` from the prepared ``onnx`` like ``sr-export trt`` does."""
    low, best, high = settings.profile.min, settings.profile.opt, settings.profile.max
    command = [
        trtexec, f"--onnx={onnx}", f"--saveEngine={engine}",
        f"--minShapes={input_name}:{_dims(1, channels, low)}",
        f"--optShapes={input_name}:{_dims(1, channels, best)}",
        f"--maxShapes={input_name}:{_dims(1, channels, high)}",
        f"--memPoolSize=workspace:{settings.workspace_mb}M",
    ]
    if settings.timing_cache is not None:
        command.append(f"--timingCacheFile={settings.timing_cache}")
    if settings.builder_optimization_level is not None:
        command.append(f"--builderOptimizationLevel={settings.builder_optimization_level}")
    if tensorrt_major >= 11:
        # Precision is in the graph (FP16-typed or QDQ); TensorRT 11 has no precision flags.
        if settings.calibrator != "none":
            raise SrExportError("TensorRT 11 has no implicit calibrators; build INT8 from a QDQ ONNX")
        command.append("--stronglyTyped")
        return command
    if settings.precision in ("fp16", "int8"):
        command.append("--fp16")
    if settings.precision == "int8":
        command.append("--int8")
    return command


def calibration_cache_argument(cache: Path) -> str:
    """TensorRT 10's trtexec reads (never writes) an implicit calibration cache made by the Python API."""
    return f"--calib={cache}"


def benchmark_command(
    engine: Path,
    hw: tuple[int, int],
    *,
    input_name: str = "input",
    channels: int = 3,
    warmup_ms: int = 500,
    iterations: int = 100,
    trtexec: str = "trtexec",
) -> list[str]:
    """trtexec timing ``engine`` at one LR size: ``iterations`` runs after ``warmup_ms`` of warm-up."""
    return [
        trtexec, f"--loadEngine={engine}", f"--shapes={input_name}:{_dims(1, channels, hw)}",
        f"--warmUp={warmup_ms}", f"--iterations={iterations}", "--duration=0", "--useSpinWait",
    ]


@dataclass(frozen=True)
class TimingStats:
    """One timing line of the summary, in milliseconds."""

    min: float
    max: float
    mean: float
    median: float
    percentiles: dict[float, float] = field(default_factory=dict)  # 99.0 -> ms

    def to_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "median": self.median,
                "percentiles": {f"{p:g}": v for p, v in self.percentiles.items()}}


@dataclass(frozen=True)
class TrtexecReport:
    throughput_qps: float
    timings: dict[str, TimingStats]  # "latency", "enqueue", "h2d", "gpu_compute", "d2h", "end_to_end"
    host_walltime_s: float | None = None
    gpu_compute_total_s: float | None = None
    tensorrt_version: str | None = None

    @property
    def gpu_compute(self) -> TimingStats:
        return self.timings["gpu_compute"]

    def to_dict(self) -> dict[str, Any]:
        return {"throughput_qps": self.throughput_qps,
                "timings": {k: v.to_dict() for k, v in self.timings.items()},
                "host_walltime_s": self.host_walltime_s, "gpu_compute_total_s": self.gpu_compute_total_s,
                "tensorrt_version": self.tensorrt_version}


_TIMING_LINES = {
    "Latency": "latency",
    "End-to-End Host Latency": "end_to_end",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "GPU Compute Time": "gpu_compute",
    "D2H Latency": "d2h",
}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_PREFIX = r"^(?:\[[^\]]*\]\s*)*"  # "[10/03/2024-10:47:59] [I] "
_TIMING = re.compile(_PREFIX + r"(" + "|".join(map(re.escape, _TIMING_LINES)) + r"): (min = .*)$")
_FIELD = re.compile(r"(min|max|mean|median|percentile\(" + _NUMBER + r"%\)) = " + _NUMBER + r" ms")
_THROUGHPUT = re.compile(_PREFIX + r"Throughput: " + _NUMBER + r" qps")
_TOTAL = re.compile(_PREFIX + r"Total (Host Walltime|GPU Compute Time): " + _NUMBER + r" s")
_VERSION = re.compile(r"\[TensorRT v(\d+)\]")


def _version(code: str) -> str:
    """trtexec's version code: 100300 -> 10.3.0 (TensorRT >= 10), 8601 -> 8.6.1, 8400 -> 8.4.0."""
    number = int(code)
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def parse_report(text: str) -> TrtexecReport:
    """Numbers from trtexec's '=== Performance summary ===' (TensorRT 7.2 to 10 wording)."""
    throughput = None
    timings: dict[str, TimingStats] = {}
    totals: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if (match := _THROUGHPUT.match(line)) is not None:
            throughput = float(match.group(1))
        elif (match := _TIMING.match(line)) is not None:
            fields: dict[str, float] = {}
            percentiles: dict[float, float] = {}
            for name, percent, value in _FIELD.findall(match.group(2)):
                if percent:
                    percentiles[float(percent)] = float(value)
                else:
                    fields[name] = float(value)
            if {"min", "max", "mean", "median"} <= set(fields):
                timings[_TIMING_LINES[match.group(1)]] = TimingStats(
                    fields["min"], fields["max"], fields["mean"], fields["median"], percentiles)
        elif (match := _TOTAL.match(line)) is not None:
            totals[match.group(1)] = float(match.group(2))
    if throughput is None or "gpu_compute" not in timings:
        raise SrExportError("no trtexec performance summary found (expected 'Throughput: ... qps' and "
                            "'GPU Compute Time: min = ...'); was trtexec run with --loadEngine or --onnx to the end?")
    version = _VERSION.search(text)
    return TrtexecReport(
        throughput_qps=throughput,
        timings=timings,
        host_walltime_s=totals.get("Host Walltime"),
        gpu_compute_total_s=totals.get("GPU Compute Time"),
        tensorrt_version=_version(version.group(1)) if version else None,
    )
