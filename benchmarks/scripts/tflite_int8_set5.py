"""Set5 Y-PSNR and latency of INT8 TFLite files next to the float TFLite file they were quantised from.

Not a test: one float file at --tile (default 360x640, the tflite profile's
size; every Set5 LR image is smaller and is reflect-padded into it, as
`sr-bench eval` runs it), calibrated once with --calib on the recipe's own
patches (a second conversion at the patch size), then quantised once per
scheme. Reported per scheme: Y-PSNR of float and INT8, the drop, the PSNR
between INT8 and float outputs, how many ops compute in which type, and the
median latency of every file timed side by side in this process.

    python benchmarks/scripts/tflite_int8_set5.py --dataset ../shared/datasets/Set5 --models erfdn,imdn \\
        --out results.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.bench.evaluate import EvalReport, evaluate
from sr_export.bench.speed import measure
from sr_export.checks.parity import output_difference
from sr_export.core.artifacts import Artifact
from sr_export.data.datasets import load_dataset
from sr_export.models.loader import ModelRequest, load_model
from sr_export.quantize.calibration_data import check_no_overlap
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.pytorch import PyTorchRunner
from sr_export.runtimes.tflite.convert import TfliteOptions, convert_tflite, write_tflite
from sr_export.runtimes.tflite.int8 import QuantizedTflite, TfliteInt8Options, calibrate_model, quantize_converted
from sr_export.runtimes.tflite.runner import TfliteRunner
from sr_export.targets.profiles import parse_size


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


class Recording:
    """A runner that keeps every output it returns, so one evaluation pass also gives the outputs."""

    def __init__(self, runner: Any) -> None:
        self.runner, self.name, self.outputs = runner, runner.name, []

    def infer(self, batch: np.ndarray) -> np.ndarray:
        out = self.runner.infer(batch)
        self.outputs.append(out)
        return out


@dataclass
class Row:
    label: str
    file: Artifact
    report: EvalReport
    outputs: list[np.ndarray]
    quantized: QuantizedTflite | None = None


def run_dataset(label: str, artifact: Artifact, info: Any, pairs: list, dataset: str, threads: int) -> Row:
    recording = Recording(open_runner(artifact, threads=threads))
    started = time.perf_counter()
    report = evaluate(recording, info, pairs, dataset=dataset)
    print(f"{label}: Set5 Y-PSNR {report.mean.psnr_y:.3f} dB ({time.perf_counter() - started:.0f} s)", flush=True)
    return Row(label, artifact, report, recording.outputs)


def output_psnr(row: Row, reference: Row, data_range: float) -> float:
    """Mean over images of the PSNR between this file's outputs and the float file's (clamped to the range)."""
    values = [output_difference(np.clip(got, 0, data_range), np.clip(want, 0, data_range), data_range)[2]
              for got, want in zip(row.outputs, reference.outputs)]
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--models", default="erfdn", help="zoo models with official x4 weights, comma-separated")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", default="360x640", help="the files' fixed LR size (HxW)")
    parser.add_argument("--calib", default="default")
    parser.add_argument("--schemes", default="full,sr-float,sr-int16")
    parser.add_argument("--io", default="uint8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="markdown file for the results (printed as JSON as well)")
    args = parser.parse_args()
    sections = [measure_model(name, args) for name in args.models.split(",")]
    if args.out:
        header = (f"# INT8 TFLite vs float TFLite on Set5 x{args.scale}\n\n"
                  f"`python benchmarks/scripts/tflite_int8_set5.py {' '.join(sys.argv[1:])}`, "
                  f"{datetime.date.today()}, {platform.machine()} ({os.cpu_count()} CPUs visible), "
                  f"ai-edge-quantizer {_version('ai-edge-quantizer')}, ai-edge-litert {_version('ai-edge-litert')}, "
                  f"litert-torch {_version('litert-torch')}.\n")
        args.out.write_text("\n".join([header, *(markdown(results, args) for results in sections)]), encoding="utf-8")
        print(f"wrote {args.out}")


def measure_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    tile = parse_size(args.tile)
    recipe = load_recipe(args.calib)
    check_no_overlap(recipe, [args.dataset], args.scale)  # a flattering drop is worse than none
    model = load_model(ModelRequest(name, scale=args.scale, weights="official"))
    info = model.info
    pairs = load_dataset(args.dataset, args.scale)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        float_file = write_tflite(convert_tflite(model, TfliteOptions(tile)), folder / "float.tflite")
        convert_s = time.perf_counter() - started
        print(f"{name}: float conversion at {args.tile}: {convert_s:.0f} s", flush=True)
        flatbuffer = float_file.path.read_bytes()
        started = time.perf_counter()
        ranges, shape = calibrate_model(
            model, lambda size: convert_tflite(model, TfliteOptions(size)).flatbuffer, recipe, "nhwc")
        calibrate_s = time.perf_counter() - started
        print(f"calibration (incl. conversion at {shape[0]}x{shape[1]}): {calibrate_s:.0f} s", flush=True)

        reference = run_dataset("fp32", float_file, info, pairs, str(args.dataset), args.threads)
        pytorch = evaluate(PyTorchRunner(model, args.threads), info, pairs, dataset=str(args.dataset))
        rows = []
        for scheme in args.schemes.split(","):
            started = time.perf_counter()
            quantized = quantize_converted(flatbuffer, ranges, TfliteInt8Options(recipe, io=args.io, scheme=scheme),
                                           info.data_range, shape)
            quantize_s = time.perf_counter() - started
            path = folder / f"int8_{scheme}.tflite"
            path.write_bytes(quantized.flatbuffer)
            artifact = Artifact(path, replace(float_file.metadata, precision="int8", quantization=quantized.details()))
            row = run_dataset(f"int8 {scheme}", artifact, info, pairs, str(args.dataset), args.threads)
            row.quantized = quantized
            print(f"  {quantized.summary()} (quantised in {quantize_s:.1f} s)", flush=True)
            rows.append(row)

        runners = {row.label: TfliteRunner(row.file, threads=args.threads) for row in [reference, *rows]}
        io_details = {label: runner.io_details for label, runner in runners.items()}
        delegates = {label: runner.delegate for label, runner in runners.items()}
        speed = measure(runners, info, [tile], warmup=1, runs=args.runs, threads=args.threads)

    results = summarise(name, args, reference, pytorch, rows, speed, io_details, delegates,
                        {"convert_s": round(convert_s, 1), "calibrate_s": round(calibrate_s, 1),
                         "calibration": recipe.summary()})
    print(json.dumps(results, indent=1, default=str), flush=True)
    return results


def summarise(name: str, args: argparse.Namespace, reference: Row, pytorch: EvalReport, rows: list[Row], speed: Any,
              io_details: dict[str, Any], delegates: dict[str, str], timings: dict[str, Any]) -> dict[str, Any]:
    by_label = {t.runner: t.median_s * 1e3 for t in speed.timings}  # measure() labels timings by our keys
    data_range = reference.file.metadata.data_range
    schemes = []
    for row in rows:
        assert row.quantized is not None
        schemes.append({
            "scheme": row.quantized.scheme,
            "fp32_y_psnr": round(reference.report.mean.psnr_y, 4),
            "int8_y_psnr": round(row.report.mean.psnr_y, 4),
            "drop_db": round(reference.report.mean.psnr_y - row.report.mean.psnr_y, 4),
            "int8_ssim_y": round(row.report.mean.ssim_y, 4),
            "output_psnr_vs_fp32_db": round(output_psnr(row, reference, data_range), 2),
            "op_precisions": dict(row.quantized.op_precisions),
            "per_image_y_psnr": {i.name: round(i.scores.psnr_y, 3) for i in row.report.images},
            "median_ms": round(by_label[row.label], 1),
            "speedup_vs_fp32": round(by_label[reference.label] / by_label[row.label], 2),
            "delegate": delegates[row.label],
        })
    return {
        "model": f"{name} x{args.scale} (official weights)",
        "tile": args.tile,
        "io": args.io,
        "threads": args.threads,
        "runs": args.runs,
        "pytorch_y_psnr": round(pytorch.mean.psnr_y, 4),
        "fp32_tflite_y_psnr": round(reference.report.mean.psnr_y, 4),
        "fp32_per_image_y_psnr": {i.name: round(i.scores.psnr_y, 3) for i in reference.report.images},
        "fp32_median_ms": round(by_label[reference.label], 1),
        "schemes": schemes,
        "io_details": {label: {end: {"dtype": np.dtype(d["dtype"]).name, "quantization": list(d["quantization"])}
                               for end, d in zip(("input", "output"), details)}
                       for label, details in io_details.items()},
        "p90_ms": {t.runner: round(t.p90_s * 1e3, 1) for t in speed.timings},
        **timings,
    }


def markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"## {results['model']}",
        "",
        f"One float TFLite file at {results['tile']} (NHWC), every Set5 LR image reflect-padded into it; "
        f"INT8 files quantised from it with ai-edge-quantizer, {results['io']} I/O, calibration "
        f"{results['calibration']} (float conversion {results['convert_s']} s; calibration, with its "
        f"conversion at the patch size, {results['calibrate_s']} s). PyTorch on the same images: "
        f"{results['pytorch_y_psnr']:.3f} dB. Latency: median of {results['runs']} interleaved runs per file at "
        f"{results['tile']}, {results['threads']} thread(s), one process.",
        "",
        "| file | Set5 Y-PSNR | drop (dB) | output PSNR vs fp32 | ops (type: count) | median ms | speed vs fp32 | delegate |",
        "|---|---|---|---|---|---|---|---|",
        f"| fp32 TFLite | {results['fp32_tflite_y_psnr']:.3f} | - | - | all float32 | "
        f"{results['fp32_median_ms']:.0f} | 1.00x | xnnpack |",
    ]
    for row in results["schemes"]:
        ops = ", ".join(f"{k}: {v}" for k, v in sorted(row["op_precisions"].items()))
        lines.append(f"| int8 {row['scheme']} | {row['int8_y_psnr']:.3f} | {row['drop_db']:.3f} | "
                     f"{row['output_psnr_vs_fp32_db']:.2f} dB | {ops} | {row['median_ms']:.0f} | "
                     f"{row['speedup_vs_fp32']:.2f}x | {row['delegate']} |")
    lines += ["", "Per image (Y-PSNR, dB):", "",
              "| file | " + " | ".join(results["fp32_per_image_y_psnr"]) + " |",
              "|---|" + "---|" * len(results["fp32_per_image_y_psnr"]),
              "| fp32 | " + " | ".join(f"{v:.3f}" for v in results["fp32_per_image_y_psnr"].values()) + " |"]
    for row in results["schemes"]:
        lines.append(f"| int8 {row['scheme']} | " + " | ".join(f"{v:.3f}" for v in row["per_image_y_psnr"].values())
                     + " |")
    lines += ["", "I/O as the LiteRT interpreter reports it (dtype, (scale, zero point)):", ""]
    for label, details in results["io_details"].items():
        shown = "; ".join(f"{end} {d['dtype']} {tuple(round(x, 6) for x in d['quantization'])}"
                          for end, d in details.items())
        lines.append(f"- {label}: {shown}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
