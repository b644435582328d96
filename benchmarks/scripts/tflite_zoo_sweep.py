"""Convert every zoo model at x2/x3/x4 to TFLite and measure its parity with PyTorch.

Not a test (15 conversions take minutes): the numbers go into reports. Official
weights where the authors published them, random init otherwise. Each
artifact runs at its own size on real-image crops through LiteRT (XNNPACK).

    python benchmarks/scripts/tflite_zoo_sweep.py [--shape 48x48] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo
from sr_export.runtimes.pytorch import PyTorchRunner
from sr_export.runtimes.tflite.convert import TfliteOptions, convert_tflite, write_tflite
from sr_export.runtimes.tflite.runner import TfliteRunner
from sr_export.targets.profiles import parse_size


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(data_range**2 / mse)


def sweep(shape: tuple[int, int], folder: Path, models: list[str] | None = None) -> list[dict]:
    rows = []
    for name, spec in zoo().items():
        if models and name not in models:
            continue
        for scale in (2, 3, 4):
            official = spec.official_for(scale) is not None
            row = {"model": name, "scale": scale, "weights": "official" if official else "random"}
            try:
                model = load_model(ModelRequest(name, scale=scale, weights="official" if official else None))
                converted = convert_tflite(model, TfliteOptions(shape))
                artifact = write_tflite(converted, folder / f"{name}_x{scale}.tflite")
                runner, reference = TfliteRunner(artifact), PyTorchRunner(model)
                scores = [psnr(runner.infer(case.batch), reference.infer(case.batch), model.info.data_range)
                          for case in builtin_parity_inputs(model.info, [shape], 2)]
                row.update(converted=True, seconds=round(converted.seconds, 1), rewrites=list(converted.rewrites),
                           size_kib=round(artifact.path.stat().st_size / 1024), min_psnr_db=round(min(scores), 1))
            except SrExportError as exc:
                row.update(converted=False, error=str(exc))
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="48x48")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--models", help="comma-separated zoo names (default: all)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rows = sweep(parse_size(args.shape), Path(folder), args.models.split(",") if args.models else None)
    print(f"{sum(r['converted'] for r in rows)}/{len(rows)} converted in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
