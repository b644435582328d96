"""``sr-export``: export models and check artifacts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.cli import common, int8_cli, proof, tflite_cli, trt_cli
from sr_export.core.errors import CheckFailed, SrExportError


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
    onnx.add_argument("-o", "--output", type=Path, help="output file (default: <model>_x<scale>.onnx)")
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
    check.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="tolerance set (default: artifact's)")
    check.add_argument("--threads", type=int, help="CPU threads for the runtimes")
    common.add_tiling_argument(check)
    check.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report")
    common.add_json_argument(check, "parity report")
    common.add_model_arguments(check, required=False)
    check.set_defaults(handler=cmd_check)

    trt_cli.add_parser(commands)
    caffe = commands.add_parser("import-caffe", help="convert the IDN authors' Caffe model to a PyTorch checkpoint")
    caffe.add_argument("prototxt", type=Path, help="deploy graph (e.g. IDN_x4_deploy.prototxt)")
    caffe.add_argument("caffemodel", type=Path, help="trained weights (e.g. IDN_x4.caffemodel)")
    caffe.add_argument("-o", "--output", type=Path, help="checkpoint to write (default: idn_x<scale>.pth)")
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
    import onnx

    from sr_export.core.artifacts import Artifact
    from sr_export.core.io import atomic_path
    from sr_export.export.onnx import default_filename, export_onnx

    console = common.stderr_console()
    recipe = int8_cli.requested_recipe(args)  # a bad recipe fails before the slow export
    model = common.load_requested_model(args, console)
    options = common.export_options_from_args(args)
    exporters = "dynamo, then legacy" if options.exporter == "auto" else options.exporter
    with console.status(f"exporting {model.info.name} x{model.info.scale} to ONNX ({exporters}; opset {options.opset})"):
        exported = export_onnx(model, options)
    for note in exported.notes[len(model.notes):]:
        common.warn(console, note)
    if args.int8:
        return int8_cli.write_int8(args, recipe, model, exported, console)
    output = args.output or Path(default_filename(model))
    report: dict[str, Any] = {"artifact": str(output), "metadata": exported.metadata.to_dict()}
    with atomic_path(output) as tmp:
        onnx.save(exported.proto, str(tmp))
        if not args.no_check:
            parity = proof.parity_against_pytorch(Artifact(tmp, exported.metadata), model, console)
            report["parity"] = parity.to_dict()
            if not parity.passed:
                common.emit_json(report, args.json, console)
                raise CheckFailed(
                    f"parity check failed (worst PSNR {parity.worst_psnr_db:.1f} dB); {output} was not written "
                    "(--no-check writes it anyway)"
                )
    meta = exported.metadata
    size_kb = output.stat().st_size / 1024
    if options.shape is None:
        verified = ", ".join(f"{h}x{w}" for h, w in meta.verified_sizes)
        shape = f"dynamic HxW, verified at {verified}"
    else:
        shape = f"fixed {options.shape[0]}x{options.shape[1]}"
    simplified = "simplified" if meta.simplified else "not simplified"
    console.print(f"[green]wrote[/green] {output} ({size_kb:.0f} KiB, {meta.exporter} exporter, opset {meta.opset}, "
                  f"{shape}, {simplified})")
    common.emit_json(report, args.json, console)
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
    common.emit_json(result.to_dict(), args.json, out)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sr_export.checks.parity import run_parity
    from sr_export.cli.tables import parity_table
    from sr_export.data.parity_inputs import artifact_parity_inputs, folder_parity_inputs
    from sr_export.models.loader import ModelRequest, load_model
    from sr_export.runtimes.open import open_artifact, open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner

    console = common.stderr_console()
    described = common.load_requested_model(args, console) if args.model else None
    by_artifact = args.against != "pytorch"
    measured = {"measure": by_artifact, "data_range": args.data_range, "in_channels": args.in_channels}
    artifact = open_artifact(args.artifact, described, **measured)
    meta = artifact.metadata
    if not by_artifact:
        model = described
        if model is None and not meta.request:
            raise SrExportError(f"{args.artifact} records no model to rebuild; pass --model for the PyTorch reference")
        if model is None:
            with console.status("rebuilding the PyTorch reference from the artifact's metadata"):
                model = load_model(ModelRequest.from_dict(meta.request))
            if meta.weights_sha256 and model.weights_sha256 != meta.weights_sha256:
                raise SrExportError(
                    f"the checkpoint {model.weights_path} changed since {args.artifact.name} was exported "
                    "(sha256 differs); pass --model/--weights for the reference"
                )
        reference = PyTorchRunner(model, args.threads)
        info = model.info
    else:
        reference_artifact = open_artifact(Path(args.against), described, **measured)
        reference = open_runner(reference_artifact, threads=args.threads, tile_overlap=args.tile_overlap)
        info = meta.model_info()
    candidate = open_runner(artifact, threads=args.threads, tile_overlap=args.tile_overlap)
    static = meta.static_hw
    if args.images:
        inputs = folder_parity_inputs(info, args.images, static)
    else:
        inputs = artifact_parity_inputs(info, static, args.sizes)
    precision = args.precision or meta.precision
    with common.progress_bar(console) as progress:
        task = progress.add_task(f"parity {artifact.path.name}", total=len(inputs))
        report = run_parity(candidate, reference, inputs, data_range=info.data_range, precision=precision,
                            progress=lambda: progress.advance(task))
    console.print(parity_table(report))
    result = {"artifact": str(artifact.path), **report.to_dict()}
    drop = None
    if report.tolerance.max_psnr_drop_db is not None:  # INT8: judged on a dataset too
        drop = proof.builtin_dataset_drop(candidate, reference, info, report.tolerance.max_psnr_drop_db, console)
        result["dataset_drop"] = drop.to_dict()
    common.emit_json(result, args.json, console)
    if args.junit:
        report.write_junit(args.junit)
        console.print(f"wrote {args.junit}")
    if not report.passed:
        raise CheckFailed(f"parity check failed for {artifact.path} (worst PSNR {report.worst_psnr_db:.1f} dB)")
    if drop is not None and not drop.passed:
        raise CheckFailed(f"INT8 check failed for {artifact.path}: {drop.reason()}")
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
    common.emit_json(rows, args.json, console)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from sr_export.cli.tables import metadata_table
    from sr_export.core.artifacts import read_metadata

    metadata = read_metadata(args.artifact)
    if metadata is None:
        raise SrExportError(f"{args.artifact} carries no sr-export metadata (not exported by sr-export)")
    console = common.stderr_console() if args.json == "-" else common.stdout_console()
    console.print(metadata_table(args.artifact, metadata))
    common.emit_json(metadata.to_dict(), args.json, console)
    return 0
