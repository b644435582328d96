"""``sr-export tflite``: convert with litert-torch, one file per --shape, each proven against PyTorch.

With ``--int8`` each file is quantised (ai-edge-quantizer, calibrated by a
recipe) and judged by the INT8 bounds: output PSNR against PyTorch and the
Y-PSNR lost on the built-in images, as ``sr-export onnx --int8`` is.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import build_cli, common, int8_cli
from sr_export.core.errors import CheckFailed, SrExportError

PROFILE = "tflite"  # the target profile builds go to; its first input size is the default shape


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_model_arguments(parser)
    group = parser.add_argument_group("tflite")
    group.add_argument("--shape", type=common.size_argument, action="append", metavar="HxW",
                       help="fixed LR input size; repeat for one file per size (default: the tflite profile's "
                       "first size); other sizes run tiled")
    group.add_argument("--fp16", action="store_true", help="store weights as float16 (compute stays float32)")
    group.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                       help="I/O layout of the file (default nhwc, TFLite's own); recorded in the metadata")
    group.add_argument("--for-runtime", metavar="NAME==VERSION",
                       help="the runtime the device has (tflite-runtime==2.14, ai-edge-litert==1.4, tensorflow==2.16): "
                       "ops it has no integer kernel for stay float inside the file, anything else it lacks is "
                       "refused; the metadata records it (default: today's LiteRT; the file's minimum is recorded)")
    group.add_argument("--no-rewrite", action="store_true",
                       help="convert the module as it is, without the SR-aware rewrites (for debugging)")
    int8 = parser.add_argument_group("int8")
    int8.add_argument("--int8", action="store_true",
                      help="static INT8 (int8 weights and activations) calibrated with --calib, via ai-edge-quantizer")
    int8.add_argument("--calib", metavar="RECIPE",
                      help="calibration recipe: a name in calibration/ or a .toml path (default: default; "
                      "qat-full with --int8-scheme full, which fine-tunes for minutes first)")
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
    common.add_output_argument(parser, "output file, or a folder (default: "
                               "<model>_x<scale>_<H>x<W>[_fp16|_int8...-<recipe>].tflite here)")
    common.add_json_argument(parser, "export report (metadata, rewrites and parity per file)")


def cmd_tflite(args: argparse.Namespace) -> int:
    """``sr-export tflite``: ``build --target tflite`` with one file per ``--shape``."""
    from sr_export.runtimes.tflite.convert import TfliteOptions
    from sr_export.targets.profiles import load_target

    console = common.stderr_console()
    int8 = _int8_options(args)  # a bad combination or recipe fails before the slow conversion
    model = common.load_requested_model(args, console)
    shapes = list(dict.fromkeys(args.shape or [load_target(PROFILE).input_sizes[0]]))
    if args.output is not None and args.output.suffix == ".tflite" and len(shapes) > 1:
        raise SrExportError(f"{len(shapes)} shapes make {len(shapes)} files; give -o a folder, not {args.output.name}")
    precision = "int8" if int8 is not None else "fp16" if args.fp16 else "fp32"
    options: dict[str, Any] = {"layout": args.layout, "rewrite": not args.no_rewrite, "for_runtime": args.for_runtime}
    if int8 is not None:
        from sr_export.runtimes.tflite.options import default_recipe

        options.update(calibration=args.calib or default_recipe(args.int8_scheme), int8_io=int8.io,
                       int8_scheme=int8.scheme)
    reports, failures = [], []
    for shape in shapes:
        naming = TfliteOptions(shape=shape, layout=args.layout, precision=precision, rewrite=not args.no_rewrite,
                               int8=int8, for_runtime=args.for_runtime)
        output = _output_path(args.output, model, naming)
        try:
            result = build_cli.execute(console, model, PROFILE, output, precision=precision, options=options,
                                       shape=shape, check=not args.no_check,
                                       allow_calibration_overlap=args.allow_calibration_overlap, force=args.force)
        except CheckFailed as failed:
            reason = failed.__cause__.report.failure() if hasattr(failed.__cause__, "report") else str(failed)
            reports.append({"artifact": str(output), "failure": reason})
            failures.append(reason)
            continue
        reports.append(_report(result, int8 is not None, console))
    common.emit_json(reports[0] if len(reports) == 1 else reports, args.json, console, force=args.force)
    if failures:
        reasons = "; ".join(dict.fromkeys(failures))
        raise CheckFailed(f"{'INT8 check' if int8 else 'parity check'} failed for {len(failures)} of {len(reports)} "
                          f"file(s) ({reasons}); they were not written (--no-check writes them anyway)")
    return 0


def _report(result: Any, int8: bool, console: Any) -> dict[str, Any]:
    artifact, check = result.artifact, result.steps[-1].check
    for note in artifact.details.get("notes", ()):
        console.print(f"[dim]{note}[/dim]")
    report: dict[str, Any] = {"artifact": str(artifact.path),
                              "convert_seconds": artifact.details.get("convert_seconds"),
                              "rewrites": artifact.details.get("rewrites", []), "metadata": artifact.metadata.to_dict()}
    if check is not None:
        report["parity"] = check.parity.to_dict()
        if check.dataset_drop is not None:
            report["dataset_drop"] = check.dataset_drop.to_dict()
        delegate = "xnnpack" if "tflite-xnnpack" in check.parity.candidate else "builtin"
        if int8:
            report["delegate"] = delegate
        if delegate != "xnnpack":
            common.warn(console, "XNNPACK cannot run this graph; LiteRT's built-in kernels run it, slower")
    if int8:
        if result.calibration_overlap:
            common.warn(console, f"calibrating on {len(result.calibration_overlap)} evaluation image(s): "
                        f"{', '.join(result.calibration_overlap)}")
        report["calibration_overlap"] = result.calibration_overlap
    return report


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
    from sr_export.quantize.recipes import load_recipe
    from sr_export.runtimes.tflite.int8 import DEFAULT_IO, TfliteInt8Options
    from sr_export.runtimes.tflite.options import default_recipe

    recipe = load_recipe(args.calib or default_recipe(args.int8_scheme))
    int8_cli.check_recipe_images(recipe, args.scale, common.stderr_console())
    return TfliteInt8Options(recipe, io=args.int8_io or DEFAULT_IO, scheme=args.int8_scheme)


def _output_path(output: Path | None, model: Any, options: Any) -> Path:
    from sr_export.runtimes.tflite.convert import default_filename

    name = default_filename(model, options)
    if output is None:
        return Path(name)
    if output.suffix == ".tflite":
        return output
    return output / name
