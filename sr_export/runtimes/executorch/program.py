"""A ``.pte`` file: its format, its name, and writing it (atomically, with its metadata sidecar)."""

from __future__ import annotations

from pathlib import Path

from sr_export.core.artifacts import Artifact, ArtifactMetadata, build_stamp, write_sidecar
from sr_export.core.formats import Format
from sr_export.core.io import atomic_path
from sr_export.core.naming import int8_tail
from sr_export.core.sizes import Size

# ExecuTorch's flatbuffer identifier ("ET12" in 1.x) sits at byte 4; only its "ET" prefix is checked, so a
# later schema version still reads.
PTE = Format("pte", (".pte",), "ExecuTorch program", magic=(4, b"ET"))


def default_filename(model_name: str, scale: int, shape: Size | None, precision: str,
                     recipe: str | None = None) -> str:
    """'imdn_x4.pte' (dynamic), 'imdn_x4_64x64.pte' (fixed), '..._int8-default.pte' (INT8)."""
    size = f"_{shape[0]}x{shape[1]}" if shape is not None else ""
    tail = int8_tail(recipe) if precision == "int8" else ""
    return f"{model_name}_x{scale}{size}{tail}.pte"


def write_program(buffer: bytes, metadata: ArtifactMetadata, path: Path) -> Artifact:
    """Write the program (atomically: a temporary file renamed into place) and its sidecar."""
    stamped = build_stamp(metadata)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer)
        write_sidecar(path, stamped, content=tmp)
    return Artifact(path, stamped)
