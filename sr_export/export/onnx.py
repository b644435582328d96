"""A loaded model to an ONNX graph that is proven right and carries its own metadata.

Steps: trace with each exporter the user allows (``auto``: dynamo, then
legacy) until one gives a graph that matches PyTorch at every verification
size; check it with onnx.checker; simplify it if onnxsim does not change its
outputs; stamp the metadata (exporter, sizes verified, size multiple,
receptive field) into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import onnx

from sr_export.core.artifacts import Artifact, ArtifactMetadata, build_stamp, embed_in_onnx
from sr_export.core.errors import SrExportError, StageFailed
from sr_export.export import trace_cache
from sr_export.export.budget import DEFAULT_EXPORT_TIMEOUT_S, MAX_EXPORT_TIMEOUT_S, Say
from sr_export.export.exporters import (
    EXPORTER_CHOICES,
    EXPORTER_ORDER,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportAttemptFailed,
    export_graph,
)
from sr_export.export.onnx_versions import lower_ir_version
from sr_export.export.onnx_versions import requirements as onnx_requirements
from sr_export.export.simplify import simplify_checked
from sr_export.export.verify import PyTorchReference, Verification, verification_sizes, verify_graph
from sr_export.models.loader import LoadedModel

DEFAULT_OPSET = 18
TRACE_SIZE = 64  # LR pixels per side used for tracing a dynamic-shape export


@dataclass(frozen=True)
class ExportOptions:
    opset: int = DEFAULT_OPSET
    shape: tuple[int, int] | None = None  # fixed LR height x width; None exports dynamic H/W
    simplify: bool = True
    exporter: str = "auto"  # auto | dynamo | legacy
    timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S  # seconds per exporter attempt; None: no limit, in-process


@dataclass
class ExportedOnnx:
    proto: onnx.ModelProto
    metadata: ArtifactMetadata
    notes: list[str] = field(default_factory=list)
    verification: Verification | None = None


def default_filename(model: LoadedModel, shape: tuple[int, int] | None = None) -> str:
    """``erfdn_x4.onnx`` for a dynamic-size export, ``erfdn_x4_256x256.onnx`` for one fixed to an LR size."""
    size = f"_{shape[0]}x{shape[1]}" if shape is not None else ""
    return f"{model.info.name}_x{model.info.scale}{size}.onnx"


def export_onnx(model: LoadedModel, options: ExportOptions = ExportOptions(), say: Say | None = None) -> ExportedOnnx:
    """``say`` hears which exporter is working and for how long, every second."""
    info = model.info
    if options.exporter not in EXPORTER_CHOICES:
        raise SrExportError(f"--exporter must be one of {', '.join(EXPORTER_CHOICES)}, not '{options.exporter}'")
    timeout = options.timeout
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_EXPORT_TIMEOUT_S):
        raise SrExportError(f"--export-timeout must be seconds above 0 and at most {MAX_EXPORT_TIMEOUT_S:g}, "
                            f"not {timeout!r}")
    if options.shape and min(options.shape) < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}, "
            f"not {options.shape[0]}x{options.shape[1]}"
        )
    dynamic = options.shape is None
    sizes = verification_sizes(info.min_input_size) if dynamic else (options.shape,)
    reference = PyTorchReference(model, sizes)
    proto, verification, notes = _first_verified_graph(model, options, reference, say)
    with_notes = list(model.notes) + notes
    try:
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except Exception as exc:
        raise StageFailed("export", f"the exported graph does not pass onnx.checker: {exc}") from exc
    simplified = False
    if options.simplify:
        proto, simplified, note = simplify_checked(proto, reference.inputs, info.data_range)
        if note:
            with_notes.append(note)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    lower_ir_version(proto)  # onnx stamps its newest IR version; ONNX Runtime < 1.18 refuses IR 10
    metadata = ArtifactMetadata.for_model(
        model,
        format="onnx",
        backend="onnxruntime",
        precision="fp32",
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        input_shape=tuple(d.dim_param if d.dim_param else d.dim_value for d in dims),
        opset=options.opset,
        simplified=simplified,
        exporter=verification.exporter,
        verified_sizes=verification.passed_sizes,
        notes=tuple(with_notes),
        runtime_requirements=onnx_requirements(proto),
    )
    embed_in_onnx(proto, metadata)
    return ExportedOnnx(proto, metadata, with_notes, verification)


def _first_verified_graph(
    model: LoadedModel, options: ExportOptions, reference: PyTorchReference, say: Say | None = None
) -> tuple[onnx.ModelProto, Verification, list[str]]:
    """The first exporter's graph that matches PyTorch at every reference size."""
    info = model.info
    dynamic = options.shape is None
    trace_hw = options.shape or (max(TRACE_SIZE, info.min_input_size),) * 2
    failures: list[str] = []
    timed_out = False
    input_shape = (1, info.in_channels, *trace_hw)
    for exporter in EXPORTER_ORDER[options.exporter]:
        key = trace_cache.trace_key(model.module, exporter, input_shape, dynamic=dynamic, opset=options.opset) \
            if trace_cache.enabled() else None
        cached = trace_cache.load(key) if key else None
        if cached is not None:  # a candidate, proven like a fresh trace
            verification = verify_graph(cached, reference, exporter=exporter)
            if verification.passed:
                return cached, verification, [f"{f}; used the {exporter} exporter" for f in failures]
            trace_cache.discard(key)
        try:
            proto = export_graph(exporter, model.module, input_shape,
                                 dynamic=dynamic, opset=options.opset, timeout=options.timeout, say=say)
        except ExportAttemptFailed as failed:
            failures.append(f"{exporter}: {failed.reason}")
            timed_out = timed_out or failed.timed_out
            continue
        verification = verify_graph(proto, reference, exporter=exporter)
        if verification.passed:
            if key:
                trace_cache.store(key, proto)
            notes = [f"{f}; used the {exporter} exporter" for f in failures]
            return proto, verification, notes
        failures.append(f"{exporter}: {verification.describe_failure()}")
    raise StageFailed("export", _no_graph_message(failures, dynamic, options, timed_out), exit_code=1)


