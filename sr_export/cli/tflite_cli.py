"""``sr-export tflite``: convert with litert-torch, one file per --shape, each proven against PyTorch.

With ``--int8`` each file is quantised (ai-edge-quantizer, calibrated by a
recipe) and judged by the INT8 bounds: output PSNR against PyTorch and the
Y-PSNR lost on the built-in images, as ``sr-export onnx --int8`` is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.core.errors import CheckFailed, SrExportError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_model_arguments(parser)
    group = parser.add_argument_group("tflite")
    group.add_argument("--shape", type=common.size_argument, action="append", metavar="HxW",
                       help="fixed LR input size; repeat for one file per size (default: the tflite profile's "
                       "first size); other sizes run tiled")
    group.add_argument("--fp16", action="store_true", help="store weights as float16 (compute stays float32)")
    group.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                       help="I/O layout of the file (default nhwc, TFLite's own); recorded in the metadata")
    group.add_argument("--no-rewrite", action="store_true",
                       help="convert the module as it is, without the SR-aware rewrites (for debugging)")
    int8 = parser.add_argument_group("int8")
    int8.add_argument("--int8", action="store_true",
                      help="static INT8 (int8 weights and activations) calibrated with --calib, via ai-edge-quantizer")
    int8.add_argument("--calib", metavar="RECIPE",
                      help="calibration recipe: a name in calibration/ or a .toml path (default: default)")
    int8.add_argument("--int8-io", choices=("uint8", "int8", "float"),
                      help="I/O of an --int8 file: uint8 (default; raw 0..255 pixels, scale data_range/255, zero "
                      "point 0), int8 (same scale, zero point -128) or float (QUANTIZE/DEQUANTIZE at the ends)")
    int8.add_argument("--int8-scheme", choices=("sr-float", "sr-int16", "full"),
                      help="precision of the SR-sensitive ops (first conv and its readers, residual add, last conv + "
                      "upsampler, channel statistics): sr-float (default for SR-aware recipes) keeps them float, "
                      "the rest int8: most accurate, fast with XNNPACK; sr-int16 gives them 16-bit activations "
                      "(integer only, but XNNPACK has no 16x8 kernels: slow on CPUs); full makes every op int8 "
                      "(Mobile AI challenges, integer-only NPUs)")
    int8.add_argument("--allow-calibration-overlap", action="store_true",
                      help="proceed (flagged) when the calibration folder holds evaluation images")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the final check against PyTorch (fp32/fp16: parity; int8: output PSNR and "
                        "Y-PSNR drop on the built-in images)")
    parser.add_argument("-o", "--output", type=Path,
                        help="output file, or a folder (default: <model>_x<scale>_<H>x<W>[_fp16|_int8...].tflite here)")
    common.add_json_argument(parser, "export report (metadata, rewrites and parity per file)")


def cmd_tflite(args: argparse.Namespace) -> int:
    from sr_export.runtimes.tflite.convert import TfliteOptions, default_shape

    console = common.stderr_console()
    int8 = _int8_options(args)  # a bad combination or recipe fails before the slow conversion
    model = common.load_requested_model(args, console)
    overlap = _calibration_overlap(args, int8, model, console)
    shapes = list(dict.fromkeys(args.shape or [default_shape()]))
    if args.output is not None and args.output.suffix == ".tflite" and len(shapes) > 1:
        raise SrExportError(f"{len(shapes)} shapes make {len(shapes)} files; give -o a folder, not {args.output.name}")
    precision = "int8" if int8 is not None else "fp16" if args.fp16 else "fp32"
    reports, failures = [], []
    for shape in shapes:
        options = TfliteOptions(shape=shape, layout=args.layout, precision=precision, rewrite=not args.no_rewrite,
                                int8=int8)
        report = _convert_one(model, options, _output_path(args.output, model, options), args.no_check, console)
        if int8 is not None:
            report["calibration_overlap"] = overlap
        reports.append(report)
        if report.get("failure"):
            failures.append(report)
    common.emit_json(reports[0] if len(reports) == 1 else reports, args.json, console)
    if failures:
        reasons = "; ".join(dict.fromkeys(f["failure"] for f in failures))
        raise CheckFailed(f"{'INT8 check' if int8 else 'parity check'} failed for {len(failures)} of {len(reports)} "
                          f"file(s) ({reasons}); they were not written (--no-check writes them anyway)")
    return 0


def _int8_options(args: argparse.Namespace) -> Any:
    """The INT8 settings when --int8 was asked (None otherwise); refuses flags that do not go together."""
    int8_only = [flag for flag, value in (("--calib", args.calib), ("--int8-io", args.int8_io),
                                          ("--int8-scheme", args.int8_scheme),
                                          ("--allow-calibration-overlap", args.allow_calibration_overlap))
                 if value]
    if not args.int8:
        if int8_only:
            raise SrExportError(f"{', '.join(int8_only)} only apply with --int8")
        return None
    if args.fp16:
        raise SrExportError("--int8 and --fp16 exclude each other (an INT8 file has int8 weights)")
    from sr_export.quantize.recipes import DEFAULT_RECIPE, load_recipe
    from sr_export.runtimes.tflite.int8 import DEFAULT_IO, TfliteInt8Options

    return TfliteInt8Options(load_recipe(args.calib or DEFAULT_RECIPE), io=args.int8_io or DEFAULT_IO,
                             scheme=args.int8_scheme)


def _calibration_overlap(args: argparse.Namespace, int8: Any, model: Any, console: Any) -> list[str]:
    if int8 is None:
        return []
    from sr_export.data.datasets import BUILTIN
    from sr_export.quantize.calibration_data import check_no_overlap

    overlap = check_no_overlap(int8.recipe, [BUILTIN], model.info.scale, allow=args.allow_calibration_overlap)
    if overlap:
        common.warn(console, f"calibrating on {len(overlap)} evaluation image(s): {', '.join(overlap)}")
    return overlap


def _worst_psnr(parity: dict[str, Any]) -> float:
    return min((c["psnr_db"] for c in parity["cases"] if c["psnr_db"] is not None), default=float("inf"))


def _output_path(output: Path | None, model: Any, options: Any) -> Path:
    from sr_export.runtimes.tflite.convert import default_filename

    name = default_filename(model, options)
    if output is None:
        return Path(name)
    if output.suffix == ".tflite":
        return output
    return output / name


def _convert_one(model: Any, options: Any, output: Path, no_check: bool, console: Any) -> dict[str, Any]:
    from sr_export.core.artifacts import Artifact, sidecar_path
    from sr_export.core.io import atomic_path, write_json_atomic
    from sr_export.runtimes.tflite.convert import convert_tflite

    height, width = options.shape
    rewrites = "no rewrites" if not options.rewrite else "with SR rewrites"
    with console.status(f"converting {model.info.name} x{model.info.scale} at {height}x{width} to TFLite "
                        f"(litert-torch, {options.layout.upper()}, {options.precision}, {rewrites})") as status:
        converted = convert_tflite(model, options, progress=lambda message: status.update(message))
    for note in converted.notes:
        console.print(f"[dim]{note}[/dim]")
    report: dict[str, Any] = {"artifact": str(output), "convert_seconds": round(converted.seconds, 2),
                              "rewrites": list(converted.rewrites), "metadata": converted.metadata.to_dict()}
    try:
        with atomic_path(output) as tmp:
            tmp.write_bytes(converted.flatbuffer)
            if not no_check:
                artifact = Artifact(tmp, converted.metadata)
                if options.precision == "int8":
                    _check_int8(artifact, model, console, report)
                else:
                    _check_float(artifact, model, console, report)
                if report.get("failure"):
                    raise _NotWritten
            write_json_atomic(sidecar_path(output), converted.metadata.to_dict())
    except _NotWritten:
        return report
    size_kb = output.stat().st_size / 1024
    what = options.precision if options.int8 is None else (
        f"int8 {options.int8.resolved_scheme}, {options.int8.io} I/O, recipe {options.int8.recipe.name}")
    console.print(f"[green]wrote[/green] {output} ({size_kb:.0f} KiB, fixed {height}x{width} "
                  f"{options.layout.upper()}, {what}, converted in {converted.seconds:.1f} s)")
    return report


def _check_float(artifact: Any, model: Any, console: Any, report: dict[str, Any]) -> None:
    from sr_export.cli.proof import parity_against_pytorch

    parity = parity_against_pytorch(artifact, model, console)
    report["parity"] = parity.to_dict()
    if not parity.passed:
        report["failure"] = f"worst PSNR {_worst_psnr(report['parity']):.1f} dB"


def _check_int8(artifact: Any, model: Any, console: Any, report: dict[str, Any]) -> None:
    """INT8 bounds (sr_export.checks.parity / checks.int8): output PSNR and Y-PSNR drop, no FP32 elementwise bound."""
    from sr_export.cli.proof import check_int8_against_pytorch
    from sr_export.runtimes.tflite.runner import TfliteRunner

    runner = TfliteRunner(artifact)
    if runner.delegate != "xnnpack":
        common.warn(console, f"XNNPACK cannot run this INT8 graph ({runner.fallback_reason}); "
                    "LiteRT's built-in kernels run it, slower")
    report["delegate"] = runner.delegate
    if not check_int8_against_pytorch(artifact, model, console, report):
        report.setdefault("failure", "INT8 bounds not met")


class _NotWritten(Exception):
    """Raised inside the atomic write so a file that failed its parity check is discarded."""
