"""Set5 Y-PSNR through TFLite (LiteRT) next to ONNX Runtime, for official E-RFDN x4 and IMDN x4.

Not a test (one conversion per image): the numbers go into reports. TFLite
artifacts are fixed-size, so each Set5 image gets an artifact at its own LR
size ("per-image"); with ``--tile HxW`` one artifact of that size runs every
image in tiles instead. ONNX Runtime runs one dynamic-size export.

    python benchmarks/scripts/tflite_set5.py --dataset ../shared/datasets/Set5 [--tile 64x64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sr_export.bench.evaluate import evaluate
from sr_export.data.datasets import load_dataset
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.models.loader import ModelRequest, load_model
from sr_export.runtimes.onnxruntime.runner import OnnxRuntimeRunner
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.tflite.convert import TfliteOptions, convert_tflite, write_tflite
from sr_export.runtimes.tflite.runner import TfliteRunner
from sr_export.targets.profiles import parse_size


def y_psnr(report) -> float:
    return report.mean.psnr_y


def measure(name: str, dataset: Path, tile: tuple[int, int] | None, folder: Path) -> dict:
    model = load_model(ModelRequest(name, scale=4, weights="official"))
    pairs = load_dataset(dataset, 4)
    onnx = save_export(model, ExportOptions(), folder)
    ort = evaluate(OnnxRuntimeRunner(onnx), model.info, pairs, dataset=str(dataset))
    if tile is None:
        per_image = []
        for pair in pairs:
            converted = convert_tflite(model, TfliteOptions(pair.lr.shape[:2]))
            artifact = write_tflite(converted, folder / f"{name}_{pair.name}.tflite")
            per_image.append(evaluate(TfliteRunner(artifact), model.info, [pair], dataset=str(dataset)))
        tflite_scores = [r.images[0].scores.psnr_y for r in per_image]
        tflite = sum(tflite_scores) / len(tflite_scores)
        how = "per-image artifacts"
    else:
        artifact = write_tflite(convert_tflite(model, TfliteOptions(tile)), folder / f"{name}_tile.tflite")
        tflite = y_psnr(evaluate(open_runner(artifact), model.info, pairs, dataset=str(dataset)))
        how = f"{tile[0]}x{tile[1]} tiles"
    row = {"model": f"{name} x4", "onnxruntime_y_psnr": round(y_psnr(ort), 4), "tflite_y_psnr": round(tflite, 4),
           "difference_db": round(tflite - y_psnr(ort), 4), "tflite_run": how}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--tile", help="HxW: one tiled artifact instead of one per image")
    parser.add_argument("--models", default="erfdn,imdn")
    args = parser.parse_args()
    tile = parse_size(args.tile) if args.tile else None
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            measure(name, args.dataset, tile, Path(folder))


if __name__ == "__main__":
    main()
