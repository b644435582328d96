"""``sr-bench tune``: arguments onto :func:`sr_export.api.tune`, then the table, the front and the chosen file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sr_export.cli import common

DEFAULT_TUNE_DIR = Path("sr-bench-tune")


def add_tune_parser(commands: Any) -> None:
    tune = commands.add_parser(
        "tune", help="the fastest artifact for a device within a quality budget, found by measurement",
        description="Build, prove, evaluate and time every runtime x precision x recipe the device can run; "
        "copy the fastest one within --max-drop dB of the FP32 model's Y-PSNR to -o, with the Pareto front.")
    tune.add_argument("--model", required=True, help="zoo name or path.py:Class")
    tune.add_argument("--weights", help="'official', a checkpoint path, or none (random init)")
    tune.add_argument("--scale", type=common.scale_argument, help="upscaling factor (default: the model's)")
    where = tune.add_mutually_exclusive_group()
    where.add_argument("--target", "--device-profile", dest="tune_target", metavar="PROFILE",
                       help="the device to tune for: a target profile name or .toml path (default: cpu, this "
                       "machine); every shipped profile for that device is a candidate")
    tune.add_argument("--candidates", type=common.name_list, metavar="A,B",
                      help="only these profiles (names or .toml paths) instead of every one for the device")
    tune.add_argument("--recipes", type=common.name_list, metavar="A,B", default=None,
                      help="INT8 calibration recipes to try on each INT8 candidate (default: the profile's own, "
                      "default and mixed)")
    tune.add_argument("--tiles", type=common.sizes_argument, metavar="HxW,...", default=None,
                      help="tile sizes to try for fixed-size runtimes (TFLite; default: the timing size only)")
    tune.add_argument("--max-drop", type=common.FiniteNumber(0.0), default=0.10, metavar="DB",
                      help="Y-PSNR the choice may lose against the FP32 model, in dB (default 0.10)")
    tune.add_argument("--dataset", default="builtin", help="evaluation folder (HR/, optional LR_bicubic/X{s}/) "
                      "or 'builtin' (default)")
    tune.add_argument("--sizes", dest="tune_sizes", type=common.sizes_argument, metavar="HxW,...",
                      help="LR sizes to time (default: the device profile's); the first ranks the candidates")
    tune.add_argument("--warmup", dest="tune_warmup", type=common.count_argument, metavar="N")
    tune.add_argument("--runs", dest="tune_runs", type=common.runs_argument, metavar="N")
    tune.add_argument("-o", "--output", dest="tune_output", type=Path, default=None, metavar="DIR",
                      help=f"folder for the chosen artifact, the report and the candidates (default: {DEFAULT_TUNE_DIR})")
    tune.add_argument("--no-history", dest="tune_no_history", action="store_true",
                      help="do not store the measurements in the results history")
    common.add_json_argument(tune, "tune result")
    tune.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from sr_export import api
    from sr_export.core.errors import SrExportError

    console = common.stderr_console()
    output = args.tune_output or DEFAULT_TUNE_DIR
    target = args.tune_target or getattr(args, "target", None) or "cpu"
    with common.progress_bar(console) as progress:
        search = progress.add_task("tune", total=None)
        step = progress.add_task("", total=None)
        result = api.tune(
            args.model, target, output, weights=args.weights, scale=args.scale, max_drop=args.max_drop,
            dataset=args.dataset, sizes=args.tune_sizes, warmup=args.tune_warmup, runs=args.tune_runs,
            candidates=args.candidates, recipes=args.recipes, tiles=args.tiles,
            history=getattr(args, "db", None), store=not args.tune_no_history,
            say=lambda text: progress.update(step, description=text),
            on_start=lambda total: progress.update(search, total=total, description="candidates"),
            advance=lambda: progress.advance(search),
        )
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    out.print(result_table(result))
    written = write_outputs(result, output)
    for path in written:
        out.print(f"wrote {path}")
    common.emit_json(result.to_dict(), args.json, out, force=args.force)
    if not result.complete:
        raise SrExportError("the search was stopped before it finished; measured candidates are in the table and "
                            "the history, but no choice is made from a partial search")
    if result.choice is None:
        raise SrExportError(f"no candidate stays within {result.max_drop:g} dB on {result.dataset}; raise "
                            "--max-drop or add candidates (see the table for each one's drop)")
    out.print(f"chosen: {result.choice.candidate} ({result.choice.median_ms:.1f} ms, drop "
              f"{result.choice.drop_db:.3f} dB) -> {written[0]}")
    return 0


def result_table(result: Any) -> Any:
    from rich.table import Table

    size = "x".join(map(str, result.sizes[0]))
    where = "side by side, this process" if result.device == "this machine" else f"on {result.device}"
    table = Table(title=f"sr-bench tune: {result.model} x{result.scale}, budget {result.max_drop:g} dB on "
                  f"{result.dataset} (FP32 PyTorch: {_db(result.reference_psnr_y)} dB); latency at {size}, {where}",
                  title_justify="left", header_style="bold")
    for column in ("candidate", "runtime", "precision", "Y-PSNR", "drop (dB)", "median (ms)", "front", "status"):
        table.add_column(column)
    for row in table_rows(result):
        table.add_row(*row)
    return table


def table_rows(result: Any) -> list[list[str]]:
    rows = []
    for o in sorted(result.outcomes, key=lambda o: (o.status != "measured", o.median_ms or 0.0)):
        status = "CHOSEN" if result.choice is o else o.status + (f": {o.reason}" if o.reason else "")
        rows.append([o.candidate, o.backend, o.precision, _db(o.psnr_y),
                     f"{o.drop_db:.3f}" if o.drop_db is not None else "-",
                     f"{o.median_ms:.1f}" if o.median_ms is not None else "-", "yes" if o.on_front else "",
                     status])
    return rows


def write_outputs(result: Any, output: Path) -> list[Path]:
    """The chosen artifact (first, when there is one), the front PNG and the report."""
    import json

    from sr_export.bench.plots import pareto_chart
    from sr_export.bench.report import write_tune_report
    from sr_export.bench.tune import copy_choice
    from sr_export.core.io import atomic_path

    written: list[Path] = []
    if result.complete and result.choice is not None:
        written.append(copy_choice(result, output))
    points = [(o.candidate, o.median_ms, o.drop_db, o.on_front, result.choice is o) for o in result.outcomes
              if o.status == "measured" and o.median_ms is not None and o.drop_db is not None]
    chart = None
    if points:
        size = "x".join(map(str, result.sizes[0]))
        chart = pareto_chart(points, output / "pareto.png", max_drop=result.max_drop, force=True,
                             title=f"{result.model} x{result.scale}: drop vs latency ({result.dataset})",
                             xlabel=f"median latency at LR {size} (ms)")
        written.append(chart)
    summary = output / "tune.json"
    with atomic_path(summary, force=True) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    written.append(summary)
    header = ["candidate", "runtime", "precision", "Y-PSNR", "drop (dB)", "median (ms)", "front", "status"]
    conditions = [f"device: {result.device}", f"dataset: {result.dataset}, reference (FP32 PyTorch) "
                  f"{_db(result.reference_psnr_y)} dB", f"budget: {result.max_drop:g} dB",
                  f"sizes: {', '.join('x'.join(map(str, s)) for s in result.sizes)}", f"tune run: {result.batch}",
                  "complete" if result.complete else "STOPPED before the end: no choice"]
    written += write_tune_report(header, table_rows(result), chart, conditions, output,
                                 title=f"sr-bench tune: {result.model} x{result.scale}")
    return written


def _db(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"
