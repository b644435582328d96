"""Rich tables for the reports (the JSON forms come from each report's ``to_dict``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from rich.table import Table

    from sr_export.bench.evaluate import EvalReport
    from sr_export.bench.idn_protocol import LumaEvalReport
    from sr_export.bench.profile import ProfileReport
    from sr_export.bench.speed import SpeedReport
    from sr_export.checks.parity import ParityReport
    from sr_export.core.artifacts import ArtifactMetadata


def _table(title: str) -> Table:
    from rich.table import Table

    return Table(title=title, title_justify="left", header_style="bold")


def parity_table(report: ParityReport) -> Table:
    """One row per case with the bound it was judged by: tiled cases have a looser one than the others, so
    the title states a bound only when every row shares it."""
    from sr_export.checks.parity import format_psnr

    verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
    bounds = [parity_bound(case.bound_min_psnr_db, case.bound_max_abs_error) for case in report.cases]
    shared = f": {bounds[0]}" if bounds and len(set(bounds)) == 1 else "; bounds per row"
    table = _table(f"parity {verdict}: {report.candidate} vs {report.reference} ({report.precision}{shared})")
    for column in ("input", "LR size", "max |diff|", "mean |diff|", "PSNR (dB)", "bound", ""):
        table.add_column(column, justify="left" if column in ("input", "bound", "") else "right")
    for case, bound in zip(report.cases, bounds, strict=True):
        table.add_row(
            case.name + (" (tiled)" if case.tiled else ""),
            "x".join(map(str, case.input_shape[2:])),
            f"{case.max_abs_error:.3g}",
            f"{case.mean_abs_error:.3g}",
            format_psnr(case.psnr_db),
            bound,
            "ok" if case.passed else f"[red]{case.reason}[/red]",
        )
    return table


def parity_bound(min_psnr_db: float | None, max_abs_error: float | None) -> str:
    """'PSNR >= 80 dB, max|diff| <= 0.001'; INT8 sets no elementwise bound, so only its PSNR one shows."""
    parts = [] if min_psnr_db is None else [f"PSNR >= {min_psnr_db:g} dB"]
    if max_abs_error is not None:
        parts.append(f"max|diff| <= {max_abs_error:.3g}")
    return ", ".join(parts) or "-"


def profile_table(report: ProfileReport) -> Table:
    table = _table(f"{report.model} x{report.scale}, input {'x'.join(map(str, report.input_shape[1:]))}")
    table.add_column("")
    table.add_column("AIM/NTIRE counter\n(conv + activation modules)", justify="right")
    table.add_column("ONNX graph\n(every op)", justify="right")
    aim, graph = report.aim, report.graph
    na = "n/a"
    rows = [
        ("params", aim.params if aim else None, graph.params if graph else None),
        ("FLOPs (MACs)", aim.flops if aim else None, graph.flops if graph else None),
        ("activations", aim.activations if aim else None, graph.conv_activations if graph else None),
        ("#conv", aim.conv_count if aim else None, graph.conv_count if graph else None),
    ]
    for label, left, right in rows:
        table.add_row(label, f"{left:,}" if left is not None else na, f"{right:,}" if right is not None else na)
    if graph:
        table.add_row("  of which MACs", "", f"{graph.macs:,}")
        table.add_row("  of which other ops", "", f"{graph.other_ops:,}")
    return table


def graph_ops_table(report: ProfileReport, limit: int = 12) -> Table | None:
    if not report.graph:
        return None
    table = _table("ONNX graph by op type")
    for column in ("op", "calls", "MACs", "other ops"):
        table.add_column(column, justify="left" if column == "op" else "right")
    for row in report.graph.by_op[:limit]:
        table.add_row(row.op_type, str(row.calls), f"{row.macs:,}", f"{row.elementwise:,}")
    return table


def eval_table(report: EvalReport) -> Table:
    table = _table(f"{report.runner} on {report.dataset} x{report.scale}")
    for column in ("image", "LR", "PSNR-Y", "SSIM-Y", "PSNR-RGB", "SSIM-RGB"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for image in report.images:
        s = image.scores
        table.add_row(image.name, f"{image.lr_size[1]}x{image.lr_size[0]}", f"{s.psnr_y:.3f}", f"{s.ssim_y:.4f}",
                      f"{s.psnr_rgb:.3f}", f"{s.ssim_rgb:.4f}")
    m = report.mean
    table.add_row("[bold]mean[/bold]", "", f"[bold]{m.psnr_y:.3f}[/bold]", f"{m.ssim_y:.4f}", f"{m.psnr_rgb:.3f}",
                  f"{m.ssim_rgb:.4f}")
    return table


def luma_eval_table(report: LumaEvalReport) -> Table:
    """The IDN authors' protocol: Y only, with their bicubic baseline beside the model."""
    table = _table(f"{report.runner} on {report.dataset} x{report.scale} (IDN authors' protocol, Y channel)")
    for column in ("image", "LR", "PSNR-Y", "SSIM-Y", "bicubic PSNR-Y", "bicubic SSIM-Y"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for i in report.images:
        table.add_row(i.name, f"{i.lr_size[1]}x{i.lr_size[0]}", f"{i.psnr_y:.3f}", f"{i.ssim_y:.4f}",
                      f"{i.bicubic_psnr_y:.3f}", f"{i.bicubic_ssim_y:.4f}")
    m = report.mean
    table.add_row("[bold]mean[/bold]", "", f"[bold]{m('psnr_y'):.3f}[/bold]", f"{m('ssim_y'):.4f}",
                  f"{m('bicubic_psnr_y'):.3f}", f"{m('bicubic_ssim_y'):.4f}")
    return table


def speed_table(report: SpeedReport, title: str) -> Table:
    table = _table(title)
    for column in ("runner", "LR (HxW)", "median ms", "p90 ms", "min ms", "FPS", "out MP/s", "speedup"):
        table.add_column(column, justify="left" if column == "runner" else "right")
    baseline = report.timings[0].runner
    for t in report.timings:
        table.add_row(
            t.runner, f"{t.input_hw[0]}x{t.input_hw[1]}", f"{t.median_s * 1e3:.1f}", f"{t.p90_s * 1e3:.1f}",
            f"{t.min_s * 1e3:.1f}", f"{t.fps:.2f}", f"{t.output_mpix_per_s:.3f}",
            f"{report.speedup(t.runner, baseline, t.input_hw):.2f}x",
        )
    return table


def metadata_table(path: Path, meta: ArtifactMetadata) -> Table:
    """What an artifact is, how it was made and proven, for ``sr-export info``."""
    table = _table(f"{path}")
    table.show_header = False
    table.add_column("")
    table.add_column("")
    shape = "x".join(str(d) for d in meta.input_shape) or "?"
    rows = [
        ("model", f"{meta.model} x{meta.scale}, {meta.in_channels}-channel {meta.color.upper()}, "
                  f"range [0,{meta.data_range:g}]"),
        ("weights", "random init" if meta.random_init else (meta.weights_sha256 or "n/a")),
        ("format", f"{meta.describe_format()}, {meta.precision}, {meta.layout}"),
        ("input", f"{meta.input_name} {shape}" + ("" if meta.dynamic or not meta.static_hw else " (fixed: tiled)")),
    ]
    if meta.exporter:
        rows.append(("exporter", f"{meta.exporter}, opset {meta.opset}, "
                                 f"{'simplified' if meta.simplified else 'not simplified'}"))
    if meta.verified_sizes:
        rows.append(("verified at", ", ".join(f"{h}x{w}" for h, w in meta.verified_sizes) + " (LR, vs PyTorch)"))
    if meta.size_multiple > 1:
        where = "inside the graph" if meta.pads_in_graph else "by the runner"
        rows.append(("size multiple", f"{meta.size_multiple} (inputs padded {where})"))
    if meta.receptive_field is not None:
        context = " (global context: tiling approximates)" if meta.global_context else ""
        rows.append(("receptive field", f"{meta.receptive_field} LR px per side{context}"))
    if meta.tiling:
        rows.append(("tiling", describe_tiling(meta.tiling)))
    if meta.tile_alignment > 1:
        rows.append(("tile alignment", f"{meta.tile_alignment} LR px (not shift-invariant: window attention or strides)"))
    if meta.runtime_requirements:
        rows.append(("needs", describe_requirements(meta.runtime_requirements)))
    # ONNX files do not hold their build's time and host (artifacts are reproducible); sidecars and old files do.
    built = ", ".join(filter(None, [meta.created, f"on {meta.host}" if meta.host else None]))
    rows.append(("made by", f"sr-export {meta.tool_version}" + (f", {built}" if built else "")))
    for label, value in rows:
        table.add_row(label, value)
    for note in meta.notes:
        table.add_row("note", note)
    return table


def describe_requirements(needs: Mapping[str, Any]) -> str:
    """'TF Lite 2.2 or newer (set by RESIZE_BILINEAR ...); built for tflite-runtime 2.14'."""
    which = "exactly" if needs.get("exact") else "or newer"
    text = f"{needs.get('min_runtime', '?')} {which} (set by {needs.get('set_by', '?')})"
    return text + (f"; built for {needs['built_for']}" if needs.get("built_for") else "")


def describe_tiling(tiling: Mapping[str, Any]) -> str:
    """'approximate (52.3 dB, max|diff| 0.18 of 1): stitched tiles vs the whole image, measured on ...'."""
    psnr = tiling.get("psnr_db")
    figures = f"{'identical' if psnr is None else f'{psnr:g} dB'}, max|diff| {tiling.get('max_abs_error', 0):.3g} " \
              f"of {tiling.get('data_range', 1):g}"
    images = ", ".join(tiling.get("images") or ()) or "?"
    return f"{tiling.get('verdict', '?')} ({figures}): stitched tiles vs the whole image, measured on {images}"

