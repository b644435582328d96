"""Formats apart from runtimes: what a file is, who it is built for, who can run it; old metadata still reads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from sr_export.core.artifacts import INT8_METADATA_KEY, METADATA_KEY, ArtifactMetadata, read_metadata, sidecar_path
from sr_export.core.errors import SrExportError
from sr_export.core.formats import canonical_format, format_for_suffix
from sr_export.runtimes.registry import runtime_for_artifact, runtimes_reading


def test_old_format_names_read_as_todays() -> None:
    assert canonical_format("engine") == canonical_format("plan") == "tensorrt-engine"
    assert canonical_format("onnx", "int8") == "onnx-qdq" and canonical_format("onnx", "fp16") == "onnx"
    assert format_for_suffix(Path("x.mlpackage")).directory
    with pytest.raises(SrExportError, match="no format sr-export knows has '.bin' files"):
        format_for_suffix(Path("weights.bin"))


def test_a_format_names_the_runtimes_that_run_it() -> None:
    assert runtimes_reading("onnx") == ["onnxruntime"] and runtimes_reading("onnx-qdq") == ["onnxruntime"]
    assert runtimes_reading("tensorrt-engine") == ["tensorrt"] and runtimes_reading("tflite") == ["tflite"]


def test_an_old_tensorrt_flavour_qdq_file_reads_as_built_for_tensorrt(exported_official, tmp_path: Path) -> None:
    proto = onnx.load(str(exported_official("imdn", 2).path))
    props = {p.key: p.value for p in proto.metadata_props}
    old = {**json.loads(props[METADATA_KEY]), "precision": "int8", "backend": "onnxruntime", "format": "onnx"}
    for key in ("runtimes", "flavour"):
        old.pop(key, None)
    del proto.metadata_props[:]
    for key, value in ((METADATA_KEY, json.dumps(old)), (INT8_METADATA_KEY, json.dumps({"flavour": "tensorrt"}))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "old_int8_trt.onnx"
    onnx.save(proto, str(path))
    meta = read_metadata(path)
    assert (meta.format, meta.flavour, meta.backend, meta.runtimes) == ("onnx-qdq", "tensorrt", "tensorrt", ())
    assert runtime_for_artifact(meta).name == "onnxruntime"  # TensorRT builds from it; ONNX Runtime runs it
    assert meta.describe_format() == "onnx-qdq (tensorrt flavour) for tensorrt"


def test_an_old_engine_sidecar_reads_and_a_runtime_that_cannot_run_it_is_named(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine bytes")
    old = ArtifactMetadata("imdn", 2, 3, 1.0, "rgb", backend="tensorrt", precision="fp16").to_dict()
    old.update(format="engine")
    old.pop("runtimes")
    sidecar_path(engine).write_text(json.dumps(old))
    meta = read_metadata(engine)
    assert meta.format == "tensorrt-engine" and runtime_for_artifact(meta).name == "tensorrt"
    with pytest.raises(SrExportError, match="the onnxruntime runtime cannot run tensorrt-engine files; runtimes "
                                            "that can: tensorrt"):
        runtime_for_artifact(replace(meta, runtimes=("tensorrt",)), "onnxruntime")
