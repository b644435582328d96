"""``sr-bench``: complexity, quality and speed, and the one-command demo."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.cli import common, harness_cli, int8_cli, tune_cli
from sr_export.core.errors import CheckFailed, SrExportError

DEFAULT_OUT_DIR = Path("sr-bench-out")


def build_parser() -> argparse.ArgumentParser:
    parser = common.ArgumentParser(
        prog="sr-bench",
        allow_abbrev=False,  # top-level options must not swallow a sub-command's (report --out)
        description="Measure SR models and their artifacts. Without a command: run a benchmark suite "
        "(export, parity, profile, speed, quality) on a target.",
    )
    parser.add_argument("--version", action="version", version=f"sr-bench {__version__}")
    parser.add_argument("--target", default="cpu", help="target profile name or .toml path, or a runtime name "
                        "(default: cpu)")
    parser.add_argument("--suite", default="default", help="benchmark suite name or .toml path (default: default)")
    common.add_output_argument(parser, "folder for artifacts and results (default: sr-bench-out)",
                               default=DEFAULT_OUT_DIR, old_names=("--out-dir",))
    harness_cli.add_run_arguments(parser)
    parser.set_defaults(handler=cmd_suite)  # plain `sr-bench` runs the suite
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    harness_cli.add_commands(commands)

    profile = commands.add_parser("profile", help="params, FLOPs, activations, #conv (AIM counter and ONNX graph)")
    common.add_model_arguments(profile)
    profile.add_argument("--input", type=common.chw_argument, help="LR input CxHxW or HxW (default: the model's channels x256x256, as AIM/NTIRE)")
    profile.add_argument("--no-graph", action="store_true", help="skip the ONNX-graph count")
    profile.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                         help="ONNX exporter for the graph count (default auto: dynamo, then legacy)")
    profile.add_argument("--export-timeout", type=common.export_timeout_argument, metavar="SECONDS",
                         help="seconds each exporter attempt may take (default 300)")
    common.add_json_argument(profile, "profile")
    profile.set_defaults(handler=cmd_profile)

    evaluate = commands.add_parser("eval", help="PSNR / SSIM (Y and RGB) on a dataset")
    source = evaluate.add_argument_group("what to evaluate (an artifact, or a model run in PyTorch)")
    source.add_argument("--artifact", type=Path, help="exported artifact (e.g. model.onnx)")
    common.add_model_arguments(evaluate, required=False)
    evaluate.add_argument("--dataset", required=True, help="folder (HR/ and optional LR_bicubic/X{s}/) or 'builtin'")
    evaluate.add_argument("--threads", type=common.threads_argument, help="CPU threads")
    common.add_runtime_argument(evaluate)
    evaluate.add_argument("--protocol", choices=("auto", "standard", "idn"), default="auto",
                          help="standard: uint8 RGB LR images in, Y and RGB scores (every zoo model); idn: the IDN "
                          "authors' MATLAB test (Y only, float LR from the HR Y, their crop/shave, with the "
                          "bicubic baseline); auto (default): idn for Y-channel models, else standard")
    common.add_tiling_argument(evaluate)
    common.add_json_argument(evaluate, "scores")
    evaluate.set_defaults(handler=cmd_eval)

    speed = commands.add_parser("speed", help="latency of PyTorch eager and of artifacts, side by side")
    common.add_model_arguments(speed, required=False)
    speed.add_argument("--artifact", type=Path, action="append", default=[], help="artifact to time (repeatable)")
    speed.add_argument("--sizes", type=common.sizes_argument, metavar="HxW,...",
                       help="LR sizes (default: the target profile's, 256x256,360x640 for cpu)")
    speed.add_argument("--warmup", type=common.count_argument, help="untimed runs first (default: the profile's)")
    speed.add_argument("--runs", type=common.runs_argument, help="timed runs (default: the profile's)")
    speed.add_argument("--threads", type=common.threads_argument, help="CPU threads for every runner (default: the profile's)")
    speed.add_argument("--no-pytorch", action="store_true", help="do not time PyTorch eager")
    common.add_runtime_argument(speed)
    speed.add_argument("--plot", type=Path, metavar="PNG", help="write a latency chart")
    common.add_tiling_argument(speed)
    common.add_export_arguments(speed, shape=False)
    common.add_json_argument(speed, "timings")
    speed.set_defaults(handler=cmd_speed)

    int8_cli.add_int8_report_parser(commands)
    tune_cli.add_tune_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return common.run(build_parser, argv)


def cmd_profile(args: argparse.Namespace) -> int:
    from sr_export.bench.profile import profile_model
    from sr_export.cli.tables import graph_ops_table, profile_table

    console = common.stderr_console() if args.json == "-" else common.stdout_console()
    model = common.load_requested_model(args, common.stderr_console())
    channels_hw = _chw(args.input, model.info.in_channels)
    with common.stderr_console().status("counting"):
        report = profile_model(model, (1, *channels_hw), with_graph=not args.no_graph, exporter=args.exporter,
                               **common.export_timeout_keyword(args.export_timeout))
    console.print(profile_table(report))
    if report.aim_unavailable:
        common.warn(console, f"AIM counter unavailable: {report.aim_unavailable}")
    ops = graph_ops_table(report)
    if ops is not None:
        console.print(ops)
    if report.graph and report.graph.uncounted:
        common.warn(console, f"ONNX ops counted as zero work: {', '.join(report.graph.uncounted)}")
    common.emit_json(report.to_dict(), args.json, console, force=args.force)
    return 0


def _chw(text: str | None, channels: int) -> tuple[int, int, int]:
    """--input as (C, H, W); C defaults to the model's channels, H x W to the AIM/NTIRE 256x256."""
    from sr_export.core.sizes import parse_chw

    return (channels, 256, 256) if text is None else parse_chw(text, channels)

