"""Artifact formats: what a file *is*, apart from which runtime runs it.

An ONNX file is a format several runtimes can run (ONNX Runtime runs it, TensorRT
builds an engine from it); a TensorRT engine belongs to one. Artifact metadata
records the format, and the runtimes that can run it are those whose plugin
reads that format (:mod:`sr_export.runtimes.registry`).

The formats below are the ones sr-export writes today; a runtime plugin that
brings a format of its own declares it in its descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sr_export.core.errors import SrExportError

# Where formats that embed metadata (ONNX's metadata_props) keep sr-export's.
EMBEDDED_METADATA_KEY = "sr_export"


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  # lower-case file suffixes of the main file (or folder)
    description: str
    directory: bool = False  # the artifact is a folder (a Core ML package)
    companions: tuple[str, ...] = ()  # suffixes of further files that belong to it (same stem)
    embeds_metadata: bool = False  # sr-export metadata inside the file; otherwise a <file>.json sidecar
    # How a file of this format starts: bytes at an offset (TFLite's 'TFL3'), or, for a folder format,
    # a file it always holds. A cheap check that a file is what its suffix says, before a runtime parses it.
    magic: tuple[int, bytes] | None = None
    marker_file: str | None = None

    def looks_like(self, path: Path) -> bool:
        """Whether ``path`` carries this format's signature (True when the format declares none)."""
        if self.directory:
            return path.is_dir() and (self.marker_file is None or (path / self.marker_file).is_file())
        if self.magic is None:
            return True
        offset, expected = self.magic
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(len(expected)) == expected

    def files(self, path: Path) -> tuple[Path, ...]:
        """The main file (or folder) and its companions."""
        return (path, *(path.with_suffix(suffix) for suffix in self.companions))


ONNX = Format("onnx", (".onnx",), "ONNX graph", embeds_metadata=True)
ONNX_QDQ = Format("onnx-qdq", (".onnx",), "ONNX graph with QuantizeLinear/DequantizeLinear pairs (static INT8)",
                  embeds_metadata=True)
TFLITE = Format("tflite", (".tflite",), "TFLite flatbuffer", magic=(4, b"TFL3"))
MLPACKAGE = Format("mlpackage", (".mlpackage",), "Core ML ML Program package", directory=True,
                   marker_file="Manifest.json")
TENSORRT_ENGINE = Format("tensorrt-engine", (".engine", ".plan"), "serialised TensorRT engine")

CORE_FORMATS: dict[str, Format] = {f.name: f for f in (ONNX, ONNX_QDQ, TFLITE, MLPACKAGE, TENSORRT_ENGINE)}

# What metadata written before formats were separated from runtimes called them.
LEGACY_NAMES = {"engine": TENSORRT_ENGINE.name, "plan": TENSORRT_ENGINE.name}

# QDQ flavours: who the quantised graph was made for (see sr_export.quantize.qdq_graph).
QDQ_FLAVOURS = ("onnxruntime", "tensorrt")


def canonical_format(name: str, precision: str = "fp32") -> str:
    """The format name for ``name`` as old metadata wrote it (an INT8 "onnx" is "onnx-qdq")."""
    name = LEGACY_NAMES.get(name, name)
    if name == ONNX.name and precision == "int8":
        return ONNX_QDQ.name
    return name


def format_for_suffix(path: Path, formats: dict[str, Format] | None = None) -> Format:
    """The first format (of ``formats``, default the core ones) whose suffix ``path`` has."""
    known = formats if formats is not None else CORE_FORMATS
    suffix = path.suffix.lower()
    for candidate in known.values():
        if suffix in candidate.suffixes:
            return candidate
    names = ", ".join(sorted({s for f in known.values() for s in f.suffixes}))
    raise SrExportError(f"no format sr-export knows has '{suffix}' files ({path}); known: {names}")
