"""The engine manifest: an engine built elsewhere is refused with a message that says to rebuild."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tensorrt.manifest import (
    EngineManifest,
    Platform,
    check_platform,
    file_sha256,
    manifest_path,
    mismatch,
    read_manifest,
    write_manifest,
)
from sr_export.runtimes.tensorrt.settings import EngineSettings, shape_profile

ORIN = Platform("10.3.0", "Orin", "8.7")


def _manifest(tmp_path: Path) -> EngineManifest:
    onnx = tmp_path / "m_fp16.onnx"
    onnx.write_bytes(b"graph")
    settings = EngineSettings(precision="fp16")
    return EngineManifest(ORIN, "fp16", False, shape_profile(), file_sha256(onnx), str(onnx), "input", "output",
                          settings.to_dict())


def test_manifest_round_trips_beside_the_engine(tmp_path: Path) -> None:
    engine = tmp_path / "m_fp16.engine"
    manifest = _manifest(tmp_path)
    write_manifest(engine, manifest)
    assert manifest_path(engine).name == "m_fp16.engine.manifest.json"
    assert read_manifest(engine) == manifest
    assert manifest.onnx_sha256 == hashlib.sha256(b"graph").hexdigest()


def test_same_platform_passes() -> None:
    assert mismatch(ORIN, Platform("10.3.0", "Orin", "8.7")) is None


@pytest.mark.parametrize(
    ("here", "said"),
    [
        (Platform("11.4.0.106", "Orin", "8.7"), "TensorRT 10.3.0 != 11.4.0.106"),
        (Platform("10.3.0", "NVIDIA GeForce RTX 4090", "8.9"), "compute capability 8.7 != 8.9"),
    ],
)
def test_other_runtime_or_gpu_says_rebuild(tmp_path: Path, here: Platform, said: str) -> None:
    engine = tmp_path / "m_fp16.engine"
    with pytest.raises(SrExportError, match="rebuild it here with sr-export trt --from") as raised:
        check_platform(engine, _manifest(tmp_path), here)
    assert said in str(raised.value)


def test_engine_without_manifest_says_rebuild(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="no manifest.*rebuild"):
        read_manifest(tmp_path / "foreign.engine")


def test_broken_manifest_says_rebuild(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    manifest_path(engine).write_text('{"platform": {}}')
    with pytest.raises(SrExportError, match="not an sr-export engine manifest"):
        read_manifest(engine)