def cmd_eval(args: argparse.Namespace) -> int:
    from sr_export.bench.evaluate import evaluate
    from sr_export.cli.tables import eval_table
    from sr_export.data.datasets import load_dataset

    console = common.stderr_console()
    runner, info = _runner_for_eval(args, console)
    if args.scale is not None and args.scale != info.scale:
        raise SrExportError(f"the artifact is x{info.scale} but --scale {args.scale} was asked")
    pairs = load_dataset(args.dataset, info.scale)
    protocol = args.protocol if args.protocol != "auto" else ("idn" if info.color == "y" else "standard")
    if protocol == "idn":
        from sr_export.bench.idn_protocol import evaluate_luma as evaluate
        from sr_export.cli.tables import luma_eval_table as eval_table
    with common.progress_bar(console) as progress:
        task = progress.add_task(f"{info.name} x{info.scale} on {Path(args.dataset).name}", total=len(pairs))
        report = evaluate(runner, info, pairs, dataset=str(args.dataset), progress=lambda: progress.advance(task))
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    out.print(eval_table(report))
    common.emit_json(report.to_dict(), args.json, out, force=args.force)
    return 0


def _runner_for_eval(args: argparse.Namespace, console: Any) -> tuple[Any, Any]:
    from sr_export.runtimes.open import open_artifact, open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner

    if args.artifact is None and args.model is None:
        raise SrExportError("give --artifact FILE or --model NAME (with --weights) to evaluate")
    if args.artifact is not None:
        described = common.load_requested_model(args, console) if args.model else None
        artifact = open_artifact(args.artifact, described, measure=True, data_range=args.data_range,
                                 in_channels=args.in_channels)
        if artifact.metadata.random_init:
            common.warn(console, f"{args.artifact} was exported from a randomly initialised model")
        runner = open_runner(artifact, runtime=args.runtime, threads=args.threads, tile_overlap=args.tile_overlap)
        return runner, artifact.metadata.model_info()
    model = common.load_requested_model(args, console)
    return PyTorchRunner(model, args.threads), model.info


