"""The ONNX graph a TensorRT engine is built from, prepared for its precision on the CPU.

TensorRT 11 networks are strongly typed: FP16 comes from an FP16-typed ONNX
and INT8 from explicit QuantizeLinear/DequantizeLinear pairs. TensorRT 10
builds the same graphs (with its precision flags set), and additionally the
plain FP32 graph with an implicit calibrator. Every graph prepared here is an
ordinary ONNX file whose parity ONNX Runtime proves before a GPU is needed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.formats import ONNX_QDQ
from sr_export.core.naming import base_stem
from sr_export.runtimes.tensorrt.settings import EngineSettings

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def qdq_problems(proto: Any) -> list[str]:
    """Why TensorRT's ONNX parser would reject or mis-build this QDQ graph (empty: it fits).

    TensorRT takes symmetric signed INT8 only (zero points 0, int8), and
    quantises a bias itself: a DequantizeLinear feeding a Conv's bias input
    is rejected.
    """
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    problems = []
    quantize_nodes = [n for n in proto.graph.node if n.op_type in QDQ_OPS]
    if not quantize_nodes:
        return ["the graph has no QuantizeLinear/DequantizeLinear nodes (not an explicitly quantised ONNX)"]
    for node in quantize_nodes:
        if len(node.input) < 3 or not node.input[2]:
            continue  # no zero point: uint8 by the ONNX default
        zero = inits.get(node.input[2])
        if zero is None:
            continue
        if zero.data_type != TensorProto.INT8:
            problems.append(f"{node.name or node.op_type}: zero point is {TensorProto.DataType.Name(zero.data_type)}, "
                            "TensorRT needs INT8 (quantise with activation and weight type QInt8)")
        elif numpy_helper.to_array(zero).any():
            problems.append(f"{node.name or node.op_type}: non-zero zero point; TensorRT needs symmetric quantisation")
    for node in quantize_nodes:
        if len(node.input) < 3 or not node.input[2]:
            problems.append(f"{node.name or node.op_type}: no zero point, which means UINT8; TensorRT needs INT8")
            break
    producers = {out: n for n in proto.graph.node for out in n.output}
    for node in proto.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 2:
            source = producers.get(node.input[2])
            if source is not None and source.op_type == "DequantizeLinear":
                problems.append(f"{node.name or 'Conv'}: quantised bias; TensorRT quantises biases itself")
    return problems


def is_qdq(path: Path) -> bool:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return any(n.op_type in QDQ_OPS for n in proto.graph.node)


def prepared_name(onnx_path: Path, precision: str) -> str:
    stem = onnx_path.stem
    return f"{stem}.onnx" if precision == "fp32" or stem.endswith(f"_{precision}") else f"{stem}_{precision}.onnx"


def prepare_onnx(onnx_artifact: Artifact, settings: EngineSettings, folder: Path,
                 calibration: CalibrationSet | None = None) -> Artifact:
    """The ONNX file the engine is built from: the FP32 graph, its FP16 version, or an INT8 QDQ graph
    (calibrated on ``calibration``, default the settings' recipe's set).

    Writes (atomically) into ``folder`` only what has to be made; an input
    that already has the precision is returned as it is. What it makes is
    stamped as built for TensorRT; it runs in ONNX Runtime, which proves it.
    """
    meta = onnx_artifact.metadata
    precision = settings.precision
    if precision == "fp16":
        if meta.precision == "fp16":
            return onnx_artifact
        from sr_export.export.fp16 import save_fp16

        fp16 = save_fp16(_float(onnx_artifact), Path(folder) / prepared_name(onnx_artifact.path, "fp16"),
                         backend="tensorrt")
        return fp16
    if precision == "int8":
        if is_qdq(onnx_artifact.path):
            return _checked_qdq(onnx_artifact)
        if settings.calibrator == "entropy":
            return _float(onnx_artifact)  # TensorRT 10 calibrates the FP32 graph itself
        if settings.calibration or calibration is not None:
            return _quantized(_float(onnx_artifact), settings.calibration, Path(folder), calibration)
        raise SrExportError(
            f"{onnx_artifact.path.name} is not quantised: give a calibration recipe (--int8 --calib RECIPE) "
            "or an INT8 QDQ ONNX (--int8 --from model_qdq.onnx)"
        )
    return _float(onnx_artifact)


def _float(artifact: Artifact) -> Artifact:
    what = "an INT8 QDQ graph" if is_qdq(artifact.path) else artifact.metadata.precision
    if what != "fp32":
        raise SrExportError(f"{artifact.path.name} is {what}; this step needs the FP32 ONNX")
    return artifact


def _checked_qdq(artifact: Artifact) -> Artifact:
    import onnx

    problems = qdq_problems(onnx.load(str(artifact.path), load_external_data=False))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SrExportError(f"{artifact.path.name} is not a QDQ graph TensorRT can build: {problems[0]}{more}")
    meta = artifact.metadata
    if (meta.precision, meta.format, meta.flavour, meta.backend) == ("int8", ONNX_QDQ.name, "tensorrt", "tensorrt"):
        return artifact
    # A QDQ graph TensorRT can build: symmetric, so of TensorRT's flavour whoever made it.
    return Artifact(artifact.path, replace(meta, precision="int8", format=ONNX_QDQ.name, flavour="tensorrt",
                                           backend="tensorrt"))


def _quantized(artifact: Artifact, recipe_name: str | None, folder: Path,
               calibration: CalibrationSet | None) -> Artifact:
    """Calibrate and quantise (explicit QDQ in TensorRT's flavour) on the build's calibration set."""
    from sr_export.quantize.qdq import int8_filename, quantize_onnx
    from sr_export.quantize.recipes import load_recipe

    recipe = calibration.recipe if calibration is not None else load_recipe(str(recipe_name))
    output = folder / int8_filename(base_stem(artifact.path.stem)[0], recipe.name, "tensorrt")
    return _checked_qdq(quantize_onnx(artifact, recipe, flavour="tensorrt", output=output, calibration=calibration))
