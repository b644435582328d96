"""Activation statistics: one calibration run per :class:`~sr_export.quantize.cache_key.CalibrationKey`, cached.

ONNX Runtime's calibrators do the work (min-max, entropy, percentile). The
ranges are kept asymmetric; symmetric targets (TensorRT) derive their
``amax`` from the same ranges, so one calibration serves every target.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.cache import calibration_cache_dir
from sr_export.core.errors import stage
from sr_export.core.io import write_json_atomic
from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.recipes import CalibrationRecipe

STATS_VERSION = 1


@dataclass(frozen=True)
class ActivationStatistics:
    ranges: Mapping[str, tuple[float, float]]  # tensor name -> (low, high)
    method: str
    key: str
    cached: bool = False

    def amax(self, name: str) -> float:
        low, high = self.ranges[name]
        return max(abs(low), abs(high))

    def to_tensors_data(self) -> Any:
        from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.method]
        data = {name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in self.ranges.items()}
        return TensorsData(method, data)


def cache_folder() -> Path:
    return calibration_cache_dir()


class _BatchReader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, input_name: str, batches: Sequence[np.ndarray], progress: Callable[[], Any] | None) -> None:
        self._input_name = input_name
        self._batches = list(batches)
        self._next = 0
        self._progress = progress

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._batches):
            return None
        batch = self._batches[self._next]
        self._next += 1
        if self._progress is not None:
            self._progress()
        return {self._input_name: batch}

    def __len__(self) -> int:
        return len(self._batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._batches = self._batches[start_index:end_index]
        self._next = 0


@contextlib.contextmanager
def quiet_ort_quantization() -> Iterator[None]:
    """ONNX Runtime's quantisation tools print progress and advice; sr-export shows its own."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def calibrate(
    proto: Any,
    batches: Sequence[np.ndarray],
    recipe: CalibrationRecipe,
    *,
    progress: Callable[[], Any] | None = None,
) -> dict[str, tuple[float, float]]:
    """Run ``recipe``'s calibrator over ``batches``: activation ranges of every tensor a QDQ graph quantises."""
    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[recipe.method]
    options: dict[str, Any] = {"symmetric": False}
    if recipe.method == "percentile":
        options.update(percentile=recipe.percentile, num_bins=recipe.num_bins)
    elif recipe.method == "entropy":
        # 255 quantised bins: activations have 256 levels; ORT's default (128) halves them.
        options.update(num_bins=recipe.num_bins, num_quantized_bins=255)
    with tempfile.TemporaryDirectory(prefix="sr-export-calib.") as tmp:
        model_path = Path(tmp) / "model.onnx"
        onnx.save(proto, str(model_path))
        with stage("calibrate", f"running the {recipe.method} calibrator"), quiet_ort_quantization():
            calibrator = create_calibrator(model_path, [], augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                           calibrate_method=method, extra_options=options)
            calibrator.collect_data(_BatchReader(proto.graph.input[0].name, batches, progress))
            computed = calibrator.compute_data()
    ranges = {}
    for name, data in computed.items():
        low, high = data.range_value
        ranges[name] = (float(np.asarray(low).min()), float(np.asarray(high).max()))
    return ranges


def statistics_for(
    proto: Any,
    key: CalibrationKey,
    calibration: Iterable[np.ndarray],
    recipe: CalibrationRecipe,
    *,
    progress: Callable[[], Any] | None = None,
    use_cache: bool = True,
) -> ActivationStatistics:
    """Cached statistics under ``key``, or a fresh calibration of ``proto`` on ``calibration`` (then cached)."""
    path = key.path()
    if use_cache and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            ranges = {k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
            return ActivationStatistics(ranges, data["method"], key.digest, cached=True)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass  # a damaged cache entry is recomputed and overwritten
    ranges = calibrate(proto, list(calibration), recipe, progress=progress)
    if use_cache:
        write_json_atomic(path, {"version": STATS_VERSION, "method": recipe.method, "key": key.to_dict(),
                                 "ranges": {k: list(v) for k, v in ranges.items()}})
    return ActivationStatistics(ranges, recipe.method, key.digest)


def cached_statistics(digest: str) -> ActivationStatistics | None:
    """The statistics cached under a key's digest (as an INT8 artifact records it), or None."""
    path = calibration_cache_dir() / f"{digest}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ranges = {k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return ActivationStatistics(ranges, data["method"], digest, cached=True)
