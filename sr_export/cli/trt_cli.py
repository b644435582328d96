"""``sr-export trt``: a TensorRT engine from a zoo model or an ONNX file, FP32, FP16 or INT8.

The ONNX graph is prepared for the precision and its parity proven in ONNX
Runtime on the CPU first; only then is TensorRT needed. Where TensorRT is not
installed the command stops there with exit status 4, leaving the proven
ONNX to build the engine from on a machine with an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import build_cli, common
from sr_export.core.errors import SrExportError


def add_parser(commands: Any) -> None:
    trt = commands.add_parser("trt", help="build a TensorRT engine (FP32/FP16/INT8) with a bounded shape profile")
    common.add_model_arguments(trt, required=False)
    common.add_export_arguments(trt, shape=False)
    trt.add_argument("--from", dest="source", type=common.existing_path, metavar="MODEL.onnx",
                     help="build from this ONNX file (FP32, or an INT8 QDQ graph with --int8) instead of --model")
    precision = trt.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="FP16 (an FP16-typed ONNX, FP32 inputs/outputs)")
    precision.add_argument("--int8", action="store_true",
                           help="INT8 from explicit QDQ: --calib RECIPE quantises, or --from a QDQ ONNX")
    trt.add_argument("--calib", metavar="RECIPE", help="calibration recipe (name in calibration/ or a path) for --int8")
    trt.add_argument("--entropy-calibrator", action="store_true",
                     help="TensorRT 10 only: calibrate the FP32 graph with IInt8EntropyCalibrator2 (cached) "
                     "instead of building from QDQ")
    sizes = trt.add_argument_group("shape profile (LR HxW; default 32x32..720x1280, opt 360x640)")
    sizes.add_argument("--shape", type=common.size_argument, metavar="HxW", help="one fixed input size")
    sizes.add_argument("--min", type=common.size_argument, metavar="HxW", help="smallest input size")
    sizes.add_argument("--opt", type=common.size_argument, metavar="HxW", help="size TensorRT tunes for")
    sizes.add_argument("--max", type=common.size_argument, metavar="HxW", help="largest input size")
    trt.add_argument("--target", metavar="PROFILE", help="take settings from a target profile (e.g. trt-fp16); "
                     "flags given here override it")
    trt.add_argument("--workspace", type=common.WholeNumber(16, 1 << 20), metavar="MB", help="builder workspace limit (default 2048 MB)")
    trt.add_argument("--timing-cache", type=Path, metavar="PATH", help="timing cache to reuse and update")
    common.add_output_argument(trt, "engine file (default: <model>_x<scale>_<precision>.engine; INT8: "
                              "<model>_x<scale>_int8-<recipe>.engine)")
    common.add_json_argument(trt, "build report (prepared ONNX, parity, engine)")
    trt.set_defaults(handler=cmd_trt)


def settings_from_args(args: argparse.Namespace, min_input_size: int) -> tuple[str, dict[str, Any], Any]:
    """(target, tensorrt options, EngineSettings) from --target and the flags over it; checked before any work."""
    from sr_export.core.sizes import hw_text
    from sr_export.runtimes.tensorrt.settings import settings_from_options, shape_profile
    from sr_export.targets.profiles import load_profile

    options: dict[str, Any] = {}
    precision, target = "fp32", "tensorrt"
    if args.target:
        profile = load_profile(args.target)
        if profile.backend != "tensorrt":
            raise SrExportError(f"target profile {profile.name} is for {profile.backend}, not tensorrt")
        profile.runtime_options()  # an unknown key or a bad value names the profile's file, before any flag applies
        options, precision, target = dict(profile.options), profile.precision, args.target
    if args.fp16 or args.int8:
        precision = "fp16" if args.fp16 else "int8"
    if args.entropy_calibrator:
        options["calibrator"] = "entropy"
    if any(v is not None for v in (args.shape, args.min, args.opt, args.max)):
        sizes = shape_profile(shape=args.shape, min=args.min, opt=args.opt, max=args.max,
                              min_input_size=min_input_size)
        for key in ("shape", "min_shape", "opt_shape", "max_shape"):
            options.pop(key, None)
        options.update(min_shape=hw_text(sizes.min), opt_shape=hw_text(sizes.opt), max_shape=hw_text(sizes.max))
    if args.workspace is not None:
        options["workspace_mb"] = args.workspace
    if args.timing_cache is not None:
        options["timing_cache"] = str(args.timing_cache)
    if args.calib:
        options["calibration"] = args.calib
    settings = settings_from_options(options, precision, min_input_size=min_input_size)
    if args.calib and settings.precision != "int8":
        raise SrExportError("--calib applies to --int8 only")
    return target, options, settings

def cmd_trt(args: argparse.Namespace) -> int:
    """``sr-export trt``: ``build --target tensorrt`` (or a tensorrt profile), flags over its options: the prepared
    ONNX is proven in ONNX Runtime and written; the engine is built where TensorRT is (else exit 4)."""
    from sr_export.bench.build import BuildStopped
    from sr_export.runtimes.open import open_artifact
    from sr_export.runtimes.tensorrt.build import engine_path, recipe_label

    console = common.stderr_console()
    if args.source is None and args.model is None:
        raise SrExportError("say what to build: --model NAME (exported here) or --from model.onnx")
    settings_from_args(args, 1)  # bad flags fail before the model or artifact is loaded
    model = common.load_requested_model(args, console) if args.model else None
    source: Any = open_artifact(args.source, model) if args.source is not None else model
    min_input_size = model.info.min_input_size if model is not None else source.metadata.min_input_size
    target, options, settings = settings_from_args(args, min_input_size)
    stem = Path(args.source).with_suffix(".onnx") if args.source else Path(f"{model.info.name}_x{model.info.scale}.onnx")
    output = args.output or Path(engine_path(stem, None, settings.precision,
                                             recipe_label(None, settings.calibration)).name)
    if output.suffix.lower() not in (".engine", ".plan"):
        raise SrExportError(f"-o {output}: an engine file ends in .engine or .plan")
    report: dict[str, Any] = {"onnx": str(args.source) if args.source else None, "settings": settings.to_dict()}
    try:
        result = build_cli.execute(console, source, target, output, precision=settings.precision, options=options,
                                   export=common.export_options_from_args(args), model=model, json_to=None,
                                   force=args.force)
    except BuildStopped as stopped:
        common.emit_json({**report, **_steps(stopped.result)}, args.json, console, force=args.force)
        raise
    common.emit_json({**report, **_steps(result)}, args.json, console, force=args.force)
    return 0


def _steps(result: Any) -> dict[str, Any]:
    """The report's ONNX, prepared ONNX and engine, each with its parity."""
    found: dict[str, Any] = {}
    export, prepared, engine = result.step("export"), result.step("prepared"), result.step("artifact")
    if export is not None:
        found["onnx"] = str(export.artifact.path)
    if prepared is not None:
        found["prepared_onnx"] = str(prepared.artifact.path)
        found["prepared_parity"] = prepared.check.parity.to_dict() if prepared.check else None
    if engine is not None:
        found["engine"] = str(engine.artifact.path)
        found["engine_parity"] = engine.check.parity.to_dict() if engine.check else None
    return found
