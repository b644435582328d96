"""``sr-export``: export models and check artifacts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.cli import build_cli, common, int8_cli, tflite_cli, trt_cli
from sr_export.core.errors import CheckFailed, SrExportError
from sr_export.core.precisions import PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    parser = common.ArgumentParser(
        prog="sr-export",
        description="Export PyTorch super-resolution models and prove the artifacts match.",
    )
    parser.add_argument("--version", action="version", version=f"sr-export {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    onnx = commands.add_parser("onnx", help="trace a model to a simplified, parity-checked ONNX file")
    common.add_model_arguments(onnx)
    common.add_export_arguments(onnx)
    onnx.add_argument("--no-check", action="store_true",
                      help="skip the final parity check (the graph is still proven at the export sizes)")
    common.add_output_argument(onnx, "output file (default: <model>_x<scale>.onnx; with --int8: "
                              "<model>_x<scale>_int8[_trt]-<recipe>.onnx)")
    int8_cli.add_int8_arguments(onnx)
    common.add_json_argument(onnx, "export report (metadata and parity)")
    onnx.set_defaults(handler=cmd_onnx)

    coreml = commands.add_parser("coreml", help="convert a model to a Core ML ML Program (.mlpackage), parity-checked")
    from sr_export.cli import coreml_cli

    coreml_cli.add_arguments(coreml)
    coreml.set_defaults(handler=coreml_cli.cmd_coreml)

    tflite = commands.add_parser("tflite", help="convert a model to TFLite (litert-torch) at fixed sizes, parity-checked")
    tflite_cli.add_arguments(tflite)
    tflite.set_defaults(handler=tflite_cli.cmd_tflite)

    check = commands.add_parser("check", help="parity of an artifact against PyTorch or another artifact")
    check.add_argument("artifact", type=Path)
    check.add_argument("--against", default="pytorch", help="'pytorch' (default) or a reference artifact")
    check.add_argument("--images", type=Path, help="folder of LR images (default: built-in photos)")
    check.add_argument("--sizes", type=common.sizes_argument, metavar="HxW,...",
                       help="LR sizes for built-in images (default 64x64,45x71)")
    check.add_argument("--precision", choices=PRECISIONS, help="tolerance set (default: artifact's)")
    check.add_argument("--threads", type=common.threads_argument, help="CPU threads for the runtimes")
    common.add_runtime_argument(check)
    check.add_argument("--runtime-python", type=Path, metavar="PATH",
                       help="run the artifact with the runtime of another Python environment (its python "
                       "executable; it needs numpy and the runtime only), e.g. a venv with tflite-runtime 2.14")
    common.add_tiling_argument(check)
    check.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    common.add_json_argument(check, "parity report")
    common.add_model_arguments(check, required=False)
    check.set_defaults(handler=cmd_check)

    trt_cli.add_parser(commands)
    build_cli.add_parser(commands)

    runtimes = commands.add_parser("runtimes", help="list the runtimes: what each builds from, runs and writes")
    common.add_json_argument(runtimes, "runtime listing")
    runtimes.set_defaults(handler=cmd_runtimes)

    caffe = commands.add_parser("import-caffe", help="convert the IDN authors' Caffe model to a PyTorch checkpoint")
    caffe.add_argument("prototxt", type=Path, help="deploy graph (e.g. IDN_x4_deploy.prototxt)")
    caffe.add_argument("caffemodel", type=Path, help="trained weights (e.g. IDN_x4.caffemodel)")
    common.add_output_argument(caffe, "checkpoint to write (default: idn_x<scale>.pth)")
    common.add_json_argument(caffe, "conversion report")
    caffe.set_defaults(handler=cmd_import_caffe)

    models = commands.add_parser("models", help="list the model zoo")
    common.add_json_argument(models, "zoo listing")
    models.set_defaults(handler=cmd_models)

    info = commands.add_parser("info", help="show the metadata an artifact carries")
    info.add_argument("artifact", type=Path)
    common.add_json_argument(info, "metadata")
    info.set_defaults(handler=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run(build_parser, argv)


def cmd_onnx(args: argparse.Namespace) -> int:
    """``sr-export onnx``: ``build --target onnxruntime`` (with ``--int8``: its INT8 QDQ build) from a model."""
    from sr_export.export.onnx import default_filename

    console = common.stderr_console()
    recipe = int8_cli.requested_recipe(args)  # a bad recipe fails before the slow export
    model = common.load_requested_model(args, console)
    export = common.export_options_from_args(args)
    if args.int8:
        from sr_export.quantize.qdq import int8_filename

        stem = default_filename(model, export.shape).removesuffix(".onnx")
        output = args.output or Path(int8_filename(stem, recipe.name, args.int8_flavour, args.keep_float))
        options = {"calibration": args.calib, "keep_float": list(args.keep_float), "flavour": args.int8_flavour}
        hint = ("--no-check writes it anyway; --calib mixed keeps the most sensitive activations in float, "
                "and `sr-bench int8-report` shows them")
    else:
        output, options, hint = args.output or Path(default_filename(model, export.shape)), {}, ""
    result = build_cli.execute(console, model, "onnxruntime", output, precision="int8" if args.int8 else "fp32",
                               calibration=args.calib if args.int8 else None, options=options, shape=export.shape,
                               check=not args.no_check, export=export, force=args.force, json_to=args.json, failure_hint=hint,
                               allow_calibration_overlap=getattr(args, "allow_calibration_overlap", False))
    artifact = result.artifact
    for note in artifact.metadata.notes:
        if note not in model.notes and not note.startswith(("INT8 QDQ", "float nodes", "float activations",
                                                                           "weights fine-tuned for INT8",
                                                                           "for ONNX Runtime's integer kernels:")):
            common.warn(console, note)
    final = result.steps[-1]
    report: dict[str, Any] = {"artifact": str(artifact.path), "metadata": artifact.metadata.to_dict()}
    if final.check is not None:
        report["parity"] = final.check.parity.to_dict()
    if args.int8:
        report.update(int8_cli.int8_report(args, artifact, final.check, result, console))
    common.emit_json(report, args.json, console, force=args.force)
    return 0




def cmd_import_caffe(args: argparse.Namespace) -> int:
    from sr_export.models.caffe.convert import TOLERANCE, convert, save

    console = common.stderr_console()
    with console.status(f"importing {args.caffemodel.name} and checking it against the Caffe graph"):
        result = convert(args.caffemodel, args.prototxt)
    output = args.output or Path(f"idn_x{result.imported.scale}.pth")
    result = save(result, output)
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    check = result.check
    out.print(f"idn x{result.imported.scale}: {len(result.imported.mapped)} blobs from "
              f"{len({m.layer for m in result.imported.mapped})} Caffe layers, {result.imported.params:,} parameters; "
              f"matches the Caffe graph to {check.max_abs_diff:.2g} (tolerance {TOLERANCE:g}) on a "
              f"{check.input_hw[1]}x{check.input_hw[0]} input")
    out.print(f"wrote {output}")
    common.emit_json(result.to_dict(), args.json, out, force=args.force)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sr_export import api
    from sr_export.bench.checking import reference_model
    from sr_export.runtimes.open import open_artifact

    console = common.stderr_console()
    described = common.load_requested_model(args, console) if args.model else None
    by_artifact = args.against != "pytorch"
    measured = {"measure": by_artifact, "data_range": args.data_range, "in_channels": args.in_channels}
    artifact = open_artifact(args.artifact, described, **measured)
    against: Any = described
    if by_artifact:
        against = open_artifact(Path(args.against), described, **measured)
    elif described is None:
        with console.status("rebuilding the PyTorch reference from the artifact's metadata"):
            against = reference_model(artifact.metadata, args.artifact)
    with common.progress_bar(console) as progress:
        task = progress.add_task(f"parity {artifact.path.name}", total=None)
        report = api.check(artifact, against=against, images=args.images, sizes=args.sizes, precision=args.precision,
                           runtime=args.runtime, threads=args.threads, tile_overlap=args.tile_overlap,
                           progress=lambda: progress.advance(task), runtime_python=args.runtime_python)
    build_cli.print_check(console, report)
    newer = _newer_runtime(artifact, report.parity.candidate, args)
    if newer:
        common.warn(console, newer)
    common.emit_json(report.to_dict(), args.json, console, force=args.force)
    if args.junit:
        report.parity.write_junit(args.junit, force=args.force)
        console.print(f"wrote {args.junit}")
    if not report.parity.passed:
        raise CheckFailed(f"parity check failed for {artifact.path} (worst PSNR {report.worst_psnr_db:.1f} dB)")
    if report.dataset_drop is not None and not report.dataset_drop.passed:
        raise CheckFailed(f"INT8 check failed for {artifact.path}: {report.dataset_drop.reason()}")
    return 0


def _newer_runtime(artifact: Any, candidate: str, args: argparse.Namespace) -> str | None:
    """The warning when the runtime that ran the check is newer than the one the artifact was built for."""
    from sr_export.runtimes.registry import runtime_for_artifact
    from sr_export.runtimes.tflite.releases import newer_than_built_for

    used = candidate if args.runtime_python else runtime_for_artifact(artifact.metadata, args.runtime).describe().get(
        "runtime", "")
    return newer_than_built_for(artifact.metadata.runtime_requirements, used)


def cmd_runtimes(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sr_export import api

    rows = api.runtimes()
    console = common.stdout_console() if args.json is None else common.stderr_console()
    table = Table(title="sr-export runtimes", title_justify="left", header_style="bold")
    for column in ("name", "builds from", "runs", "writes", "precisions", "extra", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row.get("consumes", "-"), ", ".join(row.get("reads", [])),
                      ", ".join(row.get("writes", [])), ", ".join(row.get("precisions", [])),
                      row.get("extra") or "-", row["status"])
    console.print(table)
    common.emit_json(rows, args.json, console, force=args.force)
    return 0



def cmd_models(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sr_export.models.registry import zoo

    rows = []
    for spec in zoo().values():
        official = ", ".join(f"x{w.scale}" for w in spec.official_weights) or "-"
        rows.append({
            "name": spec.name, "description": spec.description, "scales": list(spec.scales),
            "data_range": spec.data_range, "color": spec.color, "official_weights": official,
        })
    console = common.stdout_console() if args.json is None else common.stderr_console()
    table = Table(title="sr-export model zoo", title_justify="left", header_style="bold")
    for column in ("name", "description", "scales", "range", "input", "official weights"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["description"], ",".join(map(str, row["scales"])),
                      f"[0,{row['data_range']:g}]", row["color"].upper(), row["official_weights"])
    console.print(table)
    common.emit_json(rows, args.json, console, force=args.force)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from sr_export.cli.tables import metadata_table
    from sr_export.core.artifacts import read_metadata

    metadata = read_metadata(args.artifact)
    if metadata is None:
        raise SrExportError(f"{args.artifact} carries no sr-export metadata (not exported by sr-export)")
    if not metadata.runtime_requirements:
        from dataclasses import replace

        from sr_export.runtimes.registry import runtime_for_artifact

        # Files written before sr-export recorded it: computed from the file itself.
        needs = runtime_for_artifact(metadata).file_requirements(Path(args.artifact))
        metadata = replace(metadata, runtime_requirements=needs)
    console = common.stderr_console() if args.json == "-" else common.stdout_console()
    console.print(metadata_table(args.artifact, metadata))
    common.emit_json(metadata.to_dict(), args.json, console, force=args.force)
    return 0
