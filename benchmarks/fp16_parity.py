"""FP16 ONNX (FP32 I/O) against PyTorch FP32 for every zoo model and scale, in ONNX Runtime on the CPU.

    python benchmarks/fp16_parity.py [--sizes 64x64,45x71] [--out benchmarks/results/fp16-parity.md]

Official weights where the zoo has them, else the model's random initialisation
(said in the table). The inputs are sr-export's built-in photos, MATLAB-bicubic
downscaled; PSNR between the two outputs uses the model's data range as peak.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sr_export.checks.parity import run_parity
from sr_export.cli.common import sizes_argument
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.export.fp16 import save_fp16
from sr_export.export.onnx import ExportOptions, save_export
from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo
from sr_export.runtimes.onnxruntime import OnnxRuntime
from sr_export.runtimes.pytorch import PyTorchRunner

NOTE = ("ONNX Runtime's CPU provider computes FP16-typed operators in FP32 between FP16 tensors (it inserts casts), so this measures FP16 weights and FP16 rounding of every intermediate tensor, not FP16 accumulation inside GPU kernels. Official weights where the zoo has them; else random initialisation.")


def measure(name: str, scale: int, official: bool, sizes, folder: Path) -> dict:
    model = load_model(ModelRequest(name, scale=scale, weights="official" if official else None))
    fp32 = save_export(model, ExportOptions(exporter="legacy"), folder)
    fp16 = save_fp16(fp32, folder / f"{name}_x{scale}_fp16.onnx")
    report = run_parity(OnnxRuntime().load(fp16), PyTorchRunner(model), builtin_parity_inputs(model.info, sizes),
                        data_range=model.info.data_range, precision="fp16")
    return {"model": name, "scale": scale, "weights": "official" if official else "random init",
            "cases": len(report.cases), "worst_psnr_db": report.worst_psnr_db,
            "max_abs": report.worst_max_abs_error / model.info.data_range, "passed": report.passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_argument, default=[(64, 64), (45, 71)])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fp16-parity.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spec in zoo().values():
            official_scales = {w.scale for w in spec.official_weights}
            for scale in spec.scales:
                start = time.perf_counter()
                row = measure(spec.name, scale, scale in official_scales, args.sizes, Path(folder))
                rows.append(row)
                print(f"{row['model']} x{scale} ({row['weights']}): worst PSNR {row['worst_psnr_db']:.1f} dB, "
                      f"max|diff| {row['max_abs']:.2e} of range, {'pass' if row['passed'] else 'FAIL'} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    sizes = ", ".join(f"{h}x{w}" for h, w in args.sizes)
    lines = ["# FP16 ONNX vs PyTorch FP32 (ONNX Runtime CPU)", "",
             f"Inputs: 2 built-in photos at LR {sizes} per model. Threshold: PSNR >= 50 dB, max|diff| <= 2% of range.",
             "", NOTE, "", "| model | scale | weights | cases | worst PSNR (dB) | max abs diff / range | pass |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | x{r['scale']} | {r['weights']} | {r['cases']} | {r['worst_psnr_db']:.1f} | "
              f"{r['max_abs']:.2e} | {'yes' if r['passed'] else 'NO'} |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
