"""Static INT8 as QDQ ONNX, built with ONNX Runtime's quantiser from cached statistics.

Two flavours of the same calibration:

* ``onnxruntime``: uint8 asymmetric activations, per-channel int8 weights,
  int32 bias; what ONNX Runtime's CPU kernels run fastest and most accurately.
* ``tensorrt``: what TensorRT's ONNX parser wants: symmetric int8 activations
  and weights (zero points 0), per-channel weights, bias left in float (TensorRT
  folds it itself). Proven by running it in ONNX Runtime.

SR-aware float layers (first conv, last conv / upsampler, global residual add)
and the user's ``keep_float`` nodes get no Q/DQ; an output clamp to the data
range is appended in float.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sr_export.artifacts import Artifact, embed_in_onnx
from sr_export.errors import SrExportError, stage
from sr_export.io import atomic_path
from sr_export.quantize.graph import ensure_node_names, sr_float_nodes, unknown_nodes
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics, quiet_ort_quantization, statistics_for

FLAVOURS = ("onnxruntime", "tensorrt")
INT8_METADATA_KEY = "sr_export_int8"


@dataclass(frozen=True)
class QuantPlan:
    """Which nodes stay in float, and why."""

    float_nodes: Mapping[str, str]  # node name -> reason

    def names(self) -> list[str]:
        return list(self.float_nodes)


def load_float_proto(artifact: Artifact) -> Any:
    import onnx

    with stage("quantize", f"reading {artifact.path}"):
        proto = onnx.load(str(artifact.path))
    ensure_node_names(proto.graph)
    return proto


def calibration_batches(artifact: Artifact, recipe: CalibrationRecipe) -> Callable[[], list[Any]]:
    def make() -> list[Any]:
        from sr_export.quantize.calibration_data import make_calibration_set

        meta = artifact.metadata
        return make_calibration_set(recipe, meta.scale).batches(meta.model_info())

    return make


def artifact_statistics(
    artifact: Artifact, recipe: CalibrationRecipe, proto: Any = None, *, progress: Callable[[], Any] | None = None
) -> ActivationStatistics:
    """Activation statistics for a float ONNX artifact under ``recipe`` (cached by weights and recipe)."""
    proto = proto if proto is not None else load_float_proto(artifact)
    meta = artifact.metadata
    return statistics_for(proto, meta.weights_sha256, recipe, meta.scale, calibration_batches(artifact, recipe),
                          progress=progress)


def plan_float_nodes(proto: Any, recipe: CalibrationRecipe, keep_float: Sequence[str] = ()) -> QuantPlan:
    """SR-aware defaults (when the recipe asks), then the recipe's and the caller's nodes."""
    requested = [*recipe.keep_float, *keep_float]
    missing = unknown_nodes(proto.graph, requested)
    if missing:
        some = ", ".join(n.name for n in list(proto.graph.node)[:4])
        raise SrExportError(
            f"--keep-float names no node of this graph: {', '.join(missing)} (node names look like {some}; "
            "see `sr-bench int8-report` for the layer list)"
        )
    reasons = dict(sr_float_nodes(proto.graph)) if recipe.sr_aware else {}
    for name in requested:
        reasons.setdefault(name, "kept in float on request")
    return QuantPlan(reasons)


def quantized_proto(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    *,
    flavour: str = "onnxruntime",
    exclude: Sequence[str] = (),
    only: Sequence[str] = (),
    data_range: float | None = None,
) -> Any:
    """A QDQ ModelProto of ``proto``; ``only`` restricts quantisation to those nodes (for sensitivity)."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import save_and_reload_model_with_shape_infer
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if flavour not in FLAVOURS:
        raise SrExportError(f"unknown INT8 flavour '{flavour}'; known: {', '.join(FLAVOURS)}")
    symmetric = flavour == "tensorrt" or recipe.activations == "symmetric"
    options: dict[str, Any] = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if flavour == "tensorrt":
        options["QuantizeBias"] = False
    op_types = sorted(set(QDQRegistry) | set(QLinearOpsRegistry))
    with stage("quantize", f"building the {flavour} QDQ graph"), quiet_ort_quantization():
        model = save_and_reload_model_with_shape_infer(onnx.ModelProto.FromString(proto.SerializeToString()))
        quantizer = QDQQuantizer(
            model, recipe.per_channel or flavour == "tensorrt", False, QuantType.QInt8,
            QuantType.QInt8 if symmetric else QuantType.QUInt8, statistics.to_tensors_data(),
            list(only), list(exclude), op_types, options,
        )
        result = quantizer.quantize_model()
    if data_range is not None:
        append_output_clamp(result, data_range)
    return result


