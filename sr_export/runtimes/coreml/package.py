"""Writing an ML Program as an ``.mlpackage`` folder (atomically) with its metadata sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sr_export.core.artifacts import Artifact, write_sidecar
from sr_export.runtimes.coreml.convert import ConvertedProgram
from sr_export.runtimes.coreml.quiet import quiet_converter

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel


def package_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def save_program(converted: ConvertedProgram, target: Path) -> None:
    """Write the package itself into ``target`` (a path that does not exist yet)."""
    with quiet_converter():
        converted.mlmodel.save(str(target))


def write_package(converted: ConvertedProgram, output: Path) -> Artifact:
    """Write ``converted`` to ``output`` (.mlpackage) atomically, with its metadata sidecar."""
    from sr_export.core.io import atomic_directory

    with atomic_directory(output) as tmp:
        save_program(converted, tmp)
    write_sidecar(output, converted.metadata)
    return Artifact(output, converted.metadata)


def default_filename(model: LoadedModel, precision: str = "fp16", int8_weights: bool = False) -> str:
    """'erfdn_x4_fp16.mlpackage', 'erfdn_x4.mlpackage' (fp32), 'erfdn_x4_fp16_w8.mlpackage' (8-bit weights): an
    FP32 and an FP16 build of one model never share a name (sr_export.core.naming)."""
    tail = ("" if precision == "fp32" else f"_{precision}") + ("_w8" if int8_weights else "")
    return f"{model.info.name}_x{model.info.scale}{tail}.mlpackage"
