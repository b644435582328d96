"""FP16-typed ONNX with FP32 inputs and outputs.

TensorRT 11 builds strongly typed networks only: a layer runs in FP16 because
its tensors are FP16 in the ONNX graph, not because a builder flag allows it.
This module makes that graph (weights and activations FP16, casts at the
input and output so callers keep feeding FP32) and keeps the few operators
whose FP16 arithmetic loses too much in FP32. The result is an ordinary ONNX
file, so ONNX Runtime on the CPU proves its parity before any GPU sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sr_export.core.artifacts import Artifact, build_stamp, embed_in_onnx
from sr_export.core.errors import MissingDependencyError, StageFailed
from sr_export.export.onnx_versions import lower_ir_version, requirements

# Kept in FP32. The contrast (standard deviation) branch of IMDN/RFDN channel
# attention squares activations and averages them over the whole image: in
# FP16 the squares overflow on bright 0..255 inputs and the mean of many
# small terms loses its low bits. Resize is interpolation arithmetic the
# converter itself never lowers (and ORT's CPU has no FP16 kernel for it).
KEEP_FLOAT_OPS: tuple[str, ...] = ("Pow", "Sqrt", "ReduceMean", "Resize")


def convert_fp16(proto: Any, keep_float: Sequence[str] = KEEP_FLOAT_OPS) -> Any:
    """An FP16 copy of the FP32 ``onnx.ModelProto`` ``proto``; its graph inputs and outputs stay FP32."""
    try:
        from onnxconverter_common import float16
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("onnxconverter-common", "tensorrt", purpose="FP16 ONNX conversion") from exc

    block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(keep_float))
    try:
        # max_finite_val: weights beyond FP16's range would become inf; clamp at
        # its largest finite value instead of the converter's 1e4 default.
        return float16.convert_float_to_float16(
            proto, keep_io_types=True, op_block_list=block, max_finite_val=65504.0
        )
    except Exception as exc:
        raise StageFailed("convert", f"FP16 conversion of the ONNX graph failed: {exc}") from exc


def fp16_filename(onnx_path: Path) -> str:
    return f"{onnx_path.stem}_fp16.onnx"


def save_fp16(onnx_artifact: Artifact, output: Path, keep_float: Sequence[str] = KEEP_FLOAT_OPS,
              backend: str | None = None) -> Artifact:
    """Write the FP16 version of ``onnx_artifact`` to ``output`` (atomically); its metadata says fp16
    (and, given ``backend``, the runtime it is made for)."""
    import onnx

    from sr_export.core.io import atomic_path

    meta = onnx_artifact.metadata
    if meta.precision != "fp32":
        raise StageFailed("convert", f"{onnx_artifact.path.name} is {meta.precision}, not an FP32 graph", exit_code=2)
    proto = convert_fp16(onnx.load(str(onnx_artifact.path)), keep_float)
    kept = ", ".join(keep_float) or "none"
    lower_ir_version(proto)
    metadata = replace(meta, precision="fp16", backend=backend or meta.backend, runtime_requirements=requirements(proto),
                       notes=(*meta.notes, f"FP16 graph, FP32 inputs/outputs; operators kept in FP32: {kept}"))
    embed_in_onnx(proto, metadata)
    with atomic_path(output) as tmp:
        onnx.save(proto, str(tmp))
    return Artifact(Path(output), build_stamp(metadata))
