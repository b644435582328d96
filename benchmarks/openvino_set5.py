"""ONNX Runtime FP32 against OpenVINO FP32, BF16 and accuracy-controlled INT8, for the official E-RFDN x4 and
IMDN x4 weights: Set5 Y-PSNR, latency (median, p90) at 256x256 and 360x640, and speed relative to ONNX Runtime
FP32, all measured in this process, every runner on one thread, runs interleaved.

The IRs are built as `sr-export build --target openvino-cpu|openvino-bf16|openvino-int8` builds them (INT8:
recipe `accuracy`, calibrated on the built-in photos, its max_drop measured on held-out patches; Set5 is never
seen before it is scored). One more row, `INT8 + BF16`, compiles the INT8 IR with the BF16 hint, so the
operations the accuracy control kept in float run in BF16: measured, not a shipped target.

    python benchmarks/openvino_set5.py [--models erfdn,imdn] [--runs 5] [--threads 1] [--recipe accuracy]
                                       [--output results.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.bench.evaluate import evaluate
from sr_export.bench.speed import measure
from sr_export.data.datasets import load_dataset
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.models.loader import ModelRequest, load_model
from sr_export.quantize.calibration_data import CalibrationSet, check_no_overlap
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.openvino import OpenVinoRuntime
from sr_export.runtimes.openvino.device import OpenVinoSession

SIZES = ((256, 256), (360, 640))
LABELS = {"ort-fp32": "ONNX Runtime FP32", "ov-fp32": "OpenVINO FP32", "ov-bf16": "OpenVINO BF16",
          "ov-int8": "OpenVINO INT8", "ov-int8-bf16": "OpenVINO INT8 + BF16 (float ops)"}


class SessionRunner:
    """An OpenVINO IR compiled at a precision of our choosing (the INT8 IR with the BF16 hint)."""

    def __init__(self, name: str, path: Path, precision: str, threads: int) -> None:
        self.name = name
        self.session = OpenVinoSession(str(path), threads, precision=precision)
        self.last_inference_time = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.session.infer(np.ascontiguousarray(batch, np.float32))


def measure_model(name: str, args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    model = load_model(ModelRequest(name, scale=4, weights="official"))
    pairs = load_dataset(args.dataset, 4)
    recipe = load_recipe(args.recipe)
    check_no_overlap(recipe, [args.dataset], 4)
    onnx = save_export(model, ExportOptions(exporter=args.exporter), folder)
    runtime = OpenVinoRuntime()
    fp32 = runtime.build(onnx, folder, precision="fp32")
    bf16 = runtime.build(onnx, folder, precision="bf16")
    int8 = runtime.build(onnx, folder, precision="int8", calibration=CalibrationSet(recipe, model.info))
    runners = {
        "ort-fp32": open_runner(onnx, threads=args.threads),
        "ov-fp32": open_runner(fp32, threads=args.threads),
        "ov-bf16": open_runner(bf16, threads=args.threads),
        "ov-int8": open_runner(int8, threads=args.threads),
        "ov-int8-bf16": SessionRunner("openvino int8+bf16", int8.path, "bf16", args.threads),
    }
    quality = {key: evaluate(runner, model.info, pairs, dataset="Set5").mean.psnr_y for key, runner in runners.items()}
    speed = measure(runners, model.info, list(SIZES), warmup=1, runs=args.runs, threads=args.threads)
    quantization = dict(int8.metadata.quantization)
    rows = []
    for key in runners:
        row: dict[str, Any] = {"model": f"{name} x4", "runner": key, "psnr_y": round(quality[key], 3),
                               "drop_db": round(quality["ort-fp32"] - quality[key], 3)}
        for hw in SIZES:
            timing = next(t for t in speed.timings if t.runner == key and tuple(t.input_hw) == hw)
            size = f"{hw[0]}x{hw[1]}"
            row[f"{size}_median_ms"] = round(timing.median_s * 1e3, 1)
            row[f"{size}_p90_ms"] = round(timing.p90_s * 1e3, 1)
            row[f"{size}_speedup"] = round(speed.speedup(key, "ort-fp32", hw), 2)
        if key.startswith("ov-int8"):
            row["int8"] = {k: v for k, v in quantization.items() if k != "float_operations"}
            row["int8"]["float_operations"] = len(quantization["float_operations"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | runner | Set5 Y-PSNR | drop | 256x256 median / p90 ms | speed | 360x640 median / p90 ms "
             "| speed |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model'].replace('erfdn', 'E-RFDN').replace('imdn', 'IMDN')} | {LABELS[r['runner']]} | "
                     f"{r['psnr_y']:.3f} | {r['drop_db']:.3f} | {r['256x256_median_ms']} / {r['256x256_p90_ms']} | "
                     f"{r['256x256_speedup']:.2f}x | {r['360x640_median_ms']} / {r['360x640_p90_ms']} | "
                     f"{r['360x640_speedup']:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    import onnxruntime
    import openvino

    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="erfdn,imdn")
    parser.add_argument("--dataset", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/Set5"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--exporter", default="legacy", choices=("legacy", "dynamo"))
    parser.add_argument("--recipe", default="accuracy", help="INT8 recipe (with precision.max_drop)")
    parser.add_argument("--output", type=Path, help="write the results (Markdown, with the JSON rows) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for name in args.models.split(",") for row in measure_model(name, args, Path(tmp))]
    text = table(rows)
    print(text)
    if args.output:
        import nncf

        cpu = openvino.Core().get_property("CPU", "FULL_DEVICE_NAME")
        conditions = (f"{cpu} ({platform.machine()}), {args.threads} thread(s), {args.runs} timed runs "
                      f"after 1 warm-up, runners interleaved; onnxruntime {onnxruntime.__version__}, openvino "
                      f"{openvino.__version__}, nncf {nncf.__version__}; {args.exporter} exporter; INT8 recipe "
                      f"{args.recipe}")
        args.output.write_text(f"# OpenVINO on Set5 x4\n\n`python benchmarks/openvino_set5.py`; {conditions}.\n"
                               "Drop and speed are relative to ONNX Runtime FP32.\n\n"
                               f"{text}\n\n```json\n{json.dumps(rows, indent=1)}\n```\n")


if __name__ == "__main__":
    main()
