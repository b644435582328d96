"""Targets: runtimes an exported model is built for and run on.

A new target is one module with a :class:`~sr_export.runtimes.base.Target`
subclass plus one line in ``BACKENDS``. Backends are imported only when used,
so a missing runtime package only matters to the target that needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from sr_export.core.artifacts import ArtifactMetadata
from sr_export.core.errors import MissingDependencyError, SrExportError
from sr_export.runtimes.base import Target


@dataclass(frozen=True)
class Backend:
    location: str  # "module:Class" of the Target subclass
    suffixes: tuple[str, ...]  # artifact file suffixes it reads
    extra: str | None = None  # pip extra that installs its runtime


BACKENDS: dict[str, Backend] = {
    "onnxruntime": Backend("sr_export.runtimes.onnxruntime:OnnxRuntimeTarget", (".onnx",)),
    "tensorrt": Backend("sr_export.runtimes.tensorrt:TensorRTTarget", (".engine", ".plan"), "tensorrt"),
    "coreml": Backend("sr_export.runtimes.coreml:CoreMLTarget", (".mlpackage",), extra="coreml"),
    "tflite": Backend("sr_export.runtimes.tflite:TfliteTarget", (".tflite",), extra="tflite"),
}


def get_target(name: str) -> Target:
    if name not in BACKENDS:
        raise SrExportError(f"unknown backend '{name}'; available: {', '.join(sorted(BACKENDS))}")
    backend = BACKENDS[name]
    module_name, class_name = backend.location.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(exc.name or name, backend.extra, purpose=f"the {name} target") from exc
    return getattr(module, class_name)()


def target_for_artifact(metadata: ArtifactMetadata) -> Target:
    return get_target(metadata.backend)




def backend_for_file(path: Path) -> str:
    suffix = path.suffix.lower()
    for name, backend in BACKENDS.items():
        if suffix in backend.suffixes:
            return name
    known = ", ".join(sorted({s for b in BACKENDS.values() for s in b.suffixes}))
    raise SrExportError(f"no target reads '{suffix}' files ({path}); known: {known}")