def _no_graph_message(failures: list[str], dynamic: bool, options: ExportOptions, timed_out: bool = False) -> str:
    tried = "; ".join(failures)
    others = [e for e in EXPORTER_CHOICES[1:] if e != options.exporter] if options.exporter != "auto" else []
    alternatives = f", or try --exporter {others[0]}" if others else ""
    more_time = ", or allow each exporter more time with --export-timeout SECONDS" if timed_out else ""
    if not dynamic:
        height, width = options.shape or (0, 0)
        tips = [f"try --exporter {others[0]}"] if others else []
        if timed_out:
            tips.append("allow each exporter more time with --export-timeout SECONDS")
        advice = f"; {', or '.join(tips)}" if tips else ""
        return f"no exporter produced a graph that matches PyTorch at {height}x{width} ({tried}){advice}"
    return (
        f"no exporter produced a graph that is right at every size ({tried}); "
        f"export a fixed size with --shape HxW (other sizes then run tiled), "
        f"or pad inputs to the model's multiple with --pad-to N{alternatives}{more_time}"
    )


def save_export(model: LoadedModel, options: ExportOptions, folder: Path, filename: str | None = None,
                say: Say | None = None) -> Artifact:
    """Export ``model`` and write it (atomically) into ``folder``; the returned metadata (not the file)
    says when and where it was built."""
    from sr_export.core.io import atomic_path

    exported = export_onnx(model, options, say)
    path = Path(folder) / (filename or default_filename(model, options.shape))
    with atomic_path(path) as tmp:
        onnx.save(exported.proto, str(tmp))
    return Artifact(path, build_stamp(exported.metadata))
