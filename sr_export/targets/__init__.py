"""Targets: runtimes an exported model is built for and run on.

A new target is one module with a :class:`~sr_export.targets.base.Target`
subclass plus one line in ``BACKENDS``. Backends are imported only when used,
so a missing runtime package only matters to the target that needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from sr_export.artifacts import Artifact, ArtifactMetadata
from sr_export.errors import MissingDependencyError, SrExportError
from sr_export.targets.base import Runner, Target


@dataclass(frozen=True)
class Backend:
    location: str  # "module:Class" of the Target subclass
    suffixes: tuple[str, ...]  # artifact file suffixes it reads
    extra: str | None = None  # pip extra that installs its runtime


BACKENDS: dict[str, Backend] = {
    "onnxruntime": Backend("sr_export.targets.onnxruntime:OnnxRuntimeTarget", (".onnx",)),
    "tensorrt": Backend("sr_export.targets.tensorrt:TensorRTTarget", (".engine", ".plan"), "tensorrt"),
    "coreml": Backend("sr_export.targets.coreml:CoreMLTarget", (".mlpackage",), extra="coreml"),
    "tflite": Backend("sr_export.targets.tflite:TfliteTarget", (".tflite",), extra="tflite"),
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


def open_runner(artifact: Artifact, *, threads: int | None = None, tile_overlap: int | None = None) -> Runner:
    """A runner for any artifact, whichever backend built it, that takes any input size.

    Fixed-size artifacts are run tile by tile (``tile_overlap`` LR pixels of
    context per side; default from the artifact's receptive field), and
    artifacts that need sides in multiples of N get padded inputs; see
    :mod:`sr_export.targets.tiling`.
    """
    from sr_export.targets.tiling import adapt_runner

    runner = target_for_artifact(artifact.metadata).load(artifact, threads=threads)
    return adapt_runner(runner, artifact.metadata, tile_overlap=tile_overlap)


def backend_for_file(path: Path) -> str:
    suffix = path.suffix.lower()
    for name, backend in BACKENDS.items():
        if suffix in backend.suffixes:
            return name
    known = ", ".join(sorted({s for b in BACKENDS.values() for s in b.suffixes}))
    raise SrExportError(f"no target reads '{suffix}' files ({path}); known: {known}")
