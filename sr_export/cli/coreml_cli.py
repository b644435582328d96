"""``sr-export coreml``: convert a model to a Core ML ML Program and prove it matches PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import build_cli, common
from sr_export.core.errors import SrExportError


def range_argument(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be MINxMIN:MAXxMAX (e.g. 32x32:1080x1920), got '{text}'")
    low, high = common.size_argument(parts[0]), common.size_argument(parts[1])
    if low[0] > high[0] or low[1] > high[1]:
        raise argparse.ArgumentTypeError(f"must be MINxMIN:MAXxMAX with the minimum at most the maximum in height "
                                         f"and width, got '{text}'")
    return low, high


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # No import of sr_export.runtimes here: `sr-export --help` must not load numpy or coremltools.
    common.add_model_arguments(parser)
    group = parser.add_argument_group("Core ML")
    sizes = group.add_mutually_exclusive_group()
    sizes.add_argument("--shape", type=common.size_argument, metavar="HxW",
                       help="one fixed LR input size (other sizes then run in tiles)")
    sizes.add_argument("--shapes", type=common.sizes_argument, metavar="HxW,HxW,...",
                       help="enumerated LR input sizes the program takes")
    sizes.add_argument("--range", dest="size_range", type=range_argument, metavar="MINxMIN:MAXxMAX",
                       help="any LR size in this box (the default, 32x32:1024x1024)")
    precision = group.add_mutually_exclusive_group()
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                           help="compute in float16 (the default; what the GPU and Neural Engine run)")
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                           help="compute in float32 (CPU and GPU only)")
    group.add_argument("--int8-weights", action="store_true",
                       help="store weights as linear 8-bit integers (about half the FP16 size)")
    group.add_argument("--deployment-target", metavar="OS",
                       help="oldest OS the program must run on: iOS15-iOS18 or macOS12-macOS15 (default iOS17)")
    group.add_argument("--route", choices=("auto", "export", "trace"), default="auto",
                       help="auto (default): torch.export, then torch.jit.trace")
    group.add_argument("--no-rewrite", action="store_true",
                       help="convert the model as written (no Core ML rewrites; for debugging)")
    parser.add_argument("--no-check", action="store_true", help="skip the final parity check")
    common.add_output_argument(parser, "output package (default: <model>_x<scale>_fp16.mlpackage; "
                              "<model>_x<scale>.mlpackage with --fp32, ..._w8 with --int8-weights)")
    common.add_json_argument(parser, "export report (metadata, conversion and parity)")
    parser.set_defaults(precision="fp16")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The coreml runtime's options (sr_export.runtimes.coreml.options) from the command line."""
    options: dict[str, Any] = {"int8_weights": args.int8_weights, "rewrite": not args.no_rewrite, "route": args.route}
    if args.shapes:
        options["shapes"] = [f"{h}x{w}" for h, w in args.shapes]
    if args.size_range:
        (h0, w0), (h1, w1) = args.size_range
        options["range"] = f"{h0}x{w0}:{h1}x{w1}"
    if args.deployment_target:
        options["deployment_target"] = args.deployment_target
    return options

def cmd_coreml(args: argparse.Namespace) -> int:
    """``sr-export coreml``: ``build --target coreml`` from a model."""
    from sr_export.runtimes.coreml.package import default_filename

    if args.output is not None and args.output.suffix.lower() != ".mlpackage":
        raise SrExportError(f"a Core ML package ends in .mlpackage: {args.output}")
    console = common.stderr_console()
    model = common.load_requested_model(args, console)
    output = args.output or Path(default_filename(model, args.precision, args.int8_weights))
    result = build_cli.execute(console, model, "coreml", output, precision=args.precision,
                               options=options_from_args(args), shape=args.shape, check=not args.no_check,
                               force=args.force, json_to=args.json,
                               failure_hint="--fp32 computes in float32; --no-check writes it anyway")
    artifact, check = result.artifact, result.steps[-1].check
    for note in artifact.details.get("notes", ()):
        if note.startswith("converted with"):
            common.warn(console, note)
        else:
            console.print(note)
    report: dict[str, Any] = {"artifact": str(artifact.path), "metadata": artifact.metadata.to_dict(),
                              **{k: v for k, v in artifact.details.items() if k != "notes"}}
    if check is not None:
        report["parity"] = check.parity.to_dict()
    common.emit_json(report, args.json, console, force=args.force)
    return 0
