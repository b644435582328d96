"""INT8 on the command line: ``sr-export onnx --int8`` and the INT8 half of ``sr-export check``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.core.errors import SrExportError


def add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("int8")
    group.add_argument("--int8", action="store_true",
                       help="write a static INT8 (QDQ) artifact calibrated with --calib, checked on dataset PSNR drop")
    group.add_argument("--calib", default="default", metavar="RECIPE",
                       help="calibration recipe: a name in calibration/ or a .toml path (default: default)")
    group.add_argument("--keep-float", type=common.name_list, default=[], metavar="NAME,...",
                       help="further graph nodes or activation tensors to keep in float "
                       "(see `sr-bench int8-report` for a plan)")
    group.add_argument("--int8-flavour", choices=("onnxruntime", "tensorrt"), default="onnxruntime",
                       help="onnxruntime: uint8 activations, fastest on CPU; tensorrt: symmetric int8, "
                       "float bias, as TensorRT's parser wants")
    group.add_argument("--allow-calibration-overlap", action="store_true",
                       help="proceed (flagged) when the calibration folder holds evaluation images")
    group.add_argument("--trt-calibration-cache", type=Path, metavar="PATH",
                       help="also write a TensorRT 10 calibration cache from the same statistics")


def requested_recipe(args: argparse.Namespace) -> Any:
    """The --calib recipe when --int8 was asked (None otherwise), its image folder checked."""
    from sr_export.quantize.recipes import load_recipe

    if not args.int8:
        return None
    recipe = load_recipe(args.calib)
    check_recipe_images(recipe, args.scale, common.stderr_console())
    return recipe


def check_recipe_images(recipe: Any, scale: int | None, console: Any) -> None:
    """A recipe's image folder checked from the headers, before the model is loaded or exported; skipped
    images are warned about. ``scale`` None (not given) finds only images too small at every scale; the
    build checks again at the model's scale."""
    from sr_export.quantize.calibration_data import check_calibration_images

    checked = check_calibration_images(recipe, scale)
    for line in checked.warnings() if checked else []:
        common.warn(console, line)


def int8_report(args: argparse.Namespace, artifact: Any, check: Any, result: Any, console: Any) -> dict[str, Any]:
    """The INT8 half of ``sr-export onnx --int8``'s report; writes the TensorRT calibration cache when asked."""
    from sr_export.quantize.qdq import int8_details
    from sr_export.quantize.recipes import load_recipe
    from sr_export.quantize.statistics import cached_statistics
    from sr_export.quantize.tensorrt_cache import write_tensorrt_calibration_cache

    if result.calibration_overlap:
        common.warn(console, f"calibrating on {len(result.calibration_overlap)} evaluation image(s): "
                    f"{', '.join(result.calibration_overlap)}")
    details = int8_details(artifact.path) or {}
    report: dict[str, Any] = {"recipe": load_recipe(args.calib).to_dict(), "flavour": args.int8_flavour,
                              "calibration_overlap": result.calibration_overlap}
    if check is not None and check.dataset_drop is not None:
        report["dataset_drop"] = check.dataset_drop.to_dict()
    if args.trt_calibration_cache:
        statistics = cached_statistics(str(details.get("statistics_key")))
        if statistics is None:
            raise SrExportError("the calibration statistics of this build are not in the cache any more; run again")
        write_tensorrt_calibration_cache(statistics, args.trt_calibration_cache)
        console.print(f"wrote {args.trt_calibration_cache} (TensorRT calibration cache, "
                      f"{len(statistics.ranges)} tensors)")
    return report






