"""Set5 x4 Y-PSNR and latency of ExecuTorch FP32 and INT8 (XNNPACK) next to ONNX Runtime FP32, in one process.

Official E-RFDN x4 and IMDN x4. Each runtime gets its Set5 Y-PSNR (whole
images: the programs are dynamic), its median latency at each LR size and
its speed relative to ONNX Runtime FP32 (all single-threaded, so the
comparison does not depend on what else the machine runs). Not a test: the
numbers go into benchmarks/results/executorch_set5.md.

    python benchmarks/scripts/executorch_set5.py --dataset ../shared/datasets/Set5 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sr_export.bench.evaluate import evaluate
from sr_export.data.datasets import load_dataset
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.models.loader import ModelRequest, load_model
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.executorch.runner import ExecuTorchRunner
from sr_export.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from sr_export.runtimes.registry import get_runtime
from sr_export.targets.profiles import parse_size


def median_ms(runner, size: tuple[int, int], channels: int, warmup: int, runs: int) -> float:
    batch = np.random.default_rng(0).uniform(0, 255, (1, channels, *size)).astype(np.float32)
    for _ in range(warmup):
        runner.infer(batch)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runner.infer(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(name: str, dataset: Path, sizes: list[tuple[int, int]], folder: Path, runs: int) -> list[dict]:
    model = load_model(ModelRequest(name, scale=4, weights="official"))
    pairs = load_dataset(dataset, 4)
    executorch = get_runtime("executorch")
    runners = {
        "onnxruntime fp32": OnnxRuntimeRunner(save_export(model, ExportOptions(), folder), threads=1),
        "executorch fp32": ExecuTorchRunner(executorch.from_model(model, folder), threads=1),
        "executorch int8": ExecuTorchRunner(executorch.from_model(
            model, folder, precision="int8", calibration=CalibrationSet(load_recipe("default"), model.info)),
            threads=1),
    }
    rows = []
    for label, runner in runners.items():
        score = evaluate(runner, model.info, pairs, dataset=str(dataset)).mean.psnr_y
        latency = {f"{h}x{w}": round(median_ms(runner, (h, w), model.info.in_channels, 2, runs), 1) for h, w in sizes}
        rows.append({"model": f"{name} x4", "runtime": label, "set5_y_psnr": round(score, 3), "median_ms": latency})
    base = rows[0]
    for row in rows:
        row["speed_vs_ort_fp32"] = {k: round(base["median_ms"][k] / v, 2) for k, v in row["median_ms"].items()}
        row["set5_drop_db"] = round(base["set5_y_psnr"] - row["set5_y_psnr"], 3)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--models", default="erfdn,imdn")
    parser.add_argument("--sizes", default="256x256,360x640")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for name in args.models.split(",") for row in measure(name, args.dataset, sizes, Path(folder),
                                                                           args.runs)]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
