"""``sr-export build``: a model or an artifact built for a target profile or runtime, every file proven first.

The per-runtime commands (``onnx``, ``tflite``, ``coreml``, ``trt``) map their
flags onto the same build (:func:`sr_export.api.build_steps`) and print with
the helpers here.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.core.errors import SrExportError
from sr_export.core.precisions import PRECISIONS


def add_parser(commands: Any) -> None:
    build = commands.add_parser(
        "build", help="build a model or an artifact for a target profile or runtime; only proven files are written")
    build.add_argument("--target", required=True, metavar="PROFILE|RUNTIME",
                       help="a target profile (cpu, cpu-int8, tflite, tflite-int8, trt-fp16, ...), a profile .toml, "
                       "or a runtime name (onnxruntime, tflite, coreml, tensorrt; see `sr-export runtimes`)")
    common.add_model_arguments(build, required=False)
    build.add_argument("--from", dest="source", type=common.existing_path, metavar="ARTIFACT",
                       help="build from this artifact (e.g. an ONNX file) instead of --model")
    build.add_argument("--precision", choices=PRECISIONS, help="override the profile's precision")
    build.add_argument("--calib", metavar="RECIPE", help="INT8 calibration recipe (a name in calibration/ or a .toml)")
    build.add_argument("--shape", type=common.size_argument, action="append", metavar="HxW",
                       help="LR input size: one file per size for fixed-size formats (TFLite), a fixed ONNX export "
                       "otherwise (default: the profile's first size, or dynamic)")
    build.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="a runtime option over the profile's [options] (TOML value; repeatable)")
    build.add_argument("--for-runtime", metavar="NAME==VERSION",
                       help="the runtime the device has (tflite-runtime==2.14): the file is fitted to it or refused "
                       "(default: the profile's [device] runtime, else today's)")
    build.add_argument("--no-check", action="store_true", help="write without checking against PyTorch")
    common.add_export_arguments(build, shape=False)
    common.add_output_argument(build, "output file, or a folder for it (default: the current folder)")
    common.add_json_argument(build, "build report (every file written and its check)")
    build.set_defaults(handler=cmd_build)


def parse_option(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE read as TOML (true, 2048, ["a", "b"]); a bare word stays a string."""
    from sr_export.core.resources import tomllib

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SrExportError(f"--option wants KEY=VALUE, not '{text}'")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def cmd_build(args: argparse.Namespace) -> int:
    console = common.stderr_console()
    if args.source is None and args.model is None:
        raise SrExportError("say what to build: --model NAME (exported here) or --from ARTIFACT")
    options = dict(parse_option(text) for text in args.option)
    if args.for_runtime:
        _check_for_runtime(args.target)
        options["for_runtime"] = args.for_runtime
    model = common.load_requested_model(args, console) if args.model else None
    source: Any = model
    if args.source is not None:
        from sr_export.runtimes.open import open_artifact

        source = open_artifact(args.source, model)
    output = args.output or Path(".")
    shapes = args.shape or [None]
    if len(shapes) > 1 and output.suffix:
        raise SrExportError(f"{len(shapes)} shapes make {len(shapes)} files; give -o a folder, not {output.name}")
    reports = []
    for shape in shapes:
        result = execute(console, source, args.target, output, precision=args.precision, calibration=args.calib,
                         options=options, shape=shape, check=not args.no_check,
                         export=replace(common.export_options_from_args(args), shape=shape), model=model, json_to=args.json,
                         force=args.force)
        reports.append(build_report(result))
    common.emit_json(reports[0] if len(reports) == 1 else reports, args.json, console, force=args.force)
    return 0


def _check_for_runtime(target: str) -> None:
    """--for-runtime is for targets whose runtime fits its files to a device's runtime version (TFLite: op
    versions and kernels; Core ML: the deployment target)."""
    from sr_export.targets.profiles import load_target

    runtime = load_target(target).require_backend()
    if "for_runtime" not in getattr(runtime.options, "__dataclass_fields__", {}):
        raise SrExportError(f"--for-runtime fits TFLite files (and Core ML programs) to a device's runtime; target "
                            f"{target} builds for {runtime.label or runtime.name}, whose files record what they need "
                            "(sr-export info)")