def add_int8_report_parser(commands: Any) -> None:
    report = commands.add_parser("int8-report", help="float vs INT8: dataset PSNR, per-layer sensitivity, speed, "
                                 "suggested --keep-float plan")
    common.add_model_arguments(report)
    report.add_argument("--calib", default="default", metavar="RECIPE",
                        help="calibration recipe: a name in calibration/ or a .toml path (default: default)")
    report.add_argument("--dataset", required=True, help="evaluation folder (HR/ and optional LR_bicubic/X{s}/) "
                        "or 'builtin'")
    report.add_argument("--keep-float", type=common.name_list, default=[], metavar="NAME,...",
                        help="further nodes or activation tensors to keep in float (e.g. a plan this report "
                        "suggested)")
    report.add_argument("--int8-flavour", choices=("onnxruntime", "tensorrt"), default="onnxruntime")
    report.add_argument("--sensitivity-patches", type=common.count_argument, default=4, metavar="N",
                        help="calibration patches per layer or tensor for the sensitivity scan (default 4; 0 skips it)")
    report.add_argument("--sensitivity-mode", choices=("float-tensor", "float-one", "only"), default="float-tensor",
                        help="float-tensor (default): output PSNR regained when only that activation tensor is "
                        "float in the INT8 model; float-one: the same per conv layer; only: output PSNR vs float "
                        "when only that conv layer is INT8")
    report.add_argument("--suggest", type=common.count_argument, default=8, metavar="N",
                        help="tensors or layers in the suggested plan (default 8)")
    report.add_argument("--frontier", type=common.count_argument, default=0, metavar="N",
                        help="also walk the speed/quality frontier: from the all-integer graph, add up to N float "
                        "islands, each the most dB regained per ms lost (measured), and write each point's recipe, "
                        "artifact and a PNG (default 0: skip)")
    report.add_argument("--speed-size", type=common.size_argument, default=(128, 128), metavar="HxW",
                        help="LR size for the side-by-side timing (default 128x128)")
    report.add_argument("--runs", type=common.count_argument, default=5, help="timed runs per precision (default 5; 0 skips timing)")
    report.add_argument("--threads", type=common.threads_argument, help="CPU threads for both runners")
    report.add_argument("--allow-calibration-overlap", action="store_true",
                        help="proceed (flagged) when the calibration folder holds evaluation images")
    common.add_output_argument(report, "folder for the INT8 artifact and the sensitivity PNG (default: sr-bench-out)",
                               default=Path("sr-bench-out"), old_names=("--out-dir",))
    common.add_export_arguments(report, shape=False)
    common.add_json_argument(report, "INT8 report")
    report.set_defaults(handler=cmd_int8_report)


def cmd_int8_report(args: argparse.Namespace) -> int:
    from sr_export.bench.int8_report import Int8Report, compare_on_dataset, sensitivity_chart, suggest_keep_float
    from sr_export.bench.speed import measure
    from sr_export.core.errors import SrExportError
    from sr_export.data.datasets import load_dataset
    from sr_export.export.onnx import save_export
    from sr_export.quantize.calibration_data import check_calibration_images, check_no_overlap
    from sr_export.quantize.qdq import (
        artifact_statistics,
        int8_details,
        int8_filename,
        load_float_proto,
        plan_float_nodes,
        quantize_onnx,
    )
    from sr_export.quantize.recipes import load_recipe
    from sr_export.runtimes.onnxruntime.kernels import kernel_report
    from sr_export.runtimes.open import open_runner

    console = common.stderr_console()
    if args.sensitivity_patches < 0 or args.runs < 0 or args.suggest < 0 or args.frontier < 0:
        raise SrExportError("--sensitivity-patches, --runs, --suggest and --frontier must be >= 0")
    recipe = load_recipe(args.calib)
    if args.frontier and recipe.finetune is not None:
        raise SrExportError(f"--frontier quantises many plans; recipe {recipe.name} fine-tunes the weights for each "
                            "([finetune]), which takes minutes per plan; use its post-training recipe (e.g. default)")
    check_recipe_images(recipe, args.scale, console)  # before the model is loaded and exported
    model = common.load_requested_model(args, console)
    info = model.info
    check_calibration_images(recipe, info.scale)  # now at the model's own scale
    overlap = check_no_overlap(recipe, [args.dataset], info.scale, allow=args.allow_calibration_overlap)
    if overlap:
        common.warn(console, f"CALIBRATION OVERLAPS THE EVALUATION DATASET ({', '.join(overlap)}): "
                    "the INT8 figures below are flattering")
    pairs = load_dataset(args.dataset, info.scale)
    name = f"{info.name}_x{info.scale}"
    int8_stem = int8_filename(name, recipe.name, args.int8_flavour,  # the recipe and the plan in the name
                              args.keep_float).removesuffix(".onnx")
    with console.status(f"exporting {name} to ONNX") as status:
        float_artifact = save_export(model, common.export_options_from_args(args), args.output, f"{name}.onnx",
                                     say=status.update)
    proto = load_float_proto(float_artifact)
    with common.progress_bar(console) as progress:
        task = progress.add_task("calibrating", total=recipe.patch_count)
        statistics = artifact_statistics(float_artifact, recipe, proto, progress=lambda: progress.advance(task))
    plan = plan_float_nodes(proto, recipe, args.keep_float)
    with console.status(f"quantising ({recipe.summary()})"):
        int8_artifact = quantize_onnx(float_artifact, recipe, flavour=args.int8_flavour, keep_float=args.keep_float,
                                      output=args.output / f"{int8_stem}.onnx", statistics=statistics)
    float_runner = open_runner(float_artifact, threads=args.threads)
    int8_runner = open_runner(int8_artifact, threads=args.threads)
    with common.progress_bar(console) as progress:
        task = progress.add_task(f"float vs INT8 on {Path(args.dataset).name}", total=len(pairs))
        float_eval, int8_eval, between = compare_on_dataset(float_runner, int8_runner, info, pairs,
                                                            dataset=str(args.dataset),
                                                            progress=lambda: progress.advance(task))
    speed = None
    if args.runs:
        with common.progress_bar(console) as progress:
            task = progress.add_task("timing fp32 and int8 side by side", total=2 * args.runs)
            speed = measure({"fp32": float_runner, "int8": int8_runner}, info, [args.speed_size], runs=args.runs,
                            threads=args.threads, progress=lambda: progress.advance(task))
    sensitivity: list[Any] = []
    if args.sensitivity_patches:
        sensitivity = _measure_sensitivity(args, console, proto, statistics, recipe, float_artifact, plan)
    suggestion = suggest_keep_float(sensitivity, args.suggest)
    details = int8_details(int8_artifact.path) or {}
    in_float = {**details.get("float_nodes", {}), **details.get("float_tensors", {})}
    report = Int8Report(info.name, recipe.to_dict(), str(args.dataset), float_eval, int8_eval, between, speed,
                        tuple(sensitivity), in_float, suggestion, tuple(overlap),
                        kernels=kernel_report(int8_artifact.path, args.threads))
    frontier: list[Any] = []
    if args.frontier:
        tensors = suggestion if args.sensitivity_mode == "float-tensor" else ()
        frontier = _walk_frontier(args, console, float_artifact, proto, statistics, recipe, tuple(tensors), pairs)
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    _print_report(out, report, args, name)
    if frontier:
        _print_frontier(out, frontier, args, name, recipe)
    if sensitivity:
        order = [n.name for n in proto.graph.node] + [out for n in proto.graph.node for out in n.output]
        unit = "activation tensor" if args.sensitivity_mode == "float-tensor" else "layer"
        chart = sensitivity_chart(sensitivity, order, args.output / f"{int8_stem}_sensitivity.png",
                                  title=f"{name}: INT8 sensitivity per {unit} ({recipe.name})", highlight=suggestion)
        out.print(f"wrote {chart}")
    out.print(f"wrote {int8_artifact.path}")
    data = report.to_dict()
    if frontier:
        data["frontier"] = [point.to_dict() for point in frontier]
    common.emit_json(data, args.json, out, force=args.force)
    return 0


