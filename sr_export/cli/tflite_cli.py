"""``sr-export tflite``: convert with litert-torch, one file per --shape, each proven against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.errors import CheckFailed, SrExportError


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
    parser.add_argument("--no-check", action="store_true", help="skip the final parity check against PyTorch")
    parser.add_argument("-o", "--output", type=Path,
                        help="output file, or a folder (default: <model>_x<scale>_<H>x<W>[_fp16].tflite here)")
    common.add_json_argument(parser, "export report (metadata, rewrites and parity per file)")


def cmd_tflite(args: argparse.Namespace) -> int:
    from sr_export.targets.tflite import TfliteOptions, default_shape

    console = common.stderr_console()
    model = common.load_requested_model(args, console)
    shapes = list(dict.fromkeys(args.shape or [default_shape()]))
    if args.output is not None and args.output.suffix == ".tflite" and len(shapes) > 1:
        raise SrExportError(f"{len(shapes)} shapes make {len(shapes)} files; give -o a folder, not {args.output.name}")
    reports, failures = [], []
    for shape in shapes:
        options = TfliteOptions(shape=shape, layout=args.layout, precision="fp16" if args.fp16 else "fp32",
                                rewrite=not args.no_rewrite)
        report = _convert_one(model, options, _output_path(args.output, model, options), args.no_check, console)
        reports.append(report)
        if report.get("parity") and not report["parity"]["passed"]:
            failures.append(report)
    common.emit_json(reports[0] if len(reports) == 1 else reports, args.json, console)
    if failures:
        worst = min(_worst_psnr(f["parity"]) for f in failures)
        raise CheckFailed(f"parity check failed for {len(failures)} of {len(reports)} file(s) (worst PSNR {worst:.1f} dB); "
                          "they were not written (--no-check writes them anyway)")
    return 0


def _worst_psnr(parity: dict[str, Any]) -> float:
    return min((c["psnr_db"] for c in parity["cases"] if c["psnr_db"] is not None), default=float("inf"))


def _output_path(output: Path | None, model: Any, options: Any) -> Path:
    from sr_export.targets.tflite import default_filename

    name = default_filename(model, options)
    if output is None:
        return Path(name)
    if output.suffix == ".tflite":
        return output
    return output / name


def _convert_one(model: Any, options: Any, output: Path, no_check: bool, console: Any) -> dict[str, Any]:
    from sr_export.artifacts import Artifact, sidecar_path
    from sr_export.cli.export_cli import _parity_against_pytorch
    from sr_export.io import atomic_path, write_json_atomic
    from sr_export.targets.tflite import convert_tflite

    height, width = options.shape
    rewrites = "no rewrites" if not options.rewrite else "with SR rewrites"
    with console.status(f"converting {model.info.name} x{model.info.scale} at {height}x{width} to TFLite "
                        f"(litert-torch, {options.layout.upper()}, {options.precision}, {rewrites})"):
        converted = convert_tflite(model, options)
    for note in converted.notes:
        console.print(f"[dim]{note}[/dim]")
    report: dict[str, Any] = {"artifact": str(output), "convert_seconds": round(converted.seconds, 2),
                              "rewrites": list(converted.rewrites), "metadata": converted.metadata.to_dict()}
    try:
        with atomic_path(output) as tmp:
            tmp.write_bytes(converted.flatbuffer)
            if not no_check:
                parity = _parity_against_pytorch(Artifact(tmp, converted.metadata), model, console)
                report["parity"] = parity.to_dict()
                if not parity.passed:
                    raise _NotWritten
            write_json_atomic(sidecar_path(output), converted.metadata.to_dict())
    except _NotWritten:
        return report
    size_kb = output.stat().st_size / 1024
    console.print(f"[green]wrote[/green] {output} ({size_kb:.0f} KiB, fixed {height}x{width} "
                  f"{options.layout.upper()}, {options.precision}, converted in {converted.seconds:.1f} s)")
    return report


class _NotWritten(Exception):
    """Raised inside the atomic write so a file that failed its parity check is discarded."""
