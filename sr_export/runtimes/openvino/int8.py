"""OpenVINO INT8: NNCF post-training quantisation under an accuracy budget in Y-PSNR.

``nncf.quantize_with_accuracy_control`` calibrates on the build's shared
:class:`~sr_export.quantize.calibration_data.CalibrationSet`, measures the
Y-PSNR the quantised IR loses against the FP32 IR on the recipe's held-out
patches (never calibrated on, never evaluation images), and puts the
operations whose quantisation costs most back in float until the loss is
within the recipe's ``precision.max_drop``. The metadata lists every
operation left in float, and why.

Ranges are NNCF's own (min/max of the calibration activations, per-channel
weights, the CPU's mixed preset); the recipe's ``[method]`` is ONNX
Runtime's and TFLite's, and is not used here.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, stage

if TYPE_CHECKING:
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.runtimes.openvino.options import OpenVinoOptions

# NNCF's closing report: "17 out of 89 were reverted back to the floating-point precision:" then one name a line.
_REVERTED = re.compile(r"(\d+) out of (\d+) were reverted back to the floating-point precision:?(.*)", re.S)
_DROP = re.compile(r"achieved required accuracy drop ([-\d.e]+)")


def calibration_for(settings: OpenVinoOptions, calibration: CalibrationSet | None, onnx_artifact: Artifact
                    ) -> CalibrationSet:
    """The build's calibration set, or the options' recipe's; refused without an accuracy budget."""
    from sr_export.quantize.calibration_data import CalibrationSet
    from sr_export.quantize.recipes import load_recipe

    if calibration is None:
        calibration = CalibrationSet(load_recipe(settings.calibration), onnx_artifact.metadata.model_info())
    recipe = calibration.recipe
    if recipe.max_drop is None:
        raise SrExportError(f"calibration recipe {recipe.name} has no precision.max_drop: OpenVINO INT8 is quantised "
                            "under an accuracy budget in Y-PSNR dB; use recipe accuracy or add max_drop (and "
                            "patches.holdout) to the recipe")
    return calibration


def quantize_ir(model: Any, onnx_artifact: Artifact, settings: OpenVinoOptions,
                calibration: CalibrationSet | None) -> tuple[Any, dict[str, Any]]:
    """(the INT8 ``openvino.Model``, what the metadata records of its quantisation)."""
    import nncf
    import openvino as ov

    calibration = calibration_for(settings, calibration, onnx_artifact)
    recipe, info = calibration.recipe, calibration.info
    if onnx_artifact.metadata.static_hw is not None:
        height, width = onnx_artifact.metadata.static_hw
        # The accuracy budget is judged on held-out patches against their HR originals, at the patches' size.
        raise SrExportError(f"OpenVINO INT8 needs an IR that takes any size (its accuracy budget is measured on "
                            f"{recipe.patch_size}x{recipe.patch_size} held-out patches), not one fixed at "
                            f"{height}x{width}: build without --shape (the IR then runs every size)")
    held = calibration.held_out
    held_batches = held.batches(info)
    items = list(range(len(held)))

    def validate(compiled: Any, indices: Any) -> tuple[float, list[float]]:
        # NNCF ranks operations by the per-patch values and compares the mean with the FP32 model's.
        scores = [held.y_psnr(i, compiled(held_batches[i])[0], info) for i in indices]
        return float(np.mean(scores)), scores

    reference = validate(ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)[0]
    # NNCF draws progress bars on stdout, which belongs to --json: they go to stderr with the other progress.
    with _nncf_report() as report, stage("quantize", "NNCF quantize_with_accuracy_control"), \
            contextlib.redirect_stdout(sys.stderr):
        quantized = nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(list(calibration.batches)), nncf.Dataset(items, lambda i: held_batches[i]), validate,
            max_drop=recipe.max_drop, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration))
    int8_score = validate(ov.Core().compile_model(quantized, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)[0]
    kept = float_operations(quantized, report)
    return quantized, {
        "tool": f"nncf {nncf.__version__} quantize_with_accuracy_control", "recipe": recipe.name,
        "calibration_patches": len(calibration), "held_out_patches": len(held),
        "held_out_pixels_shared_with_calibration": round(held.shared, 3), "max_drop_db": recipe.max_drop,
        "held_out_y_psnr_fp32": round(reference, 4), "held_out_y_psnr_int8": round(int8_score, 4),
        "held_out_drop_db": round(reference - int8_score, 4),
        "quantized_operations": quantized_count(quantized), "float_operations": kept,
    }


_CONVOLUTIONS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")


def int8_weights(op: Any) -> bool:
    """Whether a convolution's weights are INT8: a FakeQuantize on them, or (once NNCF compressed them) an
    8-bit constant behind Convert/Subtract/Multiply."""
    node = op.input(1).get_source_output().get_node()
    for _ in range(4):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return node.get_element_type().get_type_name() in ("i8", "u8")
        if kind not in ("Convert", "Subtract", "Multiply", "Reshape"):
            return False
        node = node.input(0).get_source_output().get_node()
    return False


def quantized_count(model: Any) -> int:
    """Convolutions whose weights are INT8."""
    return sum(1 for op in model.get_ops() if op.get_type_name() in _CONVOLUTIONS and int8_weights(op))


def float_operations(model: Any, report: list[str]) -> list[dict[str, str]]:
    """Every operation left in float and why: reverted by the accuracy control (NNCF's own list), or a
    convolution NNCF did not quantise at all."""
    reverted: list[str] = []
    for message in report:
        match = _REVERTED.search(message)
        if match:
            reverted = [line.strip() for line in match.group(3).splitlines() if line.strip()]
    rows = [{"operation": name, "why": "accuracy control: quantising it cost the most Y-PSNR on the held-out "
             "patches, reverted to keep the drop within max_drop"} for name in reverted]
    for op in model.get_ops():
        name = op.get_friendly_name()
        if op.get_type_name() in _CONVOLUTIONS and name not in reverted and not int8_weights(op):
            rows.append({"operation": name, "why": "not quantised by NNCF (no INT8 pattern for it)"})
    return rows


@contextmanager
def _nncf_report() -> Iterator[list[str]]:
    """NNCF's log records while it runs (its list of reverted operations is only logged), kept off the console."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("nncf")
    handler, level, propagate = Keep(), logger.level, logger.propagate
    quiet = list(logger.handlers)
    for other in quiet:
        logger.removeHandler(other)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        for other in quiet:
            logger.addHandler(other)
        logger.setLevel(level)
        logger.propagate = propagate