def _walk_frontier(args: argparse.Namespace, console: Any, float_artifact: Any, proto: Any, statistics: Any,
                   recipe: Any, tensors: tuple[str, ...], pairs: Any) -> list[Any]:
    from sr_export.bench.int8_frontier import FrontierSetting, frontier_points, walk_frontier

    setting = FrontierSetting(steps=args.frontier, sensitive_tensors=tensors,
                              patches=max(args.sensitivity_patches, 1), speed_size=args.speed_size,
                              runs=max(args.runs, 3), threads=args.threads, flavour=args.int8_flavour)
    with common.progress_bar(console) as progress:
        task = progress.add_task("frontier: choosing float islands", total=args.frontier)
        walk = walk_frontier(float_artifact, proto, statistics, recipe, setting,
                             progress=lambda: progress.advance(task))
        task = progress.add_task("frontier: building and scoring each point", total=len(walk))
        return frontier_points(walk, float_artifact, statistics, recipe, setting, output=args.output,
                               pairs=pairs, dataset=str(args.dataset), progress=lambda: progress.advance(task))


def _print_frontier(out: Any, frontier: list[Any], args: argparse.Namespace, name: str, recipe: Any) -> None:
    from rich.table import Table

    from sr_export.bench.plots import pareto_chart
    from sr_export.core.tolerances import INT8_MAX_DROP_DB

    table = Table(title=f"{name}: INT8 frontier from the all-integer graph (islands by dB regained per ms)",
                  title_justify="left", header_style="bold")
    for column in ("#", "island added", "drop dB", "speed vs FP32", "float convs", "transposes", "recipe"):
        table.add_column(column, justify="right" if column not in ("island added", "recipe") else "left")
    for index, point in enumerate(frontier):
        mark = " *" if point.on_front else ""
        table.add_row(f"{index}{mark}", point.step.label, f"{point.drop_db:.3f}", f"{point.speed_ratio:.2f}x",
                      str(len(point.kernels.float_convs)), str(point.kernels.transposes), point.recipe_path.name)
    out.print(table)
    out.print("* on the front (no other point is both faster and closer to FP32); each point builds with "
              "`--calib <its recipe>`")
    chart = pareto_chart([(f"{index}: {point.step.label.split(':')[0]}", point.latency_ms, point.drop_db,
                           point.on_front, False) for index, point in enumerate(frontier)],
                         args.output / f"{name}_int8-{recipe.name}_frontier.png", max_drop=INT8_MAX_DROP_DB,
                         title=f"{name}: INT8 drop vs latency as float islands are added ({recipe.name})",
                         xlabel=f"INT8 latency (ms, {args.speed_size[0]}x{args.speed_size[1]} LR, side by side)",
                         force=True, bound="INT8 check bound")
    out.print(f"wrote {chart}")


