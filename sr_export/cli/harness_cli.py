"""``sr-bench`` runs over models x targets x sizes, and the history behind them:
``history``, ``compare``, ``gate`` and ``report``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sr_export.cli import common
from sr_export.core.errors import CheckFailed, SrExportError


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("matrix runs (override the suite and the profile)")
    group.add_argument("--models", type=common.name_list, metavar="A,B", help="models to run instead of the suite's (zoo names or path.py:Class)")
    group.add_argument("--targets", type=common.name_list, metavar="X,Y", help="several target profiles (names or .toml paths); "
                       "different SSH hosts are measured concurrently")
    group.add_argument("--sizes", dest="run_sizes", type=common.sizes_argument, metavar="HxW,...",
                       help="LR sizes to time (default: the suite's; with --models, the profile's)")
    group.add_argument("--warmup", dest="run_warmup", type=common.count_argument, metavar="N", help="untimed runs per size")
    group.add_argument("--runs", dest="run_runs", type=common.runs_argument, metavar="N", help="timed runs per size")
    group.add_argument("--scale", dest="run_scale", type=common.scale_argument, metavar="S", help="scale for --models (default: the model's)")
    group.add_argument("--weights", dest="run_weights", metavar="W", help="weights for --models: 'official', a path, or none "
                       "(random init: speed only)")
    group.add_argument("--dataset", dest="run_dataset", metavar="DIR", help="PSNR/SSIM dataset for --models (default: builtin)")
    group.add_argument("--exporter", dest="run_exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                       help="ONNX exporter (default auto)")
    group.add_argument("--export-timeout", dest="run_export_timeout", type=common.export_timeout_argument,
                       metavar="SECONDS", help="seconds each exporter attempt may take (default 300)")
    add_db_argument(parser, top_level=True)
    group.add_argument("--no-history", action="store_true", help="do not store the runs in the results history")


def add_db_argument(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    # Sub-commands must not reset a --db given before the command name.
    parser.add_argument("--db", type=Path, default=None if top_level else argparse.SUPPRESS, metavar="PATH",
                        help="results history file (default: sr-export/history.sqlite in the user data folder)")


def add_commands(commands: Any) -> None:
    history = commands.add_parser("history", help="list the runs stored in the results history")
    add_db_argument(history)
    history.add_argument("--model", help="only this model")
    history.add_argument("--target", dest="history_target", help="only this target")
    history.add_argument("--limit", type=common.WholeNumber(1, common.MAX_COUNT), default=30, help="newest N runs (default 30)")
    history.add_argument("--run", action="append", default=[], type=common.run_number_argument, help="only these run numbers (repeatable)")
    common.add_json_argument(history, "run records (usable as a gate baseline)")
    history.set_defaults(handler=cmd_history)

    compare = commands.add_parser("compare", help="deltas between two runs")
    add_db_argument(compare)
    compare.add_argument("run_a", metavar="RUN_A", type=common.run_number_argument)
    compare.add_argument("run_b", metavar="RUN_B", type=common.run_number_argument)
    common.add_json_argument(compare, "deltas")
    compare.set_defaults(handler=cmd_compare)

    gate = commands.add_parser("gate", help="fail (exit 1) when runs regress against a baseline")
    add_db_argument(gate)
    gate.add_argument("--baseline", required=True, metavar="RUN|FILE",
                      help="a run number, or a JSON file from sr-bench history --json")
    gate.add_argument("--run", action="append", default=[], metavar="RUN", type=common.run_number_argument,
                      help="runs to check (repeatable; default: every run of the latest sr-bench invocation)")
    gate.add_argument("--max-slowdown", type=common.percent_argument, default="10%", metavar="PCT", help="largest allowed median-latency increase (default 10%%)")
    gate.add_argument("--max-psnr-drop", type=common.FiniteNumber(0.0), default=0.05, metavar="DB", help="largest allowed PSNR-Y drop in dB (default 0.05)")
    common.add_json_argument(gate, "verdict")
    gate.set_defaults(handler=cmd_gate)

    report = commands.add_parser("report", help="Markdown + self-contained HTML report with plots")
    add_db_argument(report)
    report.add_argument("--run", action="append", default=[], metavar="RUN", type=common.run_number_argument,
                        help="runs to include (repeatable; default: the latest run of each model and target)")
    common.add_output_argument(report, "folder for report.md/.html (default: sr-bench-report)",
                               default=Path("sr-bench-report"), old_names=("--out",))
    report.set_defaults(handler=cmd_report)


@dataclass(frozen=True)
class Plan:
    suite: Any  # sr_export.bench.suite.Suite
    profiles: tuple[Any, ...]  # TargetProfile


def plan_from_args(args: argparse.Namespace) -> Plan:
    from sr_export.bench.suite import Suite, SuiteModel, load_suite
    from sr_export.targets.profiles import load_target

    # --targets and --models arrive as checked lists (common.name_list); --target may hold commas too.
    names = args.targets if args.targets is not None else [n.strip() for n in args.target.split(",")]
    if not all(names):
        raise SrExportError(f"--target must be profile names separated by single commas, got {args.target!r}")
    profiles = tuple(load_target(name) for name in names)
    if args.models is not None:
        weights = None if args.run_weights in (None, "none") else args.run_weights
        models = tuple(SuiteModel(m, args.run_scale, weights) for m in args.models)
        # Sizes, warm-up, runs and threads: each target profile's own.
        suite = Suite(name="matrix", models=models, dataset=args.run_dataset or "builtin",
                      description=f"--models {','.join(args.models)}")
    else:
        suite = load_suite(args.suite)
        if args.run_dataset:
            suite = replace(suite, dataset=args.run_dataset)
    if args.run_sizes:
        suite = replace(suite, speed_sizes=tuple(args.run_sizes))
    if args.run_warmup is not None:
        suite = replace(suite, warmup=args.run_warmup)
    if args.run_runs is not None:
        suite = replace(suite, runs=args.run_runs)
    if (suite.runs is not None and suite.runs < 1) or (suite.warmup is not None and suite.warmup < 0):
        raise SrExportError("--runs must be at least 1 and --warmup at least 0")
    return Plan(suite, profiles)


@dataclass(frozen=True)
class LostDevice:
    """A device that dropped out of a matrix run (unreachable, cut off, timed out): the runs it still had
    were skipped; every other device's runs went on and were stored."""

    device: str  # user@host:port, as ssh resolves the profile
    targets: tuple[str, ...]
    reason: str  # the DeviceError's one line
    skipped: int  # runs (model x target) it did not finish

    def line(self) -> str:
        names = ", ".join(f"'{t}'" for t in self.targets)
        return (f"device {self.device} (target {names}) dropped out: {self.reason}; "
                f"{self.skipped} run(s) on it not stored")


