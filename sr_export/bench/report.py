"""``sr-bench report``: the history's runs as Markdown and one self-contained HTML page.

The page carries its plots as base64 PNGs so it can be mailed or attached to a
CI run as a single file: the AIM-style table, PSNR against latency (the
speed/accuracy view of the IDN paper), PSNR against parameters, latency per
target, and a visual strip (bicubic | each target's output | HR) per scale.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sr_export.bench.history import RunRecord
from sr_export.core.io import atomic_path, write_text_atomic


def latest_per_model_and_target(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Newest run of every (model, scale, target); ``runs`` come newest first."""
    seen: dict[tuple[str, int, str], RunRecord] = {}
    for run in runs:
        seen.setdefault((run.model, run.scale, run.target), run)
    return sorted(seen.values(), key=lambda r: (r.model, r.scale, r.target))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    plt = _pyplot()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path


def _reference_size(runs: Sequence[RunRecord]) -> tuple[int, int] | None:
    """The LR size every run was timed at (the first such), so latencies compare like with like."""
    if not runs:
        return None
    common = [tuple(s["input_hw"]) for s in runs[0].sizes]
    for run in runs[1:]:
        have = {tuple(s["input_hw"]) for s in run.sizes}
        common = [s for s in common if s in have]
    return common[0] if common else tuple(runs[0].sizes[0]["input_hw"])


