"""PyTorch to a Core ML ML Program with coremltools: torch.export first, torch.jit.trace as fallback.

Programs compute in FP16 by default (what the Neural Engine and GPU run)
with float32 inputs and outputs, and take one fixed size, a few enumerated
sizes, or a bounded range (:mod:`sr_export.runtimes.coreml.sizes`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_export.core.artifacts import ArtifactMetadata
from sr_export.core.errors import SrExportError, StageFailed, first_line
from sr_export.runtimes.coreml.options import DEPLOYMENT_TARGETS, ROUTES, CoreMLOptions
from sr_export.runtimes.coreml.quiet import import_coremltools, quiet_converter
from sr_export.runtimes.coreml.requirements import program_requirements, refuse_newer_than_target

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel

INPUT_NAME, OUTPUT_NAME = "input", "output"


@dataclass
class ConvertedProgram:
    mlmodel: Any  # coremltools.models.MLModel (not loaded: predict needs macOS)
    metadata: ArtifactMetadata
    route: str  # "torch.export" or "torch.jit.trace"
    seconds: float
    op_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


def convert_model(model: LoadedModel, options: CoreMLOptions) -> ConvertedProgram:
    """Convert ``model`` to an ML Program (not yet written anywhere)."""
    from sr_export.models.loader import example_input

    info = model.info
    if options.precision not in ("fp16", "fp32"):
        raise SrExportError(f"Core ML programs compute in fp16 or fp32, not {options.precision}")
    if options.deployment_target not in DEPLOYMENT_TARGETS:
        raise SrExportError(
            f"unknown deployment target '{options.deployment_target}'; choose from {', '.join(DEPLOYMENT_TARGETS)}"
        )
    if options.route not in ROUTES:
        raise SrExportError(f"route must be one of {', '.join(ROUTES)}, not '{options.route}'")
    smallest = min(min(options.sizes.bounds[0]), min(options.sizes.example))
    if smallest < info.min_input_size:
        raise SrExportError(
            f"{info.name} needs inputs of at least {info.min_input_size}x{info.min_input_size}; "
            f"{options.sizes.describe()} goes below that"
        )
    ct = import_coremltools()
    module = model.module
    notes: list[str] = []
    if options.rewrite:
        from sr_export.rewrites.coreml import rewrite_for_coreml

        module, applied = rewrite_for_coreml(module)
        notes.extend(f"rewrite: {name}" for name in applied)
    example = example_input((1, info.in_channels, *options.sizes.example))
    routes = ("export", "trace") if options.route == "auto" else (options.route,)
    failures: list[str] = []
    started = time.perf_counter()
    mlmodel, used = None, ""
    for route in routes:
        try:
            with quiet_converter():
                mlmodel = _convert(ct, module, example, options, route)
            used = "torch.export" if route == "export" else "torch.jit.trace"
            break
        except SrExportError:
            raise
        except Exception as exc:  # the user's model, torch.export and coremltools can raise anything
            failures.append(f"{'torch.export' if route == 'export' else 'torch.jit.trace'}: {first_line(exc)}")
    if mlmodel is None:
        raise StageFailed("convert", "; ".join(failures) + f"; {conversion_hint(' '.join(failures), options)}")
    if len(failures):
        notes.append(f"converted with {used} after {failures[0]}")
    if options.int8_weights:
        mlmodel = _quantize_weights(ct, mlmodel)
    seconds = time.perf_counter() - started
    spec = mlmodel.get_spec()
    requirements = program_requirements(spec, options.built_for or options.deployment_target)
    refuse_newer_than_target(requirements, spec, options.deployment_target)
    op_counts = count_ops(spec)
    batch, channels = 1, info.in_channels
    sizes = options.sizes
    if sizes.fixed:
        input_shape: tuple[int | str, ...] = (batch, channels, *sizes.fixed)
    else:
        input_shape = (batch, channels, "height", "width")
    notes.append(f"Core ML {options.deployment_target}, {options.precision} compute, "
                 f"{'8-bit weights, ' if options.int8_weights else ''}inputs: {sizes.describe()}")
    metadata = ArtifactMetadata.for_model(
        model,
        format="mlpackage",
        backend="coreml",
        precision=options.artifact_precision,
        input_shape=input_shape,
        exporter=used,
        notes=tuple(model.notes) + tuple(notes),
        runtime_requirements=requirements,
    )
    return ConvertedProgram(mlmodel, metadata, used, seconds, op_counts, notes)


def _convert(ct: Any, module: Any, example: Any, options: CoreMLOptions, route: str) -> Any:
    import torch

    sizes = options.sizes
    channels = example.shape[1]
    dynamic = sizes.kind != "fixed"
    if route == "export":
        dynamic_shapes = None
        if dynamic:
            (h0, w0), (h1, w1) = sizes.bounds
            height = torch.export.Dim("height", min=h0, max=h1) if h0 != h1 else None
            width = torch.export.Dim("width", min=w0, max=w1) if w0 != w1 else None
            dims = {axis: dim for axis, dim in ((2, height), (3, width)) if dim is not None}
            dynamic_shapes = (dims,) if dims else None
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic_shapes, strict=False)
        source = program.run_decompositions({})
    else:
        with torch.no_grad():
            source = torch.jit.trace(module, example)
    if sizes.fixed:
        shape: Any = (1, channels, *sizes.fixed)
    elif sizes.enumerated:
        shape = ct.EnumeratedShapes(shapes=[(1, channels, h, w) for h, w in sizes.enumerated],
                                    default=(1, channels, *sizes.example))
    else:
        (h0, w0), (h1, w1) = sizes.bounds
        default_h, default_w = sizes.example
        shape = ct.Shape((1, channels, ct.RangeDim(h0, h1, default_h), ct.RangeDim(w0, w1, default_w)))
    if options.precision == "fp16":
        precision: Any = ct.transform.FP16ComputePrecision(op_selector=computes_on_feature_maps)
    else:
        precision = ct.precision.FLOAT32
    try:
        return ct.convert(
            source,
            inputs=[ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32)],
            outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
            convert_to="mlprogram",
            compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, options.deployment_target),
            skip_model_load=True,
        )
    except Exception as exc:
        where = offending_nodes(source, str(exc)) if route == "export" else ""
        if where:
            raise RuntimeError(f"{first_line(exc)} (at {where})") from exc
        raise


def computes_on_feature_maps(op: Any) -> bool:
    """Which ops an FP16 program runs in float16: those producing feature maps (rank 3 and up).

    Size, index and coordinate arithmetic (rank 0-2: shapes, ``range_1d``,
    resize coordinates) stays float32: float16 cannot count past 2048 nor
    resolve sub-pixel positions in large images.
    """
    return all(getattr(out, "rank", 0) >= 3 for out in op.outputs)


# Words in coremltools' failure messages -> the aten ops they are about.
_OP_WORDS = {"upsample": "upsample", "interpolate": "upsample", "resize": "upsample", "pixel_shuffle": "pixel_shuffle",
             "conv_transpose": "convolution", "deconv": "convolution"}


def offending_nodes(program: Any, message: str) -> str:
    """The graph nodes (and the modules they come from) a converter message is about, if it names an op."""
    named = re.findall(r"op '([\w.]+)'", message)
    keys = [name.split(".")[-1] for name in named]
    keys += [op for word, op in _OP_WORDS.items() if word in message.lower()]
    if not keys:
        return ""
    found = []
    for node in program.graph.nodes:
        target = str(getattr(node, "target", ""))
        if node.op == "call_function" and any(key in target for key in keys):
            stack = node.meta.get("nn_module_stack") or {}
            module = list(stack.values())[-1][0] if stack else ""
            found.append(f"node '{node.name}'" + (f" in module '{module}'" if module else ""))
    return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")


def _quantize_weights(ct: Any, mlmodel: Any) -> Any:
    from coremltools.optimize import coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))
    try:
        with quiet_converter():
            return cto.linear_quantize_weights(mlmodel, config)
    except Exception as exc:
        raise StageFailed("convert", f"8-bit weight quantisation: {first_line(exc)}; drop --int8-weights") from exc


# Known converter failures -> what the user can do about them.
_HINTS = (
    (re.compile(r"upsample|interpolate|resize", re.I),
     "the model resizes to a size computed from its input (like E-RFDN's spatial attention): keep the default "
     "rewrites (no --no-rewrite) or convert a fixed size with --shape HxW"),
    (re.compile(r"Constraints violated|guard|specialized", re.I),
     "torch.export cannot keep H/W dynamic for this model: use --shape HxW (other sizes then run in tiles) or "
     "raise the lower bound of --range / --shapes"),
    (re.compile(r"convert function for op '([\w.]+)' not implemented", re.I),
     "coremltools has no conversion for that PyTorch op: rewrite the layer with standard ops, or register a "
     "coremltools op (ct.converters.mil.frontend.torch.register_torch_op)"),
)


def conversion_hint(message: str, options: CoreMLOptions) -> str:
    for pattern, hint in _HINTS:
        if pattern.search(message):
            return hint
    return "try --fp32, a fixed --shape, or SR_EXPORT_DEBUG=1 for the converter's traceback"


def count_ops(spec: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    function = spec.mlProgram.functions["main"]
    for op in function.block_specializations[function.opset].operations:
        counts[op.type] = counts.get(op.type, 0) + 1
    return counts