def cmd_speed(args: argparse.Namespace) -> int:
    """Times PyTorch eager and artifacts side by side; a model (or an artifact its runtime builds from) is built
    first exactly as the target profile says (precision, options, calibration)."""
    import tempfile

    from sr_export import api
    from sr_export.bench.build import BuildStopped
    from sr_export.bench.checking import reference_model
    from sr_export.bench.speed import measure
    from sr_export.cli.tables import speed_table
    from sr_export.runtimes.open import open_artifact, open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner
    from sr_export.targets.profiles import load_target

    console = common.stderr_console()
    profile = load_target(args.target)
    runtime = profile.validate()
    threads = args.threads if args.threads is not None else profile.threads
    model = common.load_requested_model(args, console) if args.model else None
    artifacts = [open_artifact(path, model, measure=True, data_range=args.data_range, in_channels=args.in_channels)
                 for path in args.artifact]
    if model is None and not artifacts:
        raise SrExportError("give --model NAME and/or --artifact FILE to time")
    if model is None and not args.no_pytorch and not artifacts[0].metadata.request:
        common.warn(console, f"{artifacts[0].path} records no PyTorch model; timing the artifacts only")
    elif model is None and not args.no_pytorch:
        with console.status("rebuilding the PyTorch model from the artifact's metadata"):
            model = reference_model(artifacts[0].metadata, artifacts[0].path)
    sizes = args.sizes or list(profile.input_sizes)
    runners: dict[str, Any] = {}
    if model is not None and not args.no_pytorch:
        runners["pytorch"] = PyTorchRunner(model, threads)
    with tempfile.TemporaryDirectory(prefix="sr-bench-") as scratch:
        # What the profile's runtime builds: the model itself, or artifacts in the format it builds from.
        sources: list[Any] = [a for a in artifacts if _builds_from(runtime, a, profile.precision)]
        if not artifacts and model is not None:
            sources = [model]
        built: dict[Any, Any] = {}
        for source in sources:
            shapes = sizes if runtime.fixed_size else [None]
            with console.status(f"building for {profile.name} ({profile.precision})"):
                for shape in shapes:
                    try:
                        result = api.build_steps(source, profile, Path(scratch), shape=shape, check=False,
                                                 export=common.export_options_from_args(args),
                                                 model=model)
                    except BuildStopped as stopped:
                        raise SrExportError(f"{stopped}; time the engine where TensorRT is (sr-bench speed "
                                            "--artifact on that machine)") from stopped
                    built.setdefault(id(source), []).append(result.artifact)
        for artifact in artifacts:
            if id(artifact) not in built:
                built[id(artifact)] = [artifact]
        for group in built.values():
            first = group[0]
            label = f"{args.runtime or first.metadata.backend}:{first.path.name}"
            opened = [open_runner(a, runtime=args.runtime, threads=threads, tile_overlap=args.tile_overlap)
                      for a in group]
            runners[label] = opened[0] if len(opened) == 1 else PerSize(dict(zip(sizes, opened)))
        info = model.info if model is not None else artifacts[0].metadata.model_info()
        warmup = profile.warmup if args.warmup is None else args.warmup
        runs = profile.runs if args.runs is None else args.runs
        if runs < 1:
            raise SrExportError("--runs must be at least 1")
        with common.progress_bar(console) as progress:
            task = progress.add_task("timing", total=runs * len(runners) * len(sizes))
            report = measure(runners, info, sizes, warmup=warmup, runs=runs, threads=threads,
                             progress=lambda: progress.advance(task))
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    out.print(speed_table(report, f"{info.name} x{info.scale}: latency on {profile.name} ({threads or 'all'} threads)"))
    if args.plot:
        from sr_export.bench.plots import latency_chart

        groups = [f"{h}x{w}" for h, w in dict.fromkeys(t.input_hw for t in report.timings)]
        series = {r: [t.median_s * 1e3 for t in report.timings if t.runner == r] for r in runners}
        latency_chart(groups, series, args.plot, title=f"{info.name} x{info.scale} latency", force=args.force)
        out.print(f"wrote {args.plot}")
    common.emit_json({"model": info.name, "scale": info.scale, **report.to_dict()}, args.json, out, force=args.force)
    return 0


