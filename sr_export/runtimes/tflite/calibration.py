"""Activation ranges of a float TFLite graph under a calibration recipe.

The recipe's patches go through the float file in the LiteRT interpreter with
every intermediate tensor kept. Min-max takes the extremes; percentile and
entropy build the histograms ONNX Runtime's calibrators build (all patches,
over [-max|x|, max|x|], the recipe's bins) and let ONNX Runtime's own code pick
the range, so a recipe means the same on every target
(:mod:`sr_export.quantize.statistics` is the ONNX side). ai-edge-quantizer's
own calibrator only knows min-max with a moving average.

The patches are the recipe's (``patches.size`` LR pixels), so the graph they
run through is a conversion at that size; the artifact's graph at its own
fixed size has the same tensor names (litert-torch names tensors after the
PyTorch modules), which is how its ranges are looked up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.cache import calibration_cache_dir
from sr_export.core.errors import StageFailed, first_line
from sr_export.core.io import write_json_atomic
from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.recipes import CalibrationRecipe
from sr_export.quantize.statistics import quiet_ort_quantization
from sr_export.runtimes.tflite.graph import TfliteGraph


@dataclass(frozen=True)
class TfliteRanges:
    """Tensor name -> (low, high) of a float TFLite graph's activations, by the recipe's method.

    ``extremes`` are the smallest and largest values seen, for tensors whose
    type has the resolution to cover them without clipping (16 bits).
    """

    ranges: Mapping[str, tuple[float, float]]
    method: str
    patches: int
    extremes: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def with_fixed(self, names: Sequence[str], low: float, high: float) -> TfliteRanges:
        fixed = {**self.ranges, **{name: (low, high) for name in names}}
        return replace(self, ranges=fixed)

    def with_extremes(self, names: Sequence[str]) -> TfliteRanges:
        """The observed min / max instead of the method's range for ``names``."""
        widened = {**self.ranges, **{name: self.extremes[name] for name in names if name in self.extremes}}
        return replace(self, ranges=widened)

    def with_constant_ranges_opened(self, width: float) -> TfliteRanges:
        """Give tensors that never varied in calibration (a ReLU that is always 0) a range ``width`` wide.

        Their values do not care about the scale, but the ops around them do:
        a zero-width range makes a scale of ~1e-9, and XNNPACK cannot prepare a
        requantisation by ~1e7 (IMDN's contrast attention, full INT8).
        """
        opened = {name: (low, low + width) if high - low < width * 1e-6 else (low, high)
                  for name, (low, high) in self.ranges.items()}
        return replace(self, ranges=opened)

    def missing(self, names: Sequence[str]) -> list[str]:
        return [name for name in names if name not in self.ranges]

    def quantizer_result(self, graph: TfliteGraph) -> dict[str, dict[str, np.ndarray]]:
        """ai-edge-quantizer's calibration result format: per tensor, min and max shaped like its rank."""
        result = {}
        for index in graph.activation_tensors():
            name = graph.tensor_name(index)
            low, high = self.ranges[name]
            shape = (1,) * len(graph.tensor(index).shape)
            result[name] = {"min": np.full(shape, low, np.float32), "max": np.full(shape, high, np.float32)}
        return result


