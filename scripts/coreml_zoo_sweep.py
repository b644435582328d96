"""Convert every zoo model at x2/x3/x4 to a Core ML FP16 program and measure it against PyTorch.

Run: python scripts/coreml_zoo_sweep.py [--out DIR] [--range 24x24:256x256] [--json results.json]
Prints one row per model: conversion route and time, package size, worst PSNR
and max |diff| (fraction of the data range) over real-image inputs, run by the
reference executor (or Core ML itself on a Mac), and whether the core fp16
tolerance holds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sr_export.checks.parity import run_parity, tolerance_for
from sr_export.cli.coreml_cli import range_argument
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo
from sr_export.runtimes.coreml import CoreMLRuntime
from sr_export.runtimes.coreml.convert import convert_model
from sr_export.runtimes.coreml.options import CoreMLOptions
from sr_export.runtimes.coreml.package import package_size, write_package
from sr_export.runtimes.coreml.sizes import InputSizes
from sr_export.runtimes.pytorch import PyTorchRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the packages here (default: a temporary folder)")
    parser.add_argument("--range", dest="size_range", type=range_argument, default=((24, 24), (256, 256)))
    parser.add_argument("--models", default="idn,imdn,rfdn,rfdn-l,erfdn")
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="coreml-sweep-"))
    rows = []
    for name in args.models.split(","):
        for scale in map(int, args.scales.split(",")):
            official = any(w.scale == scale for w in zoo()[name].official_weights)
            model = load_model(ModelRequest(name, scale=scale, weights="official" if official else None))
            options = CoreMLOptions(sizes=InputSizes.from_options(size_range=args.size_range))
            started = time.perf_counter()
            converted = convert_model(model, options)
            artifact = write_package(converted, folder / f"{name}_x{scale}.mlpackage")
            seconds = time.perf_counter() - started
            runner = CoreMLRuntime().load(artifact)
            inputs = builtin_parity_inputs(model.info, list(options.sizes.check_sizes()), 1)
            report = run_parity(runner, PyTorchRunner(model), inputs, data_range=model.info.data_range,
                                precision="fp16")
            row = {
                "model": name, "scale": scale, "weights": "official" if official else "random init",
                "route": converted.route, "convert_s": round(seconds, 1),
                "size_kib": round(package_size(artifact.path) / 1024), "runner": runner.name,
                "sizes": [c.input_shape[2:] for c in report.cases],
                "worst_psnr_db": round(report.worst_psnr_db, 2),
                "max_abs_frac": report.worst_max_abs_error / model.info.data_range,
                "passed": report.passed,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    tolerance = tolerance_for("fp16")
    print(f"fp16 tolerance: PSNR >= {tolerance.min_psnr_db} dB, max|diff| <= {tolerance.max_abs_error} of range")
    print(f"{sum(r['passed'] for r in rows)}/{len(rows)} passed")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