def psnr_latency_plot(runs: Sequence[RunRecord], size: tuple[int, int], path: Path, *, x: str) -> Path | None:
    """Scatter of PSNR-Y against latency (x='latency') or parameters (x='params'), one colour per target."""
    points = [r for r in runs if r.psnr_y is not None and (r.median_ms(size) if x == "latency" else r.params)]
    if not points:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    targets = sorted({r.target for r in points})
    for index, target in enumerate(targets):
        mine = [r for r in points if r.target == target]
        xs = [r.median_ms(size) if x == "latency" else r.params / 1e3 for r in mine]
        axes.scatter(xs, [r.psnr_y for r in mine], s=50, label=target, color=f"C{index}",
                     marker="os^Dv<>"[index % 7])
        for run, value in zip(mine, xs):
            axes.annotate(run.label, (value, run.psnr_y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if x == "latency":
        axes.set_xlabel(f"median latency (ms), LR {size[0]}x{size[1]}")
        axes.set_title("PSNR vs latency (up and left is better)", fontsize=10)
    else:
        axes.set_xlabel("parameters (thousands)")
        axes.set_title("PSNR vs parameters", fontsize=10)
    datasets = sorted({r.dataset for r in points if r.dataset})
    axes.set_ylabel(f"PSNR-Y (dB, {', '.join(datasets)})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def latency_per_target_plot(runs: Sequence[RunRecord], path: Path) -> Path:
    """Median latency per model (groups) and target (bars), at each run's every size."""
    plt = _pyplot()
    models = list(dict.fromkeys(r.label for r in runs))
    sizes = list(dict.fromkeys(tuple(s["input_hw"]) for r in runs for s in r.sizes))
    targets = list(dict.fromkeys(r.target for r in runs))
    figure, all_axes = plt.subplots(1, len(sizes), figsize=(max(5.5, 2.2 * len(models) + 1) * len(sizes) ** 0.5 + 1,
                                                           4.2), dpi=110, squeeze=False)
    width = 0.8 / max(1, len(targets))
    for axes, size in zip(all_axes[0], sizes):
        for index, target in enumerate(targets):
            values = []
            for model in models:
                run = next((r for r in runs if r.label == model and r.target == target), None)
                values.append((run.median_ms(size) or 0.0) if run else 0.0)
            positions = [m + (index - (len(targets) - 1) / 2) * width for m in range(len(models))]
            bars = axes.bar(positions, values, width, label=target, color=f"C{index}")
            axes.bar_label(bars, fmt="%.1f", fontsize=7)
        axes.set_xticks(range(len(models)), models, fontsize=8)
        axes.set_title(f"LR {size[0]}x{size[1]}", fontsize=10)
        axes.set_ylabel("median latency (ms)")
    all_axes[0][0].legend(fontsize=8)
    return _save(figure, path)


def comparison_strip(runs: Sequence[RunRecord], scale: int, path: Path) -> Path | None:
    """bicubic | each run's output on the sample patch | HR, for one scale."""
    from sr_export.bench.sample import bicubic, png_image, sample_pair

    with_sample = [r for r in runs if r.scale == scale and r.sample_png]
    if not with_sample:
        return None
    _, hr = sample_pair(scale)
    panels = [("bicubic", bicubic(scale))]
    panels += [(f"{r.label}\n{r.target}", png_image(r.sample_png)) for r in with_sample]  # type: ignore[arg-type]
    panels.append(("HR", hr))
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.5), dpi=110, squeeze=False)
    for ax, (title, image) in zip(axes[0], panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(f"x{scale}: same patch through every target (nearest-neighbour display)", fontsize=8)
    return _save(figure, path)


def _cell(value: Any, fmt: str = "{}") -> str:
    return "n/a" if value is None else fmt.format(value)


def table_rows(runs: Sequence[RunRecord]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "model", "target", "device", "params", "AIM GFLOPs", "activations (M)", "#conv", "LR size",
              "median ms", "p90 ms", "p99 ms", "e2e median ms", "FPS", "out MP/s", "peak RSS MB", "PSNR-Y",
              "SSIM-Y"]
    rows = []
    for run in runs:
        device = run.device.get("board") or run.device.get("cpu") or ""
        for size in run.sizes:
            inference, e2e = size["inference"], size.get("end_to_end") or {}
            rows.append([
                str(run.id), run.label, f"{run.target} ({run.precision})", str(device),
                _cell(run.params, "{:,}"), _cell(run.aim_flops and run.aim_flops / 1e9, "{:.2f}"),
                _cell(run.activations and run.activations / 1e6, "{:.2f}"), _cell(run.convs),
                f"{size['input_hw'][0]}x{size['input_hw'][1]}", f"{inference['median_ms']:.2f}",
                f"{inference['p90_ms']:.2f}", f"{inference['p99_ms']:.2f}", _cell(e2e.get("median_ms"), "{:.2f}"),
                f"{size['fps']:.1f}", f"{size['output_mpix_per_s']:.2f}", _cell(size.get("peak_rss_mb"), "{:.0f}"),
                _cell(run.psnr_y, "{:.2f}"), _cell(run.ssim_y, "{:.4f}"),
            ])
    return header, rows


def conditions_lines(runs: Sequence[RunRecord]) -> list[str]:
    lines = []
    for run in runs:
        c, d = run.conditions, run.device
        runtime = d.get("runtime", "?")
        lines.append(
            f"run {run.id} ({run.label} on {run.target}, {run.created}): {runtime}, {c.get('warmup')} warm-up + "
            f"{c.get('runs')} timed runs, threads {c.get('threads') or 'default'}, measured on {c.get('where')} "
            f"({d.get('cpu', '')}, {d.get('cpu_count', '?')} cores{', ' + d['nvpmodel'] if d.get('nvpmodel') else ''}); "
            f"artifact {run.artifact_name} sha256 {run.artifact_sha256[:12]}, weights "
            f"{(run.weights_sha256 or 'random init')[:12]}, sr-export {run.tool_version}"
            f"{' @ ' + run.git_commit[:8] if run.git_commit else ''}"
        )
    return lines


def write_report(runs: Sequence[RunRecord], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    size = _reference_size(runs)
    figures: list[tuple[str, Path]] = []
    if size is not None:
        for title, made in (
            ("PSNR vs latency", psnr_latency_plot(runs, size, out_dir / "psnr-vs-latency.png", x="latency")),
            ("PSNR vs parameters", psnr_latency_plot(runs, size, out_dir / "psnr-vs-params.png", x="params")),
        ):
            if made:
                figures.append((title, made))
    figures.append(("Latency per target", latency_per_target_plot(runs, out_dir / "latency-per-target.png")))
    for scale in sorted({r.scale for r in runs}):
        strip = comparison_strip(runs, scale, out_dir / f"comparison-x{scale}.png")
        if strip:
            figures.append((f"Visual comparison, x{scale}", strip))
    header, rows = table_rows(runs)
    conditions = conditions_lines(runs)
    markdown = _markdown(header, rows, figures, conditions)
    page = _html(header, rows, figures, conditions)
    return [write_text_atomic(out_dir / "report.md", markdown), write_text_atomic(out_dir / "report.html", page),
            *[p for _, p in figures]]


def _markdown(header: list[str], rows: list[list[str]], figures: list[tuple[str, Path]], conditions: list[str]) -> str:
    lines = ["# sr-bench report", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    lines += ["", "Latency: inference only (median / p90 / p99 of the timed runs); e2e adds 8-bit frame "
              "pre- and post-processing. FPS and output MP/s from the inference median.", ""]
    for title, path in figures:
        lines += [f"## {title}", "", f"![{title}]({path.name})", ""]
    lines += ["## Conditions", ""] + [f"- {line}" for line in conditions] + [""]
    return "\n".join(lines)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f2f2}td:nth-child(2),td:nth-child(3),
td:nth-child(4){text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}li{font-size:13px}"""


def _html(header: list[str], rows: list[list[str]], figures: list[tuple[str, Path]], conditions: list[str]) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>sr-bench report</title>',
             f"<style>{_STYLE}</style></head><body>", "<h1>sr-bench report</h1>", "<table><thead><tr>"]
    parts += [f"<th>{esc(h)}</th>" for h in header] + ["</tr></thead><tbody>"]
    parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
    parts += ["</tbody></table>", "<p>Latency: inference only; e2e adds 8-bit frame pre- and post-processing.</p>"]
    for title, path in figures:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts += [f"<h2>{esc(title)}</h2>", f'<img alt="{esc(title)}" src="data:image/png;base64,{data}">']
    parts += ["<h2>Conditions</h2>", "<ul>"] + [f"<li>{esc(line)}</li>" for line in conditions]
    parts += ["</ul>", "</body></html>", ""]
    return "\n".join(parts)


def write_tune_report(header: list[str], rows: list[list[str]], chart: Path | None, conditions: list[str],
                      out_dir: Path, *, title: str) -> list[Path]:
    """``sr-bench tune``'s table and front as report.md and a self-contained report.html in ``out_dir``."""
    figures = [("Quality drop against latency (the Pareto front joined)", chart)] if chart else []
    markdown = _markdown(header, rows, figures, conditions).replace("# sr-bench report", f"# {title}", 1)
    page = _html(header, rows, figures, conditions).replace("sr-bench report", html.escape(title))
    return [write_text_atomic(out_dir / "report.md", markdown), write_text_atomic(out_dir / "report.html", page)]