def _builds_from(runtime: Any, artifact: Any, precision: str) -> bool:
    """An artifact the profile's runtime builds from (an FP32 ONNX for an INT8 profile), not one it runs as is."""
    meta = artifact.metadata
    return runtime.consumes == "onnx" and meta.format == "onnx" and meta.precision == "fp32" and (
        precision != "fp32" or meta.format not in runtime.reads)


class PerSize:
    """One fixed-size artifact per LR size, timed as one runner (TFLite files: one per size)."""

    def __init__(self, runners: dict[Any, Any]) -> None:
        self.runners = runners
        first = next(iter(runners.values()))
        self.name = first.name

    def infer(self, batch: Any) -> Any:
        runner = self.runners[(int(batch.shape[2]), int(batch.shape[3]))]
        output = runner.infer(batch)
        self.last_inference_time = runner.last_inference_time
        return output

def cmd_suite(args: argparse.Namespace) -> int:
    console, out = common.stderr_console(), common.stdout_console()
    plan = harness_cli.plan_from_args(args)
    # The output folder is made by the first file written into it, and removed again if nothing was.
    with harness_cli.removed_if_left_empty(args.output):
        outcome = harness_cli.run_plan(plan, args, console)
        failed = _write_suite_results(plan, outcome.rows, args.output, out)
    if outcome.lost:
        if failed:
            common.warn(console, f"parity failed for {', '.join(failed)}")
        harness_cli.report_lost([lost.line() for lost in outcome.lost], console)
    if failed:
        raise CheckFailed(f"parity failed for {', '.join(failed)}")
    return 0


def _write_suite_results(plan: Any, rows_by_target: list[tuple[Any, list[Any]]], folder: Path, out: Any) -> list[str]:
    """Print each target's table and write its JSON and chart; returns the runs whose parity failed."""
    from sr_export.bench.plots import latency_chart
    from sr_export.core.io import write_json_atomic
    from sr_export.core.naming import unused_stem

    failed = []
    for profile, rows in rows_by_target:
        if not rows:  # its device dropped out before any run finished
            continue
        suite = plan.suite
        timing = suite.timing(profile)
        out.print(harness_cli.suite_table(suite, profile, rows))
        size = timing.sizes[0]
        out.print(f"FLOPs at 1x3x{suite.profile_input[1]}x{suite.profile_input[2]}; latency = median of {timing.runs} "
                  f"runs at LR {size[0]}x{size[1]}; parity = worst PSNR between outputs over the built-in inputs.")
        run = run_id(rows)
        # Each run writes files of its own: a second run of the same suite never replaces the first's results.
        stem = unused_stem(folder, f"{suite.name}-{profile.name}-{run}", (".json", "-latency.png"))
        results = {
            "suite": suite.name,
            "run_id": run,
            "target": profile.to_dict(),
            "environment": harness_cli.local_environment(),
            "rows": [_row_dict(row) for row in rows],
        }
        json_path = write_json_atomic(folder / f"{stem}.json", results)
        label = harness_cli.target_label(profile)
        series = {name: [r.speed[name]["median_ms"] if name in r.speed else 0.0 for r in rows]
                  for name in ("pytorch", label) if any(name in r.speed for r in rows)}
        chart = latency_chart([f"{r.model} x{r.scale}" for r in rows], series, folder / f"{stem}-latency.png",
                              title=f"median latency, LR {size[0]}x{size[1]}, {profile.name}")
        out.print(f"wrote {json_path} and {chart}")
        failed += [f"{r.model} x{r.scale} on {profile.name}" for r in rows if r.parity_passed is False]
    return failed


def run_id(rows: list[Any]) -> str:
    """What names a run's result files: its first run number in the results history, else (--no-history) the
    UTC time it finished, to the second."""
    from sr_export.core.naming import run_stamp

    numbers = [row.record.id for row in rows if row.record is not None and row.record.id]
    return str(min(numbers)) if numbers else run_stamp()


def _row_dict(row: Any) -> dict[str, Any]:
    import math
    from dataclasses import asdict

    data = asdict(row)
    data.pop("record", None)
    if data["parity_worst_psnr_db"] is not None and math.isinf(data["parity_worst_psnr_db"]):
        data["parity_worst_psnr_db"] = None
    return data
