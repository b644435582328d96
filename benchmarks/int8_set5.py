"""Float vs INT8 on Set5 for the official E-RFDN x4 and IMDN x4 weights.

Writes the table the INT8 issue asks for: Set5 Y-PSNR in FP32 and INT8, the
drop, and the FP32/INT8 latency ratio measured side by side in this process,
for each recipe and QDQ flavour (ONNX Runtime, and the TensorRT QDQ run in
ONNX Runtime). Calibration never sees Set5 (checked by content).

    python benchmarks/int8_set5.py [--models erfdn,imdn] [--recipes default,mixed,qat,path/to.toml] [--exporter legacy|dynamo]
                                   [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sr_export.bench.evaluate import evaluate
from sr_export.bench.speed import measure
from sr_export.data.datasets import load_dataset
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.models.loader import ModelRequest, load_model
from sr_export.quantize.calibration_data import check_no_overlap
from sr_export.quantize.qdq import artifact_statistics, load_float_proto, quantize_onnx
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.open import open_runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="erfdn,imdn")
    parser.add_argument("--recipes", default="default,mixed")
    parser.add_argument("--flavours", default="onnxruntime,tensorrt")
    parser.add_argument("--dataset", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/Set5"))
    parser.add_argument("--speed-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--exporter", default="legacy", choices=("legacy", "dynamo"),
                        help="ONNX exporter (default legacy: the graph the published table was measured on)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = load_model(ModelRequest(name, scale=4, weights="official"))
            pairs = load_dataset(args.dataset, 4)
            float_artifact = save_export(model, ExportOptions(exporter=args.exporter), Path(tmp))
            float_runner = open_runner(float_artifact)
            float_psnr = evaluate(float_runner, model.info, pairs, dataset="Set5").mean.psnr_y
            for recipe_name in args.recipes.split(","):
                recipe = load_recipe(recipe_name)
                check_no_overlap(recipe, [args.dataset], 4)
                statistics = artifact_statistics(float_artifact, recipe, load_float_proto(float_artifact))
                for flavour in args.flavours.split(","):
                    out = Path(tmp) / f"{name}_{Path(recipe_name).stem}_{flavour}.onnx"
                    int8 = quantize_onnx(float_artifact, recipe, flavour=flavour, output=out, statistics=statistics)
                    int8_runner = open_runner(int8)
                    details = json.loads(_details(out))
                    int8_psnr = evaluate(int8_runner, model.info, pairs, dataset="Set5").mean.psnr_y
                    speed = measure({"fp32": float_runner, "int8": int8_runner}, model.info,
                                    [(args.speed_size, args.speed_size)], runs=args.runs)
                    ratio = speed.speedup("int8", "fp32", (args.speed_size, args.speed_size))
                    row = {"model": f"{name} x4", "recipe": recipe.name, "flavour": flavour,
                           "fp32_psnr_y": round(float_psnr, 3), "int8_psnr_y": round(int8_psnr, 3),
                           "drop_db": round(float_psnr - int8_psnr, 3), "speed_ratio_fp32_over_int8": round(ratio, 3),
                           "fp32_ms": round(speed.timings[0].median_s * 1e3, 1),
                           "int8_ms": round(speed.timings[1].median_s * 1e3, 1),
                           "float_nodes": len(details["float_nodes"]),
                           "float_tensors": len(details.get("float_tensors", {})),
                           **_finetune_columns(details.get("finetuned"))}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("| model | recipe | flavour | FP32 Y-PSNR | INT8 Y-PSNR | drop | FP32 ms | INT8 ms | FP32/INT8 | float nodes "
          "| float tensors | fine-tuning min | calibration L1 before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['recipe']} | {r['flavour']} | {r['fp32_psnr_y']:.3f} | {r['int8_psnr_y']:.3f} | "
              f"{r['drop_db']:.3f} | {r['fp32_ms']} | {r['int8_ms']} | {r['speed_ratio_fp32_over_int8']:.2f}x | "
              f"{r['float_nodes']} | {r['float_tensors']} | {r['finetune_minutes'] or '-'} | "
              + (f"{r['calib_loss_before']:.5f} -> {r['calib_loss_after']:.5f} |" if r["calib_loss_after"] else "- |"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def _finetune_columns(record: dict | None) -> dict:
    """Fine-tuning minutes and the distillation loss (on calibration patches) before and after, if it ran."""
    if record is None:
        return {"finetune_minutes": None, "calib_loss_before": None, "calib_loss_after": None}
    return {"finetune_minutes": round(record["minutes"], 1), "calib_loss_before": round(record["loss_before"], 6),
            "calib_loss_after": round(record["loss_after"], 6)}


def _details(path: Path) -> str:
    import onnx

    from sr_export.quantize.qdq import INT8_METADATA_KEY

    proto = onnx.load(str(path), load_external_data=False)
    return next(p.value for p in proto.metadata_props if p.key == INT8_METADATA_KEY)


if __name__ == "__main__":
    main()
