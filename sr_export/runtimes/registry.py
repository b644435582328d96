"""The runtimes sr-export knows: one line each.

A new runtime is one module (or package) with a
:class:`~sr_export.runtimes.base.Runtime` subclass, plus one line in
:data:`RUNTIMES` (or, from another package, an entry point in the
``sr_export.runtimes`` group). Everything else (profiles, suites, the remote
runner, the command line) reads the runtime's descriptor.

Runtime modules are imported only when used; a line names the file suffixes
the runtime opens and its pip extra, so a runtime whose packages are missing
can still be recognised and named in errors.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from sr_export.core.artifacts import ArtifactMetadata
from sr_export.core.errors import MissingDependencyError, SrExportError
from sr_export.core.formats import CORE_FORMATS, Format
from sr_export.runtimes.base import Runtime

ENTRY_POINT_GROUP = "sr_export.runtimes"


@dataclass(frozen=True)
class RuntimeEntry:
    location: str  # "module:Class" of the Runtime subclass
    suffixes: tuple[str, ...]  # files it opens, by suffix (for files that carry no metadata)
    extra: str | None = None  # pip extra that installs what it needs


RUNTIMES: dict[str, RuntimeEntry | type[Runtime]] = {
    "onnxruntime": RuntimeEntry("sr_export.runtimes.onnxruntime:OnnxRuntime", (".onnx",)),
    "tflite": RuntimeEntry("sr_export.runtimes.tflite:TfliteRuntime", (".tflite",), "tflite"),
    "coreml": RuntimeEntry("sr_export.runtimes.coreml:CoreMLRuntime", (".mlpackage",), "coreml"),
    "tensorrt": RuntimeEntry("sr_export.runtimes.tensorrt:TensorRTRuntime", (".engine", ".plan"), "tensorrt"),
    "openvino": RuntimeEntry("sr_export.runtimes.openvino:OpenVinoRuntime", (".xml",), "openvino"),
    "executorch": RuntimeEntry("sr_export.runtimes.executorch:ExecuTorchRuntime", (".pte",), "executorch"),
}


# Listings follow the order the lines above are written in, whatever is added or removed later.
_DECLARED = tuple(RUNTIMES)


def _entries() -> dict[str, RuntimeEntry | type[Runtime]]:
    """:data:`RUNTIMES` plus the runtimes other installed packages register as entry points."""
    declared = sorted(RUNTIMES, key=lambda n: _DECLARED.index(n) if n in _DECLARED else len(_DECLARED))
    found: dict[str, RuntimeEntry | type[Runtime]] = {name: RUNTIMES[name] for name in declared}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, RuntimeEntry(point.value.replace(" ", ""), ()))
    return found


def runtime_names() -> list[str]:
    """The registered runtimes: the built-in ones first, in registry order."""
    return list(_entries())


def get_runtime(name: str) -> Runtime:
    """The runtime ``name``; a missing package behind it is a one-line error naming the extra to install."""
    entries = _entries()
    if name not in entries:
        raise SrExportError(f"unknown backend '{name}' (no runtime of that name); available: {', '.join(entries)}")
    entry = entries[name]
    if not isinstance(entry, RuntimeEntry):
        return entry()
    module_name, class_name = entry.location.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(exc.name or name, entry.extra, purpose=f"the {name} runtime") from exc
    return getattr(module, class_name)()


def extra_of(name: str) -> str | None:
    """The pip extra of runtime ``name``, read without importing it."""
    entry = _entries().get(name)
    return entry.extra if entry is not None else None


def suffixes_of(name: str) -> tuple[str, ...]:
    entry = _entries()[name]
    if isinstance(entry, RuntimeEntry):
        return entry.suffixes
    formats = all_formats()
    return tuple(dict.fromkeys(s for f in entry.reads for s in formats[f].suffixes if f in formats))


def runtime_for_file(path: Path) -> str:
    """The runtime that opens files like ``path`` when nothing else says (a file made by another tool)."""
    suffix = path.suffix.lower()
    for name in runtime_names():
        if suffix in suffixes_of(name):
            return name
    known = ", ".join(sorted({s for n in runtime_names() for s in suffixes_of(n)}))
    raise SrExportError(f"no runtime reads '{suffix}' files ({path}); known: {known}")


def all_formats() -> dict[str, Format]:
    """The core formats and those the installed runtime plugins bring."""
    formats = dict(CORE_FORMATS)
    for name, entry in _entries().items():
        declared = entry.formats if not isinstance(entry, RuntimeEntry) else _declared_formats(name)
        formats.update({f.name: f for f in declared})
    return formats


def _declared_formats(name: str) -> tuple[Format, ...]:
    try:
        return get_runtime(name).formats
    except SrExportError:
        return ()


def runtimes_reading(format_name: str) -> list[str]:
    """Every runtime whose runner opens ``format_name`` files (whether or not its packages are installed)."""
    readers = []
    for name in runtime_names():
        try:
            runtime = get_runtime(name)
        except SrExportError:
            continue
        if format_name in runtime.reads:
            readers.append(name)
    return readers


def runtime_for_artifact(metadata: ArtifactMetadata, requested: str | None = None) -> Runtime:
    """The runtime that runs an artifact: ``requested``, else the one it was built for, else the first that reads it.

    A requested runtime that cannot read the artifact's format is a one-line
    error naming those that can.
    """
    readers = list(dict.fromkeys([*metadata.runtimes, *runtimes_reading(metadata.format)]))
    if requested is not None:
        runtime = get_runtime(requested)
        if metadata.format not in runtime.reads:
            can = ", ".join(readers) or "none installed"
            raise SrExportError(f"the {requested} runtime cannot run {metadata.format} files; runtimes that can: {can}")
        return runtime
    natural = metadata.backend if metadata.backend in readers else (readers[0] if readers else metadata.backend)
    return get_runtime(natural)


def describe_registry() -> list[dict[str, Any]]:
    """One row per runtime for ``sr-export runtimes``: what it consumes, reads, writes, precisions, extra, status."""
    rows = []
    for name in runtime_names():
        try:
            runtime = get_runtime(name)
        except SrExportError as exc:
            rows.append({"name": name, "status": str(exc), "extra": extra_of(name)})
            continue
        missing = runtime.missing_packages()
        rows.append({
            "name": name, "description": runtime.description, "consumes": runtime.consumes,
            "reads": list(runtime.reads), "writes": list(runtime.writes), "precisions": list(runtime.precisions),
            "options": [f for f in runtime.options.__dataclass_fields__], "extra": runtime.extra,
            "device_session": runtime.device_session is not None,
            "status": "ready" if not missing else f"missing {', '.join(missing)} (pip install 'sr-export[{runtime.extra}]')",
        })
    return rows