def append_output_clamp(proto: Any, data_range: float) -> None:
    """Clip the graph output to [0, data_range] in float: INT8 overshoot must not wrap or band."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = proto.graph
    output = graph.output[0].name
    raw = f"{output}_unclamped"
    for node in graph.node:
        node.output[:] = [raw if o == output else o for o in node.output]
        node.input[:] = [raw if i == output else i for i in node.input]
    low, high = f"{output}_clamp_low", f"{output}_clamp_high"
    graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), low),
                              numpy_helper.from_array(np.array(data_range, np.float32), high)])
    graph.node.append(helper.make_node("Clip", [raw, low, high], [output], name="sr_export_output_clamp"))


def quantize_onnx(
    onnx_artifact: Artifact,
    recipe: CalibrationRecipe,
    *,
    flavour: str = "onnxruntime",
    keep_float: Sequence[str] = (),
    output: Path,
    statistics: ActivationStatistics | None = None,
    progress: Callable[[str], Any] | None = None,
) -> Artifact:
    """Write a static INT8 QDQ ONNX of the float ``onnx_artifact`` to ``output`` (file or folder).

    Statistics come from the cache or one calibration under ``recipe``. With
    ``recipe.auto_keep_float`` N > 0, the N layers whose quantisation alone
    gives back the most output PSNR on the calibration patches when returned to
    float also stay in float (``float-one`` sensitivity).
    """
    import onnx

    if flavour not in FLAVOURS:
        raise SrExportError(f"unknown INT8 flavour '{flavour}'; known: {', '.join(FLAVOURS)}")
    meta = onnx_artifact.metadata
    if meta.format != "onnx":
        raise SrExportError(f"INT8 QDQ needs a float ONNX artifact, not {meta.format} ({onnx_artifact.path})")
    if meta.precision != "fp32":
        raise SrExportError(f"{onnx_artifact.path} is {meta.precision}; quantise the fp32 export")
    proto = load_float_proto(onnx_artifact)
    say = progress or (lambda _message: None)
    say(f"calibrating ({recipe.summary()})")
    statistics = statistics or artifact_statistics(onnx_artifact, recipe, proto)
    plan = plan_float_nodes(proto, recipe, keep_float)
    if recipe.auto_keep_float:
        from sr_export.quantize.sensitivity import layer_sensitivity, most_sensitive

        say(f"measuring per-layer sensitivity to keep the {recipe.auto_keep_float} worst layers in float")
        sensitivity = layer_sensitivity(proto, statistics, recipe, onnx_artifact, flavour=flavour,
                                        exclude=plan.names(), mode="float-one")
        extra = {name: f"sensitive: +{gain:.2f} dB output PSNR in float" for name, gain in
                 most_sensitive(sensitivity, recipe.auto_keep_float)}
        plan = QuantPlan({**plan.float_nodes, **extra})
    say(f"building the {flavour} QDQ graph ({len(plan.float_nodes)} nodes kept in float)")
    quantized = quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=plan.names(),
                                data_range=meta.data_range if recipe.sr_aware else None)
    notes = (*meta.notes, f"INT8 QDQ ({flavour}) from recipe {recipe.summary()}",
             f"float nodes: {', '.join(plan.names()) or 'none'}")
    metadata = replace(meta, precision="int8", backend="onnxruntime", notes=notes)
    embed_in_onnx(quantized, metadata)
    details = {"flavour": flavour, "recipe": recipe.to_dict(), "statistics_key": statistics.key,
               "float_nodes": dict(plan.float_nodes)}
    entry = quantized.metadata_props.add()
    entry.key, entry.value = INT8_METADATA_KEY, json.dumps(details)
    target = Path(output)
    if target.is_dir() or target.suffix.lower() != ".onnx":
        target = target / f"{onnx_artifact.path.stem}_int8{'_trt' if flavour == 'tensorrt' else ''}.onnx"
    with atomic_path(target) as tmp:
        onnx.save(quantized, str(tmp))
    return Artifact(target, metadata)


def int8_details(path: str | Path) -> dict[str, Any] | None:
    """The flavour, recipe and float nodes an INT8 artifact was built with (None for other files)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == INT8_METADATA_KEY:
            return json.loads(prop.value)
    return None
