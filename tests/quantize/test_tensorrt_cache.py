"""TensorRT calibration caches: TensorRT 10's text format, from the same statistics."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.quantize.statistics import ActivationStatistics
from sr_export.quantize.tensorrt_cache import (
    read_calibration_cache,
    scale_hex,
    tensorrt_version_number,
    write_tensorrt_calibration_cache,
)


def test_scales_are_amax_over_127_as_big_endian_float_hex() -> None:
    assert scale_hex(127.0) == "3f800000"  # scale 1.0
    assert scale_hex(1.0) == struct.pack(">f", 1 / 127).hex() == "3c010204"
    assert tensorrt_version_number("10.3.0") == 100300
    assert tensorrt_version_number("10.13.2.6") == 101302
    with pytest.raises(SrExportError, match="TensorRT 10 or later"):
        tensorrt_version_number("8.6.1")


def test_cache_file_round_trips_symmetric_ranges(tmp_path: Path) -> None:
    stats = ActivationStatistics({"input": (0.0, 255.0), "/B1/c5/Conv_output_0": (-3.5, 2.0)}, "percentile", "k")
    path = write_tensorrt_calibration_cache(stats, tmp_path / "erfdn.cache", tensorrt_version="10.3.0")
    lines = path.read_text().splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2"
    assert lines[1] == "/B1/c5/Conv_output_0: " + scale_hex(3.5)
    header, amax = read_calibration_cache(path)
    assert header == lines[0]
    assert amax == {"/B1/c5/Conv_output_0": pytest.approx(3.5), "input": pytest.approx(255.0)}
    with pytest.raises(SrExportError, match="no calibration statistics for tensor"):
        write_tensorrt_calibration_cache(stats, tmp_path / "x.cache", tensor_names=["missing"])


def test_cache_of_a_real_calibration_covers_the_graph_input(erfdn_statistics, tmp_path: Path) -> None:
    path = write_tensorrt_calibration_cache(erfdn_statistics, tmp_path / "erfdn.cache")
    _, amax = read_calibration_cache(path)
    assert set(amax) == set(erfdn_statistics.ranges)
    assert 200.0 < amax["input"] <= 255.0
