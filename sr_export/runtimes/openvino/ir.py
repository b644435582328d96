"""An OpenVINO IR (``.xml`` graph + ``.bin`` weights) converted from the proven ONNX export, written atomically.

Why from ONNX and not from the PyTorch module: the ONNX export is already
proven at three sizes with symbolic height and width, and ``convert_model``
on it keeps both dynamic (``[?,3,?,?]``) and the arithmetic as it is (FP32
parity ~127 dB on E-RFDN); converting the module would trace it a second time,
through another exporter, with its own size handling to prove.

The .xml records the .bin's size and sha256 in its rt_info, and the sidecar
(``<name>.xml.json``) records the .xml's hash: a missing, truncated or
swapped .bin is refused where the IR is opened (:func:`.device.check_ir_files`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from sr_export.core.artifacts import Artifact, ArtifactMetadata, write_sidecar
from sr_export.core.errors import SrExportError, WriteFailed, stage
from sr_export.core.formats import Format
from sr_export.core.naming import base_stem, int8_tail
from sr_export.core.provenance import check_output, record_written
from sr_export.runtimes.openvino.device import RT_INFO_SECTION, bin_path, file_sha256

# Names OpenVINO makes up for nodes the source did not name ("Constant_9559", "Reshape_16"): a counter that runs
# over the whole process, so a second conversion in one process would name them differently.
_GENERATED_NAME = re.compile(r"^[A-Za-z]+_\d+$")

OPENVINO_IR = Format("openvino-ir", (".xml",), "OpenVINO IR (.xml graph + .bin weights)", companions=(".bin",))


def default_filename(onnx_path: Path, precision: str, recipe: str | None = None) -> str:
    """``erfdn_x4.xml``, ``erfdn_x4_bf16.xml``, ``erfdn_x4_int8-accuracy.xml``."""
    stem = base_stem(onnx_path.stem)[0]
    tail = "" if precision == "fp32" else int8_tail(recipe) if precision == "int8" else f"_{precision}"
    return f"{stem}{tail}.xml"


def target_path(onnx_path: Path, output: Path | None, precision: str, recipe: str | None = None) -> Path:
    if output is None:
        return onnx_path.parent / default_filename(onnx_path, precision, recipe)
    output = Path(output)
    return output if output.suffix.lower() == ".xml" else output / default_filename(onnx_path, precision, recipe)


def convert_onnx(onnx_path: Path) -> Any:
    """The ONNX file as an ``openvino.Model`` (sizes stay as the file declares them: dynamic H and W)."""
    import openvino as ov

    with stage("convert", f"converting {onnx_path.name} with openvino.convert_model"):
        return ov.convert_model(str(onnx_path))


def canonical_names(model: Any) -> None:
    """Name the nodes OpenVINO named by its process-wide counter after their place in the graph instead: the
    same ONNX file gives the same .xml in any process (names the graph itself gave are kept)."""
    for index, op in enumerate(model.get_ordered_ops()):
        if _GENERATED_NAME.match(op.get_friendly_name()):
            op.set_friendly_name(f"{op.get_type_name()}_{index}")


def write_ir(model: Any, target: Path, metadata: ArtifactMetadata, *, device: str = "CPU",
             force: bool = False) -> Artifact:
    """Write ``model`` as ``target`` (.xml) + its .bin, then the sidecar; nothing is left of a failed write.

    Both files are serialised in a hidden folder beside ``target`` and renamed
    into place, the .bin first: a reader never finds the new .xml without its
    weights. Weights are kept in FP32 (no compression to FP16: parity is FP32's). ``device`` is recorded
    in the .xml: the device the IR is proven on, and compiled for by runners here.
    """
    import openvino as ov

    target = Path(target)
    weights = Path(bin_path(str(target)))
    for path in (target, weights):
        check_output(path, force=force)
    staging = target.parent / f".{target.stem}.{secrets.token_hex(4)}.ir"
    try:
        staging.mkdir(parents=True)
        staged = staging / target.name
        # The .bin's size and hash go into the .xml; serialising again writes the same weights.
        canonical_names(model)
        model.set_rt_info(device, [RT_INFO_SECTION, "device"])
        ov.save_model(model, str(staged), compress_to_fp16=False)
        model.set_rt_info(str(os.path.getsize(bin_path(str(staged)))), [RT_INFO_SECTION, "bin_size"])
        model.set_rt_info(file_sha256(bin_path(str(staged))), [RT_INFO_SECTION, "bin_sha256"])
        ov.save_model(model, str(staged), compress_to_fp16=False)
        os.replace(bin_path(str(staged)), weights)
        record_written(weights)
        os.replace(staged, target)
        record_written(target)
    except OSError as exc:
        raise WriteFailed(target, exc.strerror or str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_sidecar(target, metadata)
    return Artifact(target, metadata)


def ir_metadata(source: ArtifactMetadata, precision: str, notes: tuple[str, ...], verified: tuple[tuple[int, int], ...],
                quantization: dict[str, Any] | None = None) -> ArtifactMetadata:
    """The IR's metadata: the export's, as an openvino-ir file of ``precision`` proven at ``verified``."""
    if source.format != "onnx" or source.precision != "fp32":
        raise SrExportError(f"OpenVINO IRs are built from the FP32 ONNX export; this one is {source.format} "
                            f"{source.precision}")
    return replace(source, format=OPENVINO_IR.name, backend="openvino", runtimes=("openvino",), flavour=None,
                   precision=precision, verified_sizes=verified, notes=(*source.notes, *notes),
                   quantization=quantization or {}, created=None, host=None)
