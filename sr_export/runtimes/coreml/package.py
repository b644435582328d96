"""Writing an ML Program as an ``.mlpackage`` folder (atomically) with its metadata sidecar.

coremltools writes the same program differently each time: its Manifest.json
names the package's items by random UUIDs, and the protobuf maps of
``model.mlmodel`` are serialised in no fixed order. Both are made canonical
(name-derived UUIDs, sorted maps) so that the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sr_export.core.artifacts import Artifact, build_stamp, write_sidecar
from sr_export.runtimes.coreml.convert import ConvertedProgram
from sr_export.runtimes.coreml.quiet import quiet_converter

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel


def package_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# Package item identifiers are derived from this and the item's author and path (uuid5), not drawn at random.
_ITEM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "sr-export:mlpackage-item")


def save_program(converted: ConvertedProgram, target: Path) -> None:
    """Write the package itself into ``target`` (a path that does not exist yet), reproducibly."""
    with quiet_converter():
        converted.mlmodel.save(str(target))
    make_canonical(target)


def make_canonical(package: Path) -> None:
    """Rewrite ``package``'s manifest and model spec in a canonical form (same meaning, fixed bytes)."""
    from sr_export.runtimes.coreml.reference import load_spec, model_file

    spec_path = model_file(package)
    spec_path.write_bytes(load_spec(package).SerializeToString(deterministic=True))
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = manifest.get("itemInfoEntries", {})
    renamed = {key: str(uuid.uuid5(_ITEM_NAMESPACE, f"{item.get('author')}/{item.get('path')}"))
               for key, item in entries.items()}
    manifest["itemInfoEntries"] = {renamed[key]: entries[key] for key in sorted(entries, key=renamed.get)}
    root = manifest.get("rootModelIdentifier")
    if root in renamed:
        manifest["rootModelIdentifier"] = renamed[root]
    manifest_path.write_text(json.dumps(manifest, indent=4) + "\n", encoding="utf-8")


def write_package(converted: ConvertedProgram, output: Path) -> Artifact:
    """Write ``converted`` to ``output`` (.mlpackage) atomically, with its metadata sidecar."""
    from sr_export.core.io import atomic_directory

    with atomic_directory(output) as tmp:
        save_program(converted, tmp)
    metadata = build_stamp(converted.metadata)
    write_sidecar(output, metadata)
    return Artifact(output, metadata)


def default_filename(model: LoadedModel, precision: str = "fp16", int8_weights: bool = False) -> str:
    """'erfdn_x4_fp16.mlpackage', 'erfdn_x4.mlpackage' (fp32), 'erfdn_x4_fp16_w8.mlpackage' (8-bit weights): an
    FP32 and an FP16 build of one model never share a name (sr_export.core.naming)."""
    tail = ("" if precision == "fp32" else f"_{precision}") + ("_w8" if int8_weights else "")
    return f"{model.info.name}_x{model.info.scale}{tail}.mlpackage"
