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

from sr_export.cli import common
from sr_export.core.errors import CheckFailed, SrExportError


def add_parser(commands: Any) -> None:
    trt = commands.add_parser("trt", help="build a TensorRT engine (FP32/FP16/INT8) with a bounded shape profile")
    common.add_model_arguments(trt, required=False)
    common.add_export_arguments(trt, shape=False)
    trt.add_argument("--from", dest="source", type=common.existing_file, metavar="MODEL.onnx",
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
    trt.add_argument("--workspace", type=int, metavar="MB", help="builder workspace limit (default 2048 MB)")
    trt.add_argument("--timing-cache", type=Path, metavar="PATH", help="timing cache to reuse and update")
    trt.add_argument("-o", "--output", type=Path, help="engine file (default: <model>_x<scale>_<precision>.engine)")
    common.add_json_argument(trt, "build report (prepared ONNX, parity, engine)")
    trt.set_defaults(handler=cmd_trt)


def settings_from_args(args: argparse.Namespace, min_input_size: int) -> Any:
    from sr_export.runtimes.tensorrt.settings import settings_from_options, shape_profile, with_overrides
    from sr_export.targets.profiles import load_profile

    options: dict[str, Any] = {}
    precision = "fp32"
    if args.target:
        profile = load_profile(args.target)
        if profile.backend != "tensorrt":
            raise SrExportError(f"target profile {profile.name} is for {profile.backend}, not tensorrt")
        options, precision = dict(profile.options), profile.precision
    if args.fp16 or args.int8:
        precision = "fp16" if args.fp16 else "int8"
    if args.entropy_calibrator:
        options["calibrator"] = "entropy"
    settings = settings_from_options(options, precision, min_input_size=min_input_size)
    if any(v is not None for v in (args.shape, args.min, args.opt, args.max)):
        profile_sizes = shape_profile(shape=args.shape, min=args.min, opt=args.opt, max=args.max,
                                      min_input_size=min_input_size)
        settings = with_overrides(settings, profile=profile_sizes)
    settings = with_overrides(settings, workspace_mb=args.workspace, timing_cache=args.timing_cache,
                              calibration=args.calib)
    if args.calib and settings.precision != "int8":
        raise SrExportError("--calib applies to --int8 only")
    return settings


def cmd_trt(args: argparse.Namespace) -> int:
    from sr_export.runtimes.tensorrt import TensorRTTarget
    from sr_export.runtimes.tensorrt.build import engine_path
    from sr_export.runtimes.tensorrt.onnx import prepare_onnx

    console = common.stderr_console()
    if args.source is None and args.model is None:
        raise SrExportError("say what to build: --model NAME (exported here) or --from model.onnx")
    model = common.load_requested_model(args, console) if args.model else None
    source = _source_onnx(args, model, console)
    settings = settings_from_args(args, source.metadata.min_input_size)
    output = args.output or Path(engine_path(source.path, None, settings.precision).name)
    if output.suffix.lower() not in (".engine", ".plan"):
        raise SrExportError(f"-o {output}: an engine file ends in .engine or .plan")
    with console.status(f"preparing the {settings.precision} ONNX graph"):
        prepared = prepare_onnx(source, settings, output.parent)
    report: dict[str, Any] = {"onnx": str(source.path), "prepared_onnx": str(prepared.path),
                              "settings": settings.to_dict()}
    reference = model or _rebuild_reference(prepared, console)
    parity = _prove_onnx(prepared, reference, console)
    report["prepared_parity"] = parity.to_dict()
    if not parity.passed:
        if prepared.path != source.path:
            prepared.path.unlink(missing_ok=True)
        common.emit_json(report, args.json, console)
        raise CheckFailed(f"the {settings.precision} ONNX fails parity in ONNX Runtime (worst PSNR "
                          f"{parity.worst_psnr_db:.1f} dB); no engine built")
    console.print(f"[green]proven[/green] {prepared.path} in ONNX Runtime (worst PSNR "
                  f"{parity.worst_psnr_db:.1f} dB, {settings.precision} tolerance)")
    try:
        with common.progress_bar(console) as bar:
            task = bar.add_task("building TensorRT engine", total=None)
            engine = TensorRTTarget().build(
                prepared, output, settings=settings,
                progress=lambda phase: bar.update(task, description=f"TensorRT: {phase}"),
            )
    except SrExportError:
        common.emit_json(report, args.json, console)
        raise
    report["engine"] = str(engine.path)
    console.print(f"[green]wrote[/green] {engine.path} ({settings.profile.describe()}) and its manifest")
    engine_parity = _prove_engine(engine, reference, console, settings.profile)
    report["engine_parity"] = engine_parity.to_dict()
    common.emit_json(report, args.json, console)
    if not engine_parity.passed:
        raise CheckFailed(f"the engine fails parity against PyTorch (worst PSNR {engine_parity.worst_psnr_db:.1f} dB)")
    return 0


def _source_onnx(args: argparse.Namespace, model: Any, console: Any) -> Any:
    from sr_export.runtimes.open import open_artifact

    if args.source is not None:
        return open_artifact(args.source, model)
    from sr_export.export.onnx import save_export

    options = common.export_options_from_args(args)
    folder = (args.output.parent if args.output else Path("."))
    with console.status(f"exporting {model.info.name} x{model.info.scale} to ONNX"):
        return save_export(model, options, folder)


def _rebuild_reference(artifact: Any, console: Any) -> Any:
    from sr_export.models.loader import ModelRequest, load_model

    meta = artifact.metadata
    if not meta.request:
        raise SrExportError(f"{artifact.path.name} records no model; pass --model (and --weights) for the "
                            "PyTorch reference its parity is proven against")
    with console.status("rebuilding the PyTorch reference from the ONNX metadata"):
        return load_model(ModelRequest.from_dict(meta.request))


def _prove(runner: Any, artifact: Any, model: Any, console: Any, sizes: Any = None) -> Any:
    from sr_export.checks.parity import run_parity
    from sr_export.cli.tables import parity_table
    from sr_export.data.parity_inputs import artifact_parity_inputs
    from sr_export.runtimes.pytorch import PyTorchRunner

    inputs = artifact_parity_inputs(model.info, artifact.metadata.static_hw, sizes)
    with console.status(f"checking {artifact.path.name} against PyTorch"):
        report = run_parity(runner, PyTorchRunner(model), inputs, data_range=model.info.data_range,
                            precision=artifact.metadata.precision)
    console.print(parity_table(report))
    return report


def _prove_onnx(artifact: Any, model: Any, console: Any) -> Any:
    from sr_export.runtimes.open import open_runner

    return _prove(open_runner(artifact), artifact, model, console)


def _prove_engine(engine: Any, model: Any, console: Any, profile: Any) -> Any:
    from sr_export.data.parity_inputs import DEFAULT_SIZES
    from sr_export.runtimes.open import open_runner

    # The usual parity sizes, moved inside the engine's profile.
    sizes = sorted({tuple(min(max(v, lo), hi) for v, lo, hi in zip(hw, profile.min, profile.max))
                    for hw in DEFAULT_SIZES})
    return _prove(open_runner(engine), engine, model, console, None if engine.metadata.static_hw else sizes)
