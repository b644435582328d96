"""TensorRT calibration caches from sr-export's activation statistics.

TensorRT (implicit quantisation) reads a text cache instead of calibrating
itself: a header ``TRT-<version>-<algorithm>`` (the version as TensorRT's
``NV_TENSORRT_VERSION`` integer, major*10000 + minor*100 + patch since
TensorRT 10, e.g. ``TRT-100300-EntropyCalibration2``) and one line per tensor,
``<tensor name>: <scale>``, where the scale is ``amax / 127`` written as the
8 hex digits of its big-endian IEEE-754 float32. Same ranges as the QDQ
artifacts, so every target agrees on one calibration.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from sr_export.core.errors import SrExportError
from sr_export.core.io import write_text_atomic
from sr_export.quantize.statistics import ActivationStatistics

ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
DEFAULT_TENSORRT_VERSION = "10.0.0"
INT8_MAX = 127.0
# TensorRT drops a tensor whose range is zero; a tiny range keeps the entry meaningful.
_MIN_AMAX = 1e-8


def tensorrt_version_number(version: str) -> int:
    """'10.3.0' (or '10.3.0.26') -> 100300, the integer TensorRT puts in its cache header."""
    parts = str(version).split(".")
    try:
        major, minor, patch = (int(p) for p in (parts + ["0", "0"])[:3])
    except ValueError as exc:
        raise SrExportError(f"TensorRT version '{version}' is not MAJOR.MINOR.PATCH") from exc
    if major < 10:
        raise SrExportError(f"calibration caches are written for TensorRT 10 or later, not {version}")
    return major * 10000 + minor * 100 + patch


def scale_hex(amax: float) -> str:
    """The cache's encoding of one tensor's scale (amax / 127)."""
    return struct.pack(">f", max(float(amax), _MIN_AMAX) / INT8_MAX).hex()


def calibration_cache_text(
    statistics: ActivationStatistics,
    *,
    tensor_names: Sequence[str] | None = None,
    tensorrt_version: str = DEFAULT_TENSORRT_VERSION,
    algorithm: str = "EntropyCalibration2",
) -> str:
    if algorithm not in ALGORITHMS:
        raise SrExportError(f"unknown TensorRT calibration algorithm '{algorithm}'; known: {', '.join(ALGORITHMS)}")
    names = list(tensor_names) if tensor_names is not None else sorted(statistics.ranges)
    missing = [n for n in names if n not in statistics.ranges]
    if missing:
        raise SrExportError(f"no calibration statistics for tensor(s) {', '.join(missing[:5])}")
    lines = [f"TRT-{tensorrt_version_number(tensorrt_version)}-{algorithm}"]
    lines += [f"{name}: {scale_hex(statistics.amax(name))}" for name in names]
    return "\n".join(lines) + "\n"


def write_tensorrt_calibration_cache(
    statistics: ActivationStatistics,
    output: str | Path,
    *,
    tensor_names: Sequence[str] | None = None,
    tensorrt_version: str = DEFAULT_TENSORRT_VERSION,
    algorithm: str = "EntropyCalibration2",
) -> Path:
    """Write the cache for ``statistics`` (all tensors, or ``tensor_names``) to ``output``, atomically."""
    text = calibration_cache_text(statistics, tensor_names=tensor_names, tensorrt_version=tensorrt_version,
                                  algorithm=algorithm)
    return write_text_atomic(output, text)


def read_calibration_cache(path: str | Path) -> tuple[str, dict[str, float]]:
    """(header, tensor -> amax) of a TensorRT calibration cache."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("TRT-"):
        raise SrExportError(f"{path} is not a TensorRT calibration cache (no TRT- header)")
    amax = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        name, _, value = line.rpartition(": ")
        amax[name] = struct.unpack(">f", bytes.fromhex(value.strip()))[0] * INT8_MAX
    return lines[0], amax