def _cache_path(key: CalibrationKey | Mapping[str, Any]) -> Path:
    if isinstance(key, CalibrationKey):
        return key.path("tflite")
    digest = hashlib.sha256(json.dumps({"v": 1, **key}, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return calibration_cache_dir() / f"{digest}-tflite.json"


def load_cached_ranges(key: CalibrationKey | Mapping[str, Any]) -> tuple[TfliteRanges, tuple[int, int]] | None:
    """Ranges (and the patch shape they were measured at) cached under ``key``; None when absent or damaged."""
    path = _cache_path(key)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ranges = TfliteRanges(
            {k: (float(lo), float(hi)) for k, (lo, hi) in data["ranges"].items()}, str(data["method"]),
            int(data["patches"]), {k: (float(lo), float(hi)) for k, (lo, hi) in data["extremes"].items()})
        height, width = data["calibration_shape"]
        return ranges, (int(height), int(width))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # measured again and overwritten


def save_ranges(key: CalibrationKey | Mapping[str, Any], ranges: TfliteRanges,
                calibration_shape: tuple[int, int]) -> None:
    """Cache ``ranges`` next to the ONNX statistics (``$SR_EXPORT_CACHE/int8-statistics``)."""
    write_json_atomic(_cache_path(key), {
        "key": key.to_dict() if isinstance(key, CalibrationKey) else dict(key), "method": ranges.method, "patches": ranges.patches,
        "calibration_shape": list(calibration_shape),
        "ranges": {k: list(v) for k, v in ranges.ranges.items()},
        "extremes": {k: list(v) for k, v in ranges.extremes.items()},
    })


def nhwc_batches(batches: Sequence[np.ndarray], layout: str) -> list[np.ndarray]:
    """(1, C, H, W) batches as the file takes them."""
    if layout.lower() == "nchw":
        return [np.ascontiguousarray(b, np.float32) for b in batches]
    return [np.ascontiguousarray(np.transpose(b, (0, 2, 3, 1)), np.float32) for b in batches]


def collect_ranges(
    float_flatbuffer: bytes,
    batches: Sequence[np.ndarray],
    recipe: CalibrationRecipe,
    *,
    threads: int | None = None,
    progress: Callable[[], Any] | None = None,
) -> TfliteRanges:
    """Run ``batches`` (already in the file's layout) through the float graph; ranges by ``recipe.method``.

    Histogram methods take two passes, as ONNX Runtime's calibrators see all
    data at once: the extremes first, then histograms over [-max|x|, max|x|]
    with the recipe's bins (fed one patch at a time, a histogram that grows
    with each new extreme would end with other bins, and entropy's search
    time grows with their number).
    """
    graph = TfliteGraph.from_bytes(float_flatbuffer)
    tensors = {index: graph.tensor_name(index) for index in graph.activation_tensors()}
    interpreter = _calibration_interpreter(float_flatbuffer, threads)
    extremes = _Extremes()
    for values in _activations(interpreter, tensors, batches, progress):
        extremes.add(values)
    if recipe.method == "minmax":
        return TfliteRanges(extremes.ranges, recipe.method, len(batches), extremes.ranges)
    histograms = _Histograms(recipe, extremes.ranges)
    for values in _activations(interpreter, tensors, batches, None):
        histograms.add(values)
    return TfliteRanges(histograms.ranges(), recipe.method, len(batches), extremes.ranges)


def _activations(
    interpreter: Any, tensors: Mapping[int, str], batches: Sequence[np.ndarray], progress: Callable[[], Any] | None
) -> Iterator[dict[str, np.ndarray]]:
    input_index = interpreter.get_input_details()[0]["index"]
    for batch in batches:
        try:
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
        except Exception as exc:
            raise StageFailed("calibrate", f"LiteRT failed on a calibration patch: {first_line(exc)}") from exc
        yield {name: interpreter.get_tensor(index) for index, name in tensors.items()}
        if progress is not None:
            progress()


def _calibration_interpreter(flatbuffer: bytes, threads: int | None) -> Any:
    from sr_export.runtimes.tflite.interpreter import open_interpreter

    # XNNPACK keeps every intermediate tensor readable when asked to (what
    # ai-edge-quantizer's calibrator relies on too), ~3x faster than the built-in kernels.
    return open_interpreter(content=flatbuffer, threads=threads, preserve_all_tensors=True)


class _Extremes:
    def __init__(self) -> None:
        self.ranges: dict[str, tuple[float, float]] = {}

    def add(self, values: Mapping[str, np.ndarray]) -> None:
        for name, array in values.items():
            low, high = float(np.min(array)), float(np.max(array))
            if name in self.ranges:
                low, high = min(low, self.ranges[name][0]), max(high, self.ranges[name][1])
            self.ranges[name] = (low, high)


class _Histograms:
    """Histograms in ONNX Runtime's layout, over fixed ranges, judged by its percentile / entropy code."""

    def __init__(self, recipe: CalibrationRecipe, extremes: Mapping[str, tuple[float, float]]) -> None:
        from onnxruntime.quantization.calibrate import HistogramCollector

        # The settings sr_export.quantize.statistics gives ONNX Runtime's calibrators.
        self._collector = HistogramCollector(
            method=recipe.method, symmetric=False, num_bins=recipe.num_bins, num_quantized_bins=255,
            percentile=recipe.percentile, scenario="same",
        )
        self._bins = recipe.num_bins
        self._extremes = dict(extremes)
        self._counts: dict[str, np.ndarray] = {}

    def _threshold(self, name: str) -> float:
        low, high = self._extremes[name]
        return max(abs(low), abs(high))

    def add(self, values: Mapping[str, np.ndarray]) -> None:
        for name, array in values.items():
            threshold = self._threshold(name)
            counts, _ = np.histogram(array, self._bins, range=(-threshold, threshold))
            self._counts[name] = self._counts[name] + counts if name in self._counts else counts

    def ranges(self) -> dict[str, tuple[float, float]]:
        # ONNX Runtime's entry per tensor: (counts, edges, min, max, threshold).
        self._collector.histogram_dict = {
            name: (counts, np.linspace(-self._threshold(name), self._threshold(name), self._bins + 1,
                                       dtype=np.float32),
                   np.float32(self._extremes[name][0]), np.float32(self._extremes[name][1]),
                   np.float32(self._threshold(name)))
            for name, counts in self._counts.items()
        }
        with quiet_ort_quantization():
            computed = self._collector.compute_collection_result()
        return {name: (float(np.min(value[0])), float(np.max(value[1]))) for name, value in computed.items()}
