"""TensorRT 10 only: precision builder flags and the implicit INT8 entropy calibrator.

TensorRT 11 removed both (its networks are strongly typed), so nothing here
may be reached there; ``make test`` checks these names against TensorRT 10.3
(JetPack 6) alone. Implicit calibration has been deprecated since 10.1 and is
kept for users who ask for it (``calibrator = "entropy"``): the explicit QDQ
graph is the route that also works on TensorRT 11.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.io import content_sha256
from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.calibration_data import CalibrationSet
from sr_export.quantize.recipes import load_recipe
from sr_export.runtimes.tensorrt.settings import EngineSettings


def configure_weakly_typed(trt: Any, config: Any, settings: EngineSettings, profile: Any, onnx: Artifact,
                           calibration: CalibrationSet | None = None) -> None:
    """Precision flags for a weakly typed network; with ``calibrator = "entropy"`` an implicit calibrator too,
    fed by ``calibration`` (default: the set of the settings' recipe).

    An FP16-typed or QDQ graph still needs its flag in a weakly typed network;
    FP16 stays allowed under INT8 for the layers TensorRT does not quantise.
    """
    if settings.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if settings.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if settings.calibrator == "entropy":
        calibration = calibration if calibration is not None else calibration_set(onnx, settings)
        config.int8_calibrator = entropy_calibrator(trt, calibration, calibration_cache_path(onnx, calibration))
        config.set_calibration_profile(profile)


def calibration_cache_path(onnx: Artifact, calibration: CalibrationSet) -> Path:
    """Where the calibrator's scales are kept: under the one calibration key, so a re-exported graph,
    other weights or another recipe never reuse them."""
    graph = f"onnx-sha256:{content_sha256(onnx.path)}"
    key = CalibrationKey(weights=onnx.metadata.weights_sha256 or graph, graph=graph,
                         calibration=calibration.identity, layout="NCHW")
    return key.path("tensorrt", suffix=".calib")


def calibration_set(onnx: Artifact, settings: EngineSettings) -> CalibrationSet:
    """The calibration set of the settings' recipe for the model behind ``onnx``."""
    if not settings.calibration:
        raise SrExportError("the entropy calibrator needs a calibration recipe (--calib RECIPE)")
    return CalibrationSet(load_recipe(settings.calibration), onnx.metadata.model_info())


def entropy_calibrator(trt: Any, batches: Iterable[np.ndarray], cache: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` fed by any iterable of batches, one by one, reusing ``cache`` when it exists."""
    from sr_export.runtimes.tensorrt.cuda_buffers import device_buffers

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._pending = iter(batches)
            self._buffers = device_buffers()
            self._current: Any = None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._pending, None)
            if batch is None:
                return None
            self._current = self._buffers.upload(np.ascontiguousarray(batch, np.float32))
            return [self._buffers.address(self._current)]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            from sr_export.core.io import atomic_path

            with atomic_path(cache) as tmp:
                tmp.write_bytes(bytes(data))

    return EntropyCalibrator()
