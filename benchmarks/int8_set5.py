"""Float vs INT8 on Set5 for the official E-RFDN x4 and IMDN x4 weights.

Writes the table the INT8 issue asks for: Set5 Y-PSNR in FP32 and INT8, the
drop, and the FP32/INT8 latency ratio measured side by side in this process,
for each recipe and QDQ flavour (ONNX Runtime, and the TensorRT QDQ run in
ONNX Runtime). Calibration never sees Set5 (checked by content). Speed is
timed at every ``--speed-sizes`` size on every ``--threads`` count, FP32 and
INT8 interleaved, the INT8 file as ``sr-export onnx --int8`` writes it.

    python benchmarks/int8_set5.py [--models erfdn,imdn] [--recipes default,mixed,qat,path/to.toml] [--exporter legacy|dynamo]
                                   [--speed-sizes 256x256,360x640] [--threads 2,1] [--json out.json]
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
    parser.add_argument("--speed-sizes", default="256x256,360x640", help="LR sizes timed, HxW (or one side)")
    parser.add_argument("--threads", default="2,1", help="thread counts each pair is timed with")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--holdout", type=int, default=0,
                        help="also report the Y-PSNR drop on this many held-out calibration-image patches "
                             "(the selection signal: never Set5)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--exporter", default="legacy", choices=("legacy", "dynamo"),
                        help="ONNX exporter (default legacy: the graph the published table was measured on)")
    args = parser.parse_args()
    sizes = [_size(text) for text in args.speed_sizes.split(",")]
    thread_counts = [int(text) for text in args.threads.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = load_model(ModelRequest(name, scale=4, weights="official"))
            pairs = load_dataset(args.dataset, 4)
            float_artifact = save_export(model, ExportOptions(exporter=args.exporter), Path(tmp))
            float_runners = {threads: open_runner(float_artifact, threads=threads) for threads in thread_counts}
            float_runner = float_runners[thread_counts[0]]
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
                    speed = _speed(float_runners, int8, model.info, sizes, args.runs)
                    held = _held_out_drop(recipe, float_runner, int8_runner, model.info, args.holdout)
                    row = {"model": f"{name} x4", "recipe": recipe.name, "flavour": flavour,
                           "fp32_psnr_y": round(float_psnr, 3), "int8_psnr_y": round(int8_psnr, 3),
                           "drop_db": round(float_psnr - int8_psnr, 3),
                           "speed_ratio_fp32_over_int8": speed[0]["ratio"], "fp32_ms": speed[0]["fp32_ms"],
                           "int8_ms": speed[0]["int8_ms"], "speed": speed,
                           "channel_padding": len(details.get("onnxruntime_kernels", {}).get("channel_padding", {}).get("widened", {})),
                           "pooled_means": details.get("onnxruntime_kernels", {}).get("spatial_means_as_pooling", 0),
                           "float_nodes": len(details["float_nodes"]),
                           "float_tensors": len(details.get("float_tensors", {})),
                           "held_out_drop_db": held,
                           **_finetune_columns(details.get("finetuned"))}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    settings = [f"{s['size']}, {s['threads']}t" for s in rows[0]["speed"]] if rows else []
    print("| model | recipe | flavour | FP32 Y-PSNR | INT8 Y-PSNR | drop | "
          + " | ".join(f"FP32/INT8 {setting}" for setting in settings)
          + " | float nodes | float tensors | widened convs | pooled means | fine-tuning min | calibration L1 before -> after |")
    print("|---" * (12 + len(settings)) + "|")
    for r in rows:
        print(f"| {r['model']} | {r['recipe']} | {r['flavour']} | {r['fp32_psnr_y']:.3f} | {r['int8_psnr_y']:.3f} | "
              f"{r['drop_db']:.3f} | " + " | ".join(f"{s['ratio']:.2f}x" for s in r["speed"]) + " | "
              f"{r['float_nodes']} | {r['float_tensors']} | {r['channel_padding']} | {r['pooled_means']} | {r['finetune_minutes'] or '-'} | "
              + (f"{r['calib_loss_before']:.5f} -> {r['calib_loss_after']:.5f} |" if r["calib_loss_after"] else "- |"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    return int(height), int(width or height)


def _speed(float_runners: dict, int8: object, info: object, sizes: list, runs: int) -> list[dict]:
    """FP32 and INT8 interleaved, per thread count and size: medians and their ratio."""
    results = []
    for threads, float_runner in float_runners.items():
        int8_runner = open_runner(int8, threads=threads)
        report = measure({"fp32": float_runner, "int8": int8_runner}, info, sizes, runs=runs, threads=threads)
        medians = {(t.runner, t.input_hw): t.median_s * 1e3 for t in report.timings}
        for hw in sizes:
            fp32_ms, int8_ms = medians[("fp32", hw)], medians[("int8", hw)]
            results.append({"size": f"{hw[0]}x{hw[1]}", "threads": threads, "fp32_ms": round(fp32_ms, 1),
                            "int8_ms": round(int8_ms, 1), "ratio": round(fp32_ms / int8_ms, 3)})
    return results


def _held_out_drop(recipe: object, float_runner: object, int8_runner: object, info: object, count: int) -> float | None:
    """Mean Y-PSNR drop on ``count`` held-out patches of the recipe's own images (cut apart from its calibration
    patches): the signal variants are chosen by."""
    if count < 1:
        return None
    from dataclasses import replace

    from sr_export.quantize.calibration_data import make_held_out

    held = make_held_out(replace(recipe, holdout=count), info.scale)
    drops = [held.y_psnr(i, float_runner.infer(batch), info) - held.y_psnr(i, int8_runner.infer(batch), info)
             for i, batch in enumerate(held.batches(info))]
    return round(sum(drops) / len(drops), 4)


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
