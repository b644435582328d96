"""Do the runtimes' INT8 builds of one model agree? PSNR between their outputs on the same built-in images.

Builds one checkpoint in INT8 for every runtime installed here that has an
INT8 path (ONNX Runtime QDQ, the TensorRT-flavour QDQ run by ONNX Runtime,
TFLite sr-float and full-integer, OpenVINO NNCF, ExecuTorch PT2E), all from
the same calibration patches, runs each on the same LR crops of the built-in
photos (the TFLite files are built at that size, so nothing is tiled) and
prints the pairwise PSNR, FP32 PyTorch included. Not a test: the table goes
into benchmarks/results/int8_across_runtimes.md.

    python benchmarks/scripts/int8_across_runtimes.py --model imdn --scale 2 [--calib default] [--size 128x128]
                                                     [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from sr_export import api
from sr_export.bench.int8_agreement import agreement
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.models.loader import LoadedModel
from sr_export.targets.profiles import parse_size

# label -> (target, options over the profile's). OpenVINO's INT8 is always accuracy-controlled: its recipe
# (`accuracy`) cuts the same 48 calibration patches as `default` and holds 16 more out.
BUILDS = {
    "onnxruntime QDQ": ("cpu-int8", {}),
    "tensorrt-flavour QDQ (run by onnxruntime)": ("cpu-int8", {"flavour": "tensorrt"}),
    "tflite sr-float": ("tflite-int8", {"int8_scheme": "sr-float"}),
    "tflite full-integer": ("tflite-int8", {"int8_scheme": "full"}),
    "openvino NNCF": ("openvino-int8", {"calibration": "accuracy"}),
    "executorch PT2E": ("executorch-xnnpack-int8", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="imdn")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--weights", default="official")
    parser.add_argument("--calib", default="default", help="recipe for every build but OpenVINO's (see BUILDS)")
    parser.add_argument("--size", default="128x128", help="LR size of the inputs and of the fixed-size files")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--only", help="comma-separated labels of BUILDS to build (default: all installed)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = parse_size(args.size)
    model = api.load_model(args.model, scale=args.scale, weights=args.weights)
    inputs = builtin_parity_inputs(model.info, [size], args.photos)
    outputs = {"FP32 PyTorch": [_pytorch(model, case.batch) for case in inputs]}
    built = {}
    wanted = args.only.split(",") if args.only else list(BUILDS)
    with tempfile.TemporaryDirectory() as tmp:
        for label in wanted:
            target, options = BUILDS[label]
            options = {"calibration": args.calib, **options}
            try:
                # Only TFLite files are fixed-size; the others take the inputs' size as they are.
                artifact = api.build(model, target, Path(tmp) / label.split()[0] / label.split()[1],
                                     options=options, shape=size if target.startswith("tflite") else None,
                                     check=False)
            except Exception as error:  # a runtime not installed here: say so in the report, go on
                print(f"{label}: not built ({type(error).__name__}: {error})", flush=True)
                continue
            built[label] = {"file": artifact.path.name, "target": target, "options": options}
            with api.open_runner(artifact, threads=2) as runner:
                outputs[label] = [np.asarray(runner.infer(case.batch)) for case in inputs]
            print(f"{label}: {artifact.path.name}", flush=True)
    table = agreement(outputs, model.info.data_range)
    print(f"\n{args.model} x{args.scale} ({args.weights}), {len(inputs)} built-in photos at {args.size} LR; "
          "PSNR between outputs, pooled (worst photo):\n")
    print(table.markdown())
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "scale": args.scale, "weights": args.weights,
                                         "calibration": args.calib, "size": list(size),
                                         "photos": [case.name for case in inputs], "builds": built,
                                         **table.to_dict()}, indent=2) + "\n")


def _pytorch(model: LoadedModel, batch: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.module(torch.from_numpy(batch)).numpy()


if __name__ == "__main__":
    main()
