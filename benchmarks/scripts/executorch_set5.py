"""Set5 x4 Y-PSNR and latency of ExecuTorch FP32 and INT8 (XNNPACK) next to ONNX Runtime FP32, in one process.

Official E-RFDN x4 and IMDN x4. Each runtime gets its Set5 Y-PSNR (whole
images: the programs are dynamic), its median latency at each LR size and
its speed relative to ONNX Runtime FP32 (all single-threaded; the runners
take turns run by run, so a load that changes on a shared machine slows
them alike). Not a test: the numbers go into
benchmarks/results/executorch_set5.md.

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


def median_ms(runners: dict, size: tuple[int, int], channels: int, warmup: int, runs: int) -> dict[str, float]:
    """Median latency of each runner at ``size``. The runners take turns, run by run, so that a load that
    changes during the measurement (a shared machine) slows them alike and the ratios stay fair."""
    batch = np.random.default_rng(0).uniform(0, 255, (1, channels, *size)).astype(np.float32)
    for runner in runners.values():
        for _ in range(warmup):
            runner.infer(batch)
    times: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(runs):
        for label, runner in runners.items():
            started = time.perf_counter()
            runner.infer(batch)
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


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
    latency = {f"{h}x{w}": median_ms(runners, (h, w), model.info.in_channels, 2, runs) for h, w in sizes}
    rows = []
    for label, runner in runners.items():
        score = evaluate(runner, model.info, pairs, dataset=str(dataset)).mean.psnr_y
        rows.append({"model": f"{name} x4", "runtime": label, "set5_y_psnr": round(score, 3),
                     "median_ms": {size: round(by_runner[label], 1) for size, by_runner in latency.items()}})
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
