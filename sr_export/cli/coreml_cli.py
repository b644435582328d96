"""``sr-export coreml``: convert a model to a Core ML ML Program and prove it matches PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.core.errors import CheckFailed, SrExportError


def range_argument(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--range wants MINxMIN:MAXxMAX (e.g. 32x32:1080x1920), not '{text}'")
    return common.size_argument(parts[0]), common.size_argument(parts[1])


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
    parser.add_argument("-o", "--output", type=Path, help="output package (default: <model>_x<scale>.mlpackage)")
    common.add_json_argument(parser, "export report (metadata, conversion and parity)")
    parser.set_defaults(precision="fp16")


def options_from_args(args: argparse.Namespace) -> Any:
    from sr_export.runtimes.coreml.options import DEFAULT_DEPLOYMENT_TARGET, CoreMLOptions
    from sr_export.runtimes.coreml.sizes import InputSizes

    sizes = InputSizes.from_options(args.shape, tuple(args.shapes or ()), args.size_range)
    target = args.deployment_target or DEFAULT_DEPLOYMENT_TARGET
    return CoreMLOptions(precision=args.precision, deployment_target=target, sizes=sizes,
                         int8_weights=args.int8_weights, rewrite=not args.no_rewrite, route=args.route)


def cmd_coreml(args: argparse.Namespace) -> int:
    from sr_export.core.artifacts import Artifact
    from sr_export.core.io import atomic_directory
    from sr_export.runtimes.coreml.convert import convert_model
    from sr_export.runtimes.coreml.package import default_filename, package_size, save_program, write_sidecar

    if args.output is not None and args.output.suffix.lower() != ".mlpackage":
        raise SrExportError(f"a Core ML package ends in .mlpackage: {args.output}")
    console = common.stderr_console()
    model = common.load_requested_model(args, console)
    output = args.output or Path(default_filename(model))
    options = options_from_args(args)
    with console.status(f"converting {model.info.name} x{model.info.scale} to Core ML "
                        f"({options.precision}, {options.sizes.describe()})"):
        converted = convert_model(model, options)
    for note in converted.notes:
        if note.startswith("converted with"):
            common.warn(console, note)
        else:
            console.print(note)
    report: dict[str, Any] = {
        "artifact": str(output),
        "route": converted.route,
        "convert_seconds": round(converted.seconds, 2),
        "ops": converted.op_counts,
        "metadata": converted.metadata.to_dict(),
    }
    with atomic_directory(output) as tmp:
        save_program(converted, tmp)
        report["size_bytes"] = package_size(tmp)
        if not args.no_check:
            parity = _parity(Artifact(tmp, converted.metadata), model, options, console)
            report["parity"] = parity.to_dict()
            if not parity.passed:
                common.emit_json(report, args.json, console)
                raise CheckFailed(
                    f"parity check failed (worst PSNR {parity.worst_psnr_db:.1f} dB); {output} was not written "
                    "(--fp32 computes in float32; --no-check writes it anyway)"
                )
    write_sidecar(output, converted.metadata)
    console.print(f"[green]wrote[/green] {output} ({report['size_bytes'] / 1024:.0f} KiB, {converted.route}, "
                  f"{options.sizes.describe()}, {converted.seconds:.1f} s)")
    common.emit_json(report, args.json, console)
    return 0


def _parity(artifact: Any, model: Any, options: Any, console: Any) -> Any:
    from sr_export.checks.parity import run_parity
    from sr_export.cli.tables import parity_table
    from sr_export.data.parity_inputs import builtin_parity_inputs
    from sr_export.runtimes.coreml import CoreMLTarget
    from sr_export.runtimes.pytorch import PyTorchRunner

    runner = CoreMLTarget().load(artifact)
    inputs = builtin_parity_inputs(model.info, list(options.sizes.check_sizes()), 1)
    with common.progress_bar(console) as progress:
        task = progress.add_task(f"parity: {runner.name} vs PyTorch", total=len(inputs))
        report = run_parity(runner, PyTorchRunner(model), inputs, data_range=model.info.data_range,
                            precision=artifact.metadata.precision, progress=lambda: progress.advance(task))
    console.print(parity_table(report))
    return report