def execute(console: Any, source: Any, target: Any, output: Path, *, json_to: str | None = None,
            failure_hint: str = "", **build_args: Any) -> Any:
    """Build with a status line, print each file's check table and where it went; a failed check or a missing
    runtime still prints what was done (and writes the JSON report) before the one-line error."""
    from sr_export import api
    from sr_export.bench.build import BuildCheckFailed, BuildStopped
    from sr_export.core.errors import CheckFailed

    with console.status("building") as status:
        try:
            result = api.build_steps(source, target, output, say=lambda text: status.update(text), **build_args)
        except BuildCheckFailed as failed:
            print_steps(console, failed.result)
            print_check(console, failed.report)
            common.emit_json({**build_report(failed.result), "failed": failed.report.to_dict()}, json_to, console, force=build_args.get("force", False))
            hint = f" ({failure_hint})" if failure_hint else " (--no-check writes it anyway)"
            raise CheckFailed(f"{'INT8 check' if failed.report.dataset_drop else 'parity check'} failed "
                              f"({failed.report.failure()}); {failed.destination} was not written{hint}") from failed
        except BuildStopped as stopped:
            print_steps(console, stopped.result)
            common.emit_json(build_report(stopped.result), json_to, console, force=build_args.get("force", False))
            raise
    print_steps(console, result)
    return result


def print_check(console: Any, report: Any) -> None:
    from sr_export.cli.tables import parity_table

    console.print(parity_table(report.parity))
    drop = report.dataset_drop
    if drop is not None:
        colour = "green" if drop.passed else "red"
        bound = f" (bound {drop.max_drop_db:g} dB)" if drop.max_drop_db is not None else ""
        console.print(f"Y-PSNR on built-in images: reference {drop.reference.mean.psnr_y:.3f} dB, "
                      f"INT8 {drop.candidate.mean.psnr_y:.3f} dB, [{colour}]drop {drop.drop_db:.3f} dB[/{colour}]"
                      f"{bound}")


def print_steps(console: Any, result: Any) -> None:
    for step in result.steps:
        if step.check is not None:
            print_check(console, step.check)
        meta = step.artifact.metadata
        size = _size_kib(step.artifact.path)
        what = describe(meta)
        if step.role == "prepared" and step.check is not None:
            console.print(f"[green]proven[/green] {step.artifact.path} in {step.check.parity.candidate.split()[0]} "
                          f"(worst PSNR {step.check.worst_psnr_db:.1f} dB, {meta.precision} tolerance)")
        proof = "" if step.check is not None else (
            ", proven as it was exported" if step.role == "export" else ", not checked here")
        console.print(f"[green]wrote[/green] {step.artifact.path} ({size:.0f} KiB, {what}{proof})")


def describe(meta: Any) -> str:
    """'onnx for onnxruntime, fp32, dynamo exporter, opset 18, dynamic HxW verified at 64x64, ..., simplified'."""
    parts = [meta.describe_format(), meta.precision]
    if meta.exporter:
        parts.append(f"{meta.exporter} exporter" + (f", opset {meta.opset}" if meta.opset else ""))
    if meta.static_hw is not None:
        parts.append(f"fixed {meta.static_hw[0]}x{meta.static_hw[1]} {meta.layout}")
    elif meta.verified_sizes:
        parts.append("dynamic HxW, verified at " + ", ".join(f"{h}x{w}" for h, w in meta.verified_sizes))
    if meta.format == "onnx" and meta.exporter in ("dynamo", "legacy"):
        parts.append("simplified" if meta.simplified else "not simplified")
    return ", ".join(parts)


def _size_kib(path: Path) -> float:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024
    return path.stat().st_size / 1024


def build_report(result: Any) -> dict[str, Any]:
    return {
        "artifact": str(result.artifact.path) if result.artifact else None,
        "steps": [{"role": s.role, "artifact": str(s.artifact.path), "metadata": s.artifact.metadata.to_dict(),
                   "check": s.check.to_dict() if s.check else None} for s in result.steps],
    }