def _measure_sensitivity(args: argparse.Namespace, console: Any, proto: Any, statistics: Any, recipe: Any,
                         float_artifact: Any, plan: Any) -> list[Any]:
    from sr_export.quantize.graph import conv_nodes
    from sr_export.quantize.sensitivity import layer_sensitivity, tensor_sensitivity

    with common.progress_bar(console) as progress:
        if args.sensitivity_mode == "float-tensor":
            task = progress.add_task("per-tensor sensitivity", total=None)
            return tensor_sensitivity(proto, statistics, recipe, float_artifact, flavour=args.int8_flavour,
                                      exclude=plan.names(), float_tensors=plan.tensors(),
                                      patches=args.sensitivity_patches,
                                      on_count=lambda count: progress.update(task, total=count),
                                      progress=lambda: progress.advance(task))
        layers = [n.name for n in conv_nodes(proto.graph) if n.name not in plan.float_nodes]
        task = progress.add_task("per-layer sensitivity", total=len(layers))
        return layer_sensitivity(proto, statistics, recipe, float_artifact, flavour=args.int8_flavour,
                                 layers=layers, exclude=plan.names(), patches=args.sensitivity_patches,
                                 mode=args.sensitivity_mode, progress=lambda: progress.advance(task))


def _print_report(out: Any, report: Any, args: argparse.Namespace, name: str) -> None:
    from rich.table import Table

    table = Table(title=f"{name}: float vs INT8 on {args.dataset}", title_justify="left", header_style="bold")
    for column in ("", "PSNR-Y", "SSIM-Y", "PSNR-RGB", "median ms", "speed ratio"):
        table.add_column(column, justify="left" if not column else "right")
    timing = {t.runner: t for t in report.speed.timings} if report.speed else {}
    ratio = report.speed_ratio()
    for label, evaluation in (("fp32", report.float_eval), ("int8", report.int8_eval)):
        m = evaluation.mean
        ms = f"{timing[label].median_s * 1e3:.1f}" if label in timing else "-"
        speed = "1.00x" if label == "fp32" and ratio else (f"{ratio:.2f}x" if ratio else "-")
        table.add_row(label, f"{m.psnr_y:.3f}", f"{m.ssim_y:.4f}", f"{m.psnr_rgb:.3f}", ms, speed)
    out.print(table)
    out.print(f"Y-PSNR drop {report.drop_db:.3f} dB; INT8 output vs float output {report.mean_output_psnr_db:.2f} dB; "
              f"in float: {', '.join(report.float_nodes) or 'nothing'}")
    if report.kernels is not None:
        out.print(report.kernels.summary())
    if report.sensitivity:
        float_one = report.sensitivity[0].gain_db is not None
        unit = "tensors" if args.sensitivity_mode == "float-tensor" else "layers"
        what = ("output PSNR regained with only that one in float" if float_one
                else "output PSNR vs float with only that layer INT8")
        worst = Table(title=f"most sensitive {unit} ({what})", title_justify="left", header_style="bold")
        worst.add_column("tensor" if unit == "tensors" else "layer")
        worst.add_column("op")
        worst.add_column("gain dB" if float_one else "dB", justify="right")
        for layer in report.sensitivity[:10]:
            worst.add_row(layer.name, layer.op_type, f"{layer.gain_db:+.2f}" if float_one else f"{layer.psnr_db:.2f}")
        out.print(worst)
    if report.suggested_keep_float:
        out.print(f"suggested plan: --keep-float {','.join(report.suggested_keep_float)}")