@dataclass(frozen=True)
class PlanResult:
    rows: list[tuple[Any, list[Any]]]  # (profile, finished rows) for every profile, in the order given
    lost: list[LostDevice]


def device_groups(profiles: tuple[Any, ...]) -> dict[str, list[Any]]:
    """Profiles by the device they time on ("" for this machine): one device runs its profiles in turn
    (they would disturb each other's timings); different devices run in parallel.

    The key is the device as ssh resolves it (user@host:port), not the profile's host field: two ports
    on one address are two devices, two aliases of one board are one.
    """
    from sr_export.bench.remote import device_identity

    groups: dict[str, list[Any]] = {}
    for profile in profiles:
        key = device_identity(profile.access) if profile.access.is_remote else ""
        groups.setdefault(key, []).append(profile)
    return groups


def run_plan(plan: Plan, args: argparse.Namespace, console: Any) -> PlanResult:
    """Every model on every target; runs on different SSH devices go in parallel, everything else in turn.

    Work on this machine (export, build, check, evaluate) is done by one device thread at a time; only the
    timing on the devices overlaps. Each finished run is stored at once (its own transaction), so runs
    done before a failure are kept and the failed one leaves no trace. A device that drops out ends only
    its own runs: the others finish, and it is returned in ``lost``.
    """
    import threading
    import uuid

    from sr_export.bench.history import check_history, default_db_path, open_history
    from sr_export.bench.remote import DeviceError
    from sr_export.bench.suite import device_runtime, run_model

    batch = uuid.uuid4().hex[:12]
    for profile in plan.profiles:
        device_runtime(profile)
    if not args.no_history:
        check_history(args.db or default_db_path(), write=True)  # before any work; creates nothing yet
    groups = device_groups(plan.profiles)
    _preflight(groups, console)
    results: dict[str, list[Any]] = {}
    cache: dict[Any, Any] = {}
    local_work = threading.Lock()

    def run_group(device: str, profiles: list[Any], progress: Any) -> LostDevice | None:
        total = len(profiles) * len(plan.suite.models)
        for profile in profiles:
            task = progress.add_task(f"{profile.name}", total=len(plan.suite.models))
            rows = results.setdefault(profile.name, [])
            for entry in plan.suite.models:
                try:
                    with local_work:
                        row = run_model(entry, plan.suite, profile, args.output,
                                        lambda text, task=task, name=profile.name: progress.update(
                                            task, description=f"{name}: {text}"),
                                        exporter=args.run_exporter, batch=batch, cache=cache, local_work=local_work,
                                        **common.export_timeout_keyword(args.run_export_timeout))
                except DeviceError as exc:
                    if not device:
                        raise  # this machine: not a device that can drop out
                    done = sum(len(results.get(p.name, [])) for p in profiles)
                    return LostDevice(device, tuple(p.name for p in profiles), str(exc), total - done)
                if not args.no_history and row.record is not None:
                    with open_history(args.db) as history:
                        history.add(row.record)
                rows.append(row)
                progress.advance(task)
        return None

    lost: list[LostDevice] = []
    with common.progress_bar(console) as progress:
        local = groups.pop("", [])
        if local:
            run_group("", local, progress)  # local timing must not share the CPU with other work
        if groups:
            with ThreadPoolExecutor(max_workers=len(groups)) as pool:
                futures = [pool.submit(run_group, device, group, progress) for device, group in groups.items()]
                # Every device finishes (or drops out) before anything is raised, so no run is cut short.
                for future in futures:
                    if future.exception() is None and future.result() is not None:
                        lost.append(future.result())
                for future in futures:
                    future.result()  # an error that is not a device's own (a bug, a bad model)
    stored = sum(len(r) for r in results.values())
    if not args.no_history and stored:
        console.print(f"stored {stored} run(s) in {args.db or default_db_path()} (sr-bench history)")
    return PlanResult([(p, results.get(p.name, [])) for p in plan.profiles], lost)


