"""The manifest beside every TensorRT engine, and the check that an engine fits this machine.

A serialised engine only runs on the TensorRT release and the GPU
architecture it was built for; a mismatch shows up as a deserialisation
failure or, worse, as an engine that runs slowly or wrongly. The manifest
(``model.engine.manifest.json``) records what the engine was built with, so
loading it elsewhere fails with a message that says to rebuild.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.core.io import content_sha256, write_json_atomic
from sr_export.runtimes.tensorrt.settings import ShapeProfile

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Platform:
    """Where an engine is built or run."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.6"


@dataclass(frozen=True)
class EngineManifest:
    platform: Platform
    precision: str
    strongly_typed: bool
    profile: ShapeProfile
    onnx_sha256: str
    onnx_file: str
    input_name: str
    output_name: str
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineManifest:
        return cls(
            platform=Platform(**data["platform"]),
            precision=data["precision"],
            strongly_typed=bool(data["strongly_typed"]),
            profile=ShapeProfile.from_dict(data["profile"]),
            onnx_sha256=data["onnx_sha256"],
            onnx_file=data["onnx_file"],
            input_name=data["input_name"],
            output_name=data["output_name"],
            settings=dict(data.get("settings", {})),
        )


def manifest_path(engine: Path) -> Path:
    return engine.with_name(engine.name + MANIFEST_SUFFIX)


def write_manifest(engine: Path, manifest: EngineManifest) -> Path:
    return write_json_atomic(manifest_path(engine), manifest.to_dict())


def read_manifest(engine: Path) -> EngineManifest:
    path = manifest_path(engine)
    if not path.is_file():
        raise SrExportError(f"{engine} has no manifest ({path.name}); rebuild it with sr-export trt")
    try:
        return EngineManifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise SrExportError(f"{path} is not an sr-export engine manifest ({type(exc).__name__}); "
                            "rebuild the engine with sr-export trt") from exc


def mismatch(built: Platform, here: Platform) -> str | None:
    """Why an engine built on ``built`` cannot run ``here``, or None when it can."""
    differences = []
    if built.tensorrt_version != here.tensorrt_version:
        differences.append(f"TensorRT {built.tensorrt_version} != {here.tensorrt_version} here")
    if built.compute_capability != here.compute_capability:
        differences.append(f"compute capability {built.compute_capability} != {here.compute_capability} here")
    if built.gpu_name != here.gpu_name:
        differences.append(f"GPU '{built.gpu_name}' != '{here.gpu_name}' here")
    return "; ".join(differences) or None


def check_platform(engine: Path, manifest: EngineManifest, here: Platform) -> None:
    problem = mismatch(manifest.platform, here)
    if problem:
        raise SrExportError(f"{engine.name} was built for another platform ({problem}); rebuild it here with "
                            f"sr-export trt --from {manifest.onnx_file}")


def file_sha256(path: Path) -> str:
    return content_sha256(path)
