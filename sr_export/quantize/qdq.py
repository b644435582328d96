"""Static INT8 as QDQ ONNX, built with ONNX Runtime's quantiser from cached statistics.

Two flavours of the same calibration, ``onnxruntime`` and ``tensorrt``
(:mod:`sr_export.quantize.qdq_graph` builds the graphs).

SR-aware float layers (first conv, last conv / upsampler, global residual add)
and the user's ``keep_float`` nodes get no Q/DQ; an output clamp to the data
range is appended in float.

Mixed precision works on activation tensors as well as nodes: keeping a
tensor in float removes its QuantizeLinear/DequantizeLinear pair from the
built graph, so its producer and readers run in float on that edge while the
rest of the graph stays in INT8. Rounding noise lives in activations (on
E-RFDN x4, INT8 weights alone cost 0.03 dB of the ~0.18 dB), so a handful of
tensors is what mixed precision needs to keep, not whole layers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sr_export.core.artifacts import INT8_METADATA_KEY, Artifact, build_stamp, embed_in_onnx
from sr_export.core.errors import SrExportError, stage
from sr_export.core.formats import ONNX, ONNX_QDQ
from sr_export.core.io import atomic_path
from sr_export.core.naming import int8_tail, keep_float_tag
from sr_export.quantize.cache_key import CalibrationKey, initialiser_hash, onnx_graph_identity
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.graph import ensure_node_names, sr_float_nodes, statistic_tensors, unknown_nodes
from sr_export.quantize.qdq_graph import FLAVOURS, quantized_proto
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import ActivationStatistics, statistics_for

STATISTIC_REASON = "per-channel statistic (one value per channel)"


@dataclass(frozen=True)
class QuantPlan:
    """Which nodes and activation tensors stay in float, and why."""

    float_nodes: Mapping[str, str]  # node name -> reason
    float_tensors: Mapping[str, str] = field(default_factory=dict)  # activation tensor name -> reason

    def names(self) -> list[str]:
        """The nodes the quantiser must leave alone."""
        return list(self.float_nodes)

    def tensors(self) -> list[str]:
        """The activation tensors whose Q/DQ pair is removed after quantisation."""
        return list(self.float_tensors)

    def with_tensors(self, reasons: Mapping[str, str]) -> QuantPlan:
        return QuantPlan(self.float_nodes, {**self.float_tensors, **reasons})

    def describe(self) -> dict[str, str]:
        return {**self.float_nodes, **self.float_tensors}


def load_float_proto(artifact: Artifact) -> Any:
    import onnx

    with stage("quantize", f"reading {artifact.path}"):
        proto = onnx.load(str(artifact.path))
    ensure_node_names(proto.graph)
    return proto


def onnx_calibration_key(proto: Any, weights_sha256: str | None, calibration: CalibrationSet) -> CalibrationKey:
    return CalibrationKey(weights=weights_sha256 or initialiser_hash(proto), graph=onnx_graph_identity(proto),
                          calibration=calibration.identity, layout="NCHW")


def artifact_statistics(
    artifact: Artifact,
    recipe: CalibrationRecipe,
    proto: Any = None,
    *,
    calibration: CalibrationSet | None = None,
    progress: Callable[[], Any] | None = None,
) -> ActivationStatistics:
    """Activation statistics for a float ONNX artifact, calibrated on ``calibration`` (default: the recipe's set)."""
    proto = proto if proto is not None else load_float_proto(artifact)
    meta = artifact.metadata
    calibration = (calibration if calibration is not None else CalibrationSet(recipe, meta.model_info())
                   ).at_size(meta.static_hw)
    key = onnx_calibration_key(proto, meta.weights_sha256, calibration)
    return statistics_for(proto, key, calibration, recipe, progress=progress)


def plan_float_nodes(proto: Any, recipe: CalibrationRecipe, keep_float: Sequence[str] = ()) -> QuantPlan:
    """SR-aware defaults (when the recipe asks), then the recipe's and the caller's nodes or tensors.

    A requested name is a node (left unquantised) or an activation tensor
    (kept float on that edge only); node names win where both exist.
    """
    requested = [*recipe.keep_float, *keep_float]
    node_names = {n.name for n in proto.graph.node}
    tensor_names = {out for n in proto.graph.node for out in n.output}
    missing = [name for name in unknown_nodes(proto.graph, requested) if name not in tensor_names]
    if missing:
        some = ", ".join(n.name for n in list(proto.graph.node)[:3])
        raise SrExportError(
            f"--keep-float names no node or tensor of this graph: {', '.join(missing)} (node names look like "
            f"{some}; see `sr-bench int8-report` for the sensitive layers and tensors)"
        )
    reasons = dict(sr_float_nodes(proto.graph)) if recipe.sr_aware else {}
    tensors: dict[str, str] = {}
    if recipe.float_statistics:
        tensors.update({name: STATISTIC_REASON for name in statistic_tensors(proto)})
    for name in requested:
        if name in node_names:
            reasons.setdefault(name, "kept in float on request")
        else:
            tensors.setdefault(name, "kept in float on request")
    return QuantPlan(reasons, tensors)


def quantize_onnx(
    onnx_artifact: Artifact,
    recipe: CalibrationRecipe,
    *,
    flavour: str = "onnxruntime",
    keep_float: Sequence[str] = (),
    output: Path,
    statistics: ActivationStatistics | None = None,
    calibration: CalibrationSet | None = None,
    progress: Callable[[str], Any] | None = None,
) -> Artifact:
    """Write a static INT8 QDQ ONNX of the float ``onnx_artifact`` to ``output`` (file or folder).

    Statistics come from the cache or one calibration on ``calibration``
    (default: the recipe's set for this model). With
    ``recipe.auto_keep_float`` N > 0, the N activation tensors whose Q/DQ
    pair, removed alone, gives back the most output PSNR on the calibration
    patches also stay in float (``float-tensor`` sensitivity, cached).
    """
    import onnx

    if flavour not in FLAVOURS:
        raise SrExportError(f"unknown INT8 flavour '{flavour}'; known: {', '.join(FLAVOURS)}")
    meta = onnx_artifact.metadata
    if meta.format != ONNX.name:
        raise SrExportError(f"INT8 QDQ needs a float ONNX artifact, not {meta.format} ({onnx_artifact.path})")
    if meta.precision != "fp32":
        raise SrExportError(f"{onnx_artifact.path} is {meta.precision}; quantise the fp32 export")
    proto = load_float_proto(onnx_artifact)
    say = progress or (lambda _message: None)
    say(f"calibrating ({recipe.summary()})")
    # A fixed-size export takes only its own size: the patches are fitted to it (statistics, scans, fine-tuning).
    calibration = (calibration if calibration is not None else CalibrationSet(recipe, meta.model_info())
                   ).at_size(meta.static_hw)
    statistics = statistics or artifact_statistics(onnx_artifact, recipe, proto, calibration=calibration)
    plan = plan_float_nodes(proto, recipe, keep_float)
    if recipe.auto_keep_float:
        from sr_export.quantize.sensitivity import cached_tensor_sensitivity, most_sensitive

        say(f"measuring per-tensor sensitivity to keep the {recipe.auto_keep_float} worst activations in float")
        sensitivity = cached_tensor_sensitivity(proto, statistics, recipe, onnx_artifact, plan, flavour=flavour,
                                                calibration=calibration)
        plan = plan.with_tensors({name: f"sensitive: +{gain:.2f} dB output PSNR in float" for name, gain in
                                  most_sensitive(sensitivity, recipe.auto_keep_float)})
    clamp = meta.data_range if recipe.sr_aware else None
    finetuned: dict[str, Any] = {}
    if recipe.finetune is not None:
        proto, statistics, finetuned = _finetuned(proto, statistics, recipe, plan, calibration, meta, flavour, say)
    say(f"building the {flavour} QDQ graph ({len(plan.float_nodes)} nodes, {len(plan.float_tensors)} tensors "
        "kept in float)")
    quantized = quantized_proto(proto, statistics, recipe, flavour=flavour, exclude=plan.names(),
                                float_tensors=plan.tensors(), data_range=clamp)
    rewrites = None
    if flavour == "onnxruntime":
        say("rewriting the graph for ONNX Runtime's fast integer kernels (same output, checked)")
        rewrites = _for_onnxruntime_kernels(quantized, proto, calibration, meta.data_range)
        quantized = rewrites.proto
    notes = (*meta.notes, f"INT8 QDQ ({flavour}) from recipe {recipe.summary()}",
             f"float nodes: {', '.join(plan.names()) or 'none'}",
             f"float activations: {', '.join(plan.tensors()) or 'none'}")
    if rewrites is not None:
        notes = (*notes, *rewrites.notes())
    if finetuned:
        notes = (*notes, f"weights fine-tuned for INT8 (distilled from FP32 on calibration patches) from checkpoint "
                         f"sha256 {finetuned['from_checkpoint']}")
    from sr_export.export.onnx_versions import lower_ir_version
    from sr_export.export.onnx_versions import requirements as onnx_requirements

    lower_ir_version(quantized)
    metadata = replace(meta, precision="int8", format=ONNX_QDQ.name, flavour=flavour, backend=flavour, notes=notes,
                       runtime_requirements=onnx_requirements(quantized),
                       quantization={**meta.quantization, "finetuned": finetuned} if finetuned else meta.quantization)
    embed_in_onnx(quantized, metadata)
    details = {"flavour": flavour, "recipe": recipe.to_dict(), "statistics_key": statistics.key,
               "calibration": calibration.identity,
               "float_nodes": dict(plan.float_nodes), "float_tensors": dict(plan.float_tensors),
               "float_conv_outputs": _float_conv_outputs(quantized, plan.names())}
    if rewrites is not None:
        details["onnxruntime_kernels"] = rewrites.to_dict()
    if finetuned:
        details["finetuned"] = finetuned
    entry = quantized.metadata_props.add()
    entry.key, entry.value = INT8_METADATA_KEY, json.dumps(details)
    target = Path(output)
    if target.is_dir() or target.suffix.lower() != ".onnx":
        target = target / int8_filename(onnx_artifact.path.stem, recipe.name, flavour)
    with atomic_path(target) as tmp:
        onnx.save(quantized, str(tmp))
    return Artifact(target, build_stamp(metadata))


def _finetuned(
    proto: Any,
    statistics: ActivationStatistics,
    recipe: CalibrationRecipe,
    plan: QuantPlan,
    calibration: CalibrationSet,
    meta: Any,
    flavour: str,
    say: Callable[[str], Any],
) -> tuple[Any, ActivationStatistics, dict[str, Any]]:
    """The recipe's quantisation-aware fine-tuning: tuned graph, its statistics, and what the metadata records."""
    from sr_export.quantize.finetune import finetuned_graph

    settings = recipe.finetune
    assert settings is not None
    say(f"fine-tuning the weights for INT8 against the FP32 graph ({settings.steps} steps of {settings.batch}x"
        f"{settings.patch_size}px calibration crops; cached once done)")
    key = onnx_calibration_key(proto, meta.weights_sha256, calibration)
    tuned, tuned_statistics, result = finetuned_graph(proto, statistics, recipe, plan, key, calibration,
                                                      data_range=meta.data_range,
                                                      clamp=meta.data_range if recipe.sr_aware else None,
                                                      flavour=flavour)
    record = {"from_checkpoint": meta.weights_sha256 or f"initialisers {initialiser_hash(proto)[:16]}",
              "method": "quantisation-aware fine-tuning distilled from FP32 (L1 on outputs), LSQ step sizes",
              "settings": settings.to_dict(), **result.summary()}
    return tuned, tuned_statistics, record


def _for_onnxruntime_kernels(quantized: Any, float_proto: Any, calibration: CalibrationSet, data_range: float) -> Any:
    """The QDQ graph rewritten for ONNX Runtime's fast kernels, checked on one calibration patch."""
    from sr_export.quantize.onnxruntime_kernels import rewritten_for_onnxruntime

    batch = next(iter(calibration))[:1]
    return rewritten_for_onnxruntime(quantized, batch, float_proto, data_range)


def _float_conv_outputs(quantized: Any, nodes: Sequence[str]) -> list[str]:
    """Outputs of the plan's float convs that carry no Q/DQ pair: what keeps ONNX Runtime from quantising them."""
    from sr_export.quantize.qdq_graph import quantized_activations

    wanted, carried = set(nodes), set(quantized_activations(quantized))
    return [node.output[0] for node in quantized.graph.node
            if node.name in wanted and node.op_type in ("Conv", "ConvTranspose") and node.output[0] not in carried]


def int8_filename(stem: str, recipe: str, flavour: str = "onnxruntime", keep_float: Sequence[str] = ()) -> str:
    """The default name of a QDQ file quantised from ``stem``.onnx: 'erfdn_x4_int8-mixed.onnx',
    'erfdn_x4_int8_trt-mixed.onnx', 'erfdn_x4_int8-default+kf3c1e08a2.onnx' with a --keep-float plan
    (see sr_export.core.naming)."""
    return f"{stem}{int8_tail(recipe + keep_float_tag(keep_float), '_trt' if flavour == 'tensorrt' else '')}.onnx"


def int8_details(path: str | Path) -> dict[str, Any] | None:
    """The flavour, recipe and float nodes an INT8 artifact was built with (None for other files)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == INT8_METADATA_KEY:
            return json.loads(prop.value)
    return None