def _preflight(groups: dict[str, list[Any]], console: Any) -> None:
    """Reach every SSH device (in parallel, each within its connect timeout) before any work; every device
    that cannot be reached is named, one line each."""
    from sr_export.bench.remote import DeviceError, preflight

    remote = [(device, group) for device, group in groups.items() if device]
    if not remote:
        return
    failures: list[str] = []
    with console.status(f"checking {', '.join(device for device, _ in remote)}"), \
            ThreadPoolExecutor(max_workers=len(remote)) as pool:
        futures = [(group, pool.submit(preflight, group[0].access)) for _, group in remote]
        for group, future in futures:
            try:
                future.result()
            except DeviceError as exc:
                names = ", ".join(f"'{p.name}'" for p in group)
                failures.append(f"target {names}: {exc}")
    report_lost(failures, console)


def report_lost(lines: list[str], console: Any) -> None:
    """One line per device that could not be used: all but the last printed, the last raised (exit 2: the
    environment, not the artifact, is at fault; runs of other devices are stored)."""
    from rich.markup import escape

    from sr_export.bench.remote import DeviceError

    for line in lines[:-1]:
        console.print(f"[red]device lost:[/red] {escape(line)}", soft_wrap=True, highlight=False)
    if lines:
        raise DeviceError(lines[-1])


@contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Run the block; if ``folder`` did not exist before and holds no file after (a device that could not
    be reached, an export that failed), remove the empty folders it left. Files are never removed."""
    existed = folder.exists()
    try:
        yield
    finally:
        if not existed and folder.is_dir():
            for inner in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()),
                                key=lambda p: len(p.parts), reverse=True):
                with suppress(OSError):
                    inner.rmdir()  # only succeeds when empty
            with suppress(OSError):
                folder.rmdir()


def target_label(profile: Any) -> str:
    from sr_export.bench.suite import target_label as label

    return label(profile)


def local_environment() -> dict[str, str]:
    from sr_export.bench.suite import environment

    return environment()


def suite_table(suite: Any, profile: Any, rows: list[Any]) -> Any:
    from rich.table import Table

    from sr_export.checks.parity import format_psnr

    where = profile.access.host if profile.access.is_remote else "local"
    table = Table(title=f"sr-bench: suite '{suite.name}' on target '{profile.name}' ({profile.description}; {where})",
                  title_justify="left", header_style="bold")
    label = target_label(profile)
    for column in ("model", "params", "AIM GFLOPs", "graph GFLOPs", "parity PSNR", "PyTorch ms",
                   f"{label} ms", "p99 ms", "e2e ms", "FPS", "out MP/s", "speedup", f"PSNR-Y ({suite.dataset})",
                   "SSIM-Y", "run"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        target = row.speed[label]
        if row.parity_passed is None:
            parity = "n/a"
        else:
            parity = ("[green]" if row.parity_passed else "[red]") + format_psnr(row.parity_worst_psnr_db) + " dB"
        e2e = target.get("end_to_end") or {}
        table.add_row(
            f"{row.model} x{row.scale}", f"{row.params:,}",
            f"{row.aim_flops / 1e9:.2f}" if row.aim_flops is not None else "n/a",
            f"{row.graph_flops / 1e9:.2f}" if row.graph_flops is not None else "n/a",
            parity, f"{row.speed['pytorch']['median_ms']:.1f}" if "pytorch" in row.speed else "n/a",
            f"{target['median_ms']:.1f}", f"{target['inference']['p99_ms']:.1f}",
            f"{e2e['median_ms']:.1f}" if e2e else "n/a", f"{target['fps']:.1f}",
            f"{target['output_mpix_per_s']:.2f}", f"{row.speedup:.2f}x" if row.speedup else "n/a",
            f"{row.psnr_y:.2f}" if row.psnr_y is not None else "n/a",
            f"{row.ssim_y:.4f}" if row.ssim_y is not None else "n/a",
            str(row.record.id) if row.record is not None and row.record.id else "-",
        )
    return table


def _db(args: argparse.Namespace) -> Path | None:
    return getattr(args, "db", None)


def cmd_history(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sr_export.bench.history import open_history

    with open_history(_db(args), create=False) as history:
        if args.run:
            runs = [history.get(r) for r in args.run]
        else:
            runs = history.runs(model=args.model, target=args.history_target, limit=args.limit)
        where = history.path
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    table = Table(title=f"sr-bench history ({where})", title_justify="left", header_style="bold")
    for column in ("run", "when", "model", "target", "device", "sizes (median ms)", "PSNR-Y", "artifact", "commit"):
        table.add_column(column, justify="right" if column in ("run", "PSNR-Y") else "left")
    for run in runs:
        device = run.device.get("board") or run.device.get("cpu") or run.device.get("hostname", "")
        sizes = ", ".join(f"{s['input_hw'][0]}x{s['input_hw'][1]}: {s['inference']['median_ms']:.1f}" for s in run.sizes)
        table.add_row(str(run.id), run.created.replace("T", " ")[:16], run.label, run.target, str(device)[:40], sizes,
                      f"{run.psnr_y:.2f}" if run.psnr_y is not None else "n/a", run.artifact_sha256[:10],
                      (run.git_commit or "")[:8])
    out.print(table)
    common.emit_json([r.to_dict() for r in runs], args.json, out, force=args.force)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from sr_export.bench.compare import compare_runs
    from sr_export.bench.history import open_history

    with open_history(_db(args), create=False) as history:
        base, new = history.get(args.run_a), history.get(args.run_b)
    delta = compare_runs(base, new)
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    table = Table(title=f"run {base.id} ({base.label}, {base.target}) -> run {new.id} ({new.label}, {new.target})",
                  title_justify="left", header_style="bold")
    for column in ("LR size", f"run {base.id} ms", f"run {new.id} ms", "change"):
        table.add_column(column, justify="right")
    for size in delta.sizes:
        colour = "red" if size.slowdown > 0.05 else "green" if size.slowdown < -0.05 else "white"
        table.add_row(f"{size.input_hw[0]}x{size.input_hw[1]}", f"{size.base_ms:.2f}", f"{size.new_ms:.2f}",
                      f"[{colour}]{size.slowdown:+.1%}")
    out.print(table)
    if delta.psnr_drop is not None:
        out.print(f"PSNR-Y: {base.psnr_y:.3f} -> {new.psnr_y:.3f} dB ({-delta.psnr_drop:+.3f} dB)")
    out.print(delta.artifact.describe())
    for key in ("weights_sha256", "tool_version", "git_commit"):
        if getattr(base, key) != getattr(new, key):
            out.print(f"{key} differs: {str(getattr(base, key))[:16]} -> {str(getattr(new, key))[:16]}")
    if not delta.sizes:
        common.warn(out, "the two runs share no input size")
    common.emit_json(delta.to_dict(), args.json, out, force=args.force)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from sr_export.bench.compare import gate
    from sr_export.bench.history import load_baseline, open_history

    max_slowdown = args.max_slowdown  # a fraction: common.percent_argument read '10%' as 0.10
    with open_history(_db(args), create=False) as history:
        baselines = load_baseline(args.baseline, history)
        candidates = [history.get(r) for r in args.run] if args.run else history.latest_batch()
    candidates = [c for c in candidates if c.id not in {b.id for b in baselines if b.id is not None}] or candidates
    verdict = gate(baselines, candidates, max_slowdown=max_slowdown, max_psnr_drop=args.max_psnr_drop)
    out = common.stderr_console() if args.json == "-" else common.stdout_console()
    for delta in verdict.deltas:
        worst = max((s.slowdown for s in delta.sizes), default=0.0)
        psnr = f", PSNR-Y {-delta.psnr_drop:+.3f} dB" if delta.psnr_drop is not None else ""
        out.print(f"run {delta.new.id} {delta.new.label} on {delta.new.target} vs baseline "
                  f"{delta.base.id if delta.base.id else args.baseline}: worst latency change {worst:+.1%}{psnr}")
    for name in verdict.unmatched:
        common.warn(out, f"no baseline for {name}; not gated")
    common.emit_json({"passed": verdict.passed, "failures": list(verdict.failures),
                      "deltas": [d.to_dict() for d in verdict.deltas]}, args.json, out, force=args.force)
    if not verdict.passed:
        for failure in verdict.failures[:-1]:
            out.print(f"[red]regression:[/red] {failure}")
        raise CheckFailed(f"regression: {verdict.failures[-1]}")
    out.print(f"[green]gate passed[/green] (max slowdown {max_slowdown:.0%}, max PSNR drop {args.max_psnr_drop} dB)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sr_export.bench.history import open_history
    from sr_export.bench.report import latest_per_model_and_target, write_report

    console = common.stderr_console()
    with open_history(_db(args), create=False) as history:
        runs = [history.get(r) for r in args.run] if args.run else latest_per_model_and_target(history.runs())
    if not runs:
        raise SrExportError("the results history has no runs yet; run sr-bench first")
    with console.status(f"writing the report for {len(runs)} run(s)"):
        paths = write_report(runs, args.output)
    out = common.stdout_console()
    for path in paths:
        out.print(f"wrote {path}")
    return 0
