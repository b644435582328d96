"""TensorRT 10 only: precision builder flags and the implicit INT8 entropy calibrator.

TensorRT 11 removed both (its networks are strongly typed), so nothing here
may be reached there; ``make test`` checks these names against TensorRT 10.3
(JetPack 6) alone. Implicit calibration has been deprecated since 10.1 and is
kept for users who ask for it (``calibrator = "entropy"``): the explicit QDQ
graph is the route that also works on TensorRT 11.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.runtimes.tensorrt.settings import EngineSettings


def configure_weakly_typed(trt: Any, config: Any, settings: EngineSettings, profile: Any, onnx: Artifact) -> None:
    """Precision flags for a weakly typed network; with ``calibrator = "entropy"`` an implicit calibrator too.

    An FP16-typed or QDQ graph still needs its flag in a weakly typed network;
    FP16 stays allowed under INT8 for the layers TensorRT does not quantise.
    """
    if settings.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if settings.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if settings.calibrator == "entropy":
        batches = calibration_batches(onnx, settings)
        cache = calibration_cache_path(onnx.path, settings.calibration or "builtin")
        config.int8_calibrator = entropy_calibrator(trt, batches, cache)
        config.set_calibration_profile(profile)


def calibration_cache_path(onnx_path: Path, recipe: str) -> Path:
    return onnx_path.with_name(f"{onnx_path.stem}.{Path(recipe).stem}.calib")


def calibration_batches(onnx: Artifact, settings: EngineSettings) -> list[np.ndarray]:
    """The calibration recipe's LR patches as (1, C, H, W) float32 batches in the model's data range."""
    if not settings.calibration:
        raise SrExportError("the entropy calibrator needs a calibration recipe (--calib RECIPE)")
    try:
        from sr_export.quantize.calibration_data import make_calibration_set
        from sr_export.quantize.recipes import load_recipe
    except ModuleNotFoundError as exc:
        raise SrExportError("INT8 calibration (sr_export.quantize) is not part of this sr-export") from exc
    recipe = load_recipe(settings.calibration)
    info = onnx.metadata.model_info()
    return list(make_calibration_set(recipe, info.scale).batches(info))


def entropy_calibrator(trt: Any, batches: Sequence[np.ndarray], cache: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` one by one, reusing ``cache`` when it exists."""
    from sr_export.runtimes.tensorrt.cuda_buffers import device_buffers

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._pending = list(batches)
            self._buffers = device_buffers()
            self._current: Any = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            if not self._pending:
                return None
            self._current = self._buffers.upload(self._pending.pop(0))
            return [self._buffers.address(self._current)]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            from sr_export.core.io import atomic_path

            with atomic_path(cache) as tmp:
                tmp.write_bytes(bytes(data))

    return EntropyCalibrator()
