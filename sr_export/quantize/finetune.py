"""Quantisation-aware fine-tuning, distilled from the FP32 graph on unlabeled calibration patches.

Post-training range choices leave E-RFDN / IMDN x4 about 0.2 dB short on
Set5: the loss is 8-bit resolution on a few activations, not clipping. Here
the weights adapt to it. The student is the QDQ graph that ships (run by
:mod:`sr_export.quantize.onnx_torch`), with float weights under per-channel
weight fake-quant and learnable activation step sizes (LSQ) starting from the
percentile encodings; the teacher is the float graph. The loss is L1 between
their outputs on random crops of the recipe's calibration patches (never the
evaluation images), so no labels are needed and nothing is tuned on Set5.

The result (tuned float weights and learned step sizes, by ONNX tensor name)
is cached under the calibration key plus the fine-tuning settings, and written
back by name: the weights into the float graph that ONNX Runtime quantises,
the step sizes as the ranges its quantiser turns into the same scale and zero
point (:func:`tuned_ranges`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.quantize.cache_key import CalibrationKey
from sr_export.quantize.recipes import FinetuneSettings

FINETUNE_VERSION = 1
EVAL_PATCHES = 8  # calibration patches the before/after distillation loss is reported on


@dataclass(frozen=True)
class FinetuneResult:
    weights: Mapping[str, np.ndarray]  # float initialiser name -> tuned value
    scales: Mapping[str, tuple[float, int]]  # quantised activation -> (learned step, zero point)
    loss_before: float  # mean |student - teacher| / data_range on the first calibration patches, before
    loss_after: float  # ... and after
    steps: int
    minutes: float  # wall-clock training time (0 when read from the cache)
    cached: bool = False

    def summary(self) -> dict[str, Any]:
        """What an artifact records: the same whether this build trained or read the cache (no ``cached``)."""
        return {"steps": self.steps, "minutes": round(self.minutes, 2), "loss_before": self.loss_before,
                "loss_after": self.loss_after}


def _crops(patches: Any, size: int, count: int, generator: Any) -> Any:
    """``count`` random ``size``-px crops of random patches, randomly flipped and transposed (dihedral)."""
    import torch

    n, _c, h, w = patches.shape
    size = min(size, h, w)
    index = torch.randint(0, n, (count,), generator=generator)
    tops = torch.randint(0, h - size + 1, (count,), generator=generator)
    lefts = torch.randint(0, w - size + 1, (count,), generator=generator)
    flips = torch.randint(0, 2, (count, 3), generator=generator)
    crops = []
    for i in range(count):
        crop = patches[index[i], :, tops[i]:tops[i] + size, lefts[i]:lefts[i] + size]
        if flips[i, 0]:
            crop = crop.flip(-1)
        if flips[i, 1]:
            crop = crop.flip(-2)
        if flips[i, 2]:
            crop = crop.transpose(-1, -2)
        crops.append(crop)
    return torch.stack(crops)


def _distillation_loss(student: Any, teacher: Any, batch: Any, data_range: float, loss: str = "l1") -> Any:
    """The student's distance to the teacher on the output, in units of the data range: L1 or MSE."""
    import torch

    with torch.no_grad():
        target = teacher(batch).clamp(0.0, data_range)  # the shipped graph clamps its output too
    error = (student(batch) - target) / data_range
    return error.square().mean() if loss == "mse" else error.abs().mean()


def evaluation_loss(student: Any, teacher: Any, patches: Any, data_range: float) -> float:
    """The output L1 on whole calibration patches, one at a time (what the report quotes, whatever the loss)."""
    import torch

    with torch.no_grad():
        losses = [float(_distillation_loss(student, teacher, patches[i:i + 1], data_range))
                  for i in range(min(EVAL_PATCHES, len(patches)))]
    return float(np.mean(losses))


def distill(
    student: Any,
    teacher: Any,
    batches: Sequence[np.ndarray],
    settings: FinetuneSettings,
    data_range: float,
    *,
    progress: bool = True,
) -> tuple[float, float, float]:
    """Train ``student`` towards ``teacher`` on crops of ``batches``; (loss before, loss after, minutes)."""
    import torch

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    patches = torch.from_numpy(np.concatenate(list(batches))).float()
    teacher.eval()
    before = evaluation_loss(student, teacher, patches, data_range)
    groups = [{"params": list(student.weights.parameters()), "lr": settings.lr}]
    if settings.learn_scales:
        groups.append({"params": list(student.log_scales.parameters()), "lr": settings.scale_lr})
    else:
        student.log_scales.requires_grad_(False)
    optimiser = torch.optim.Adam(groups)
    # Cosine decay to zero: the last steps settle the weights on the rounding grid rather than jump across it.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, settings.steps))
    start = time.monotonic()
    for _step in _progress_range(settings.steps, progress):
        loss = _distillation_loss(student, teacher, _crops(patches, settings.patch_size, settings.batch, generator),
                                  data_range, settings.loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    minutes = (time.monotonic() - start) / 60.0
    return before, evaluation_loss(student, teacher, patches, data_range), minutes


def _progress_range(steps: int, show: bool) -> Any:
    """A tqdm bar where tqdm is installed and progress is wanted (training takes minutes); else a range."""
    if show:
        try:
            from tqdm.auto import trange

            return trange(steps, desc="INT8 fine-tuning", unit="step", leave=False)
        except ImportError:
            pass
    return range(steps)


def finetune(
    float_proto: Any,
    qdq_proto: Any,
    batches: Sequence[np.ndarray],
    settings: FinetuneSettings,
    data_range: float,
    *,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tune the QDQ graph's weights (and step sizes) against the float graph; nothing is cached here."""
    import torch

    from sr_export.quantize.onnx_torch import build_graph_module

    # One intra-op thread: the many small ops of a fake-quant graph make OpenMP's barriers spin, and on cores
    # shared with other work 2 threads measured 4-10 s a step against 1.3-1.7 s for 1 (E-RFDN / IMDN x4, 2 cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        teacher = build_graph_module(float_proto, trainable=False)
        student = build_graph_module(qdq_proto, float_proto)
        before, after, minutes = distill(student, teacher, batches, settings, data_range, progress=progress)
    finally:
        torch.set_num_threads(threads)
    return FinetuneResult(student.float_weights(), student.activation_scales(), before, after, settings.steps,
                          minutes)


def cache_key_path(key: CalibrationKey, settings: FinetuneSettings, plan: Mapping[str, Any]) -> Any:
    """Where a fine-tuning result is cached: the calibration key, the settings and the float plan."""
    import hashlib

    what = json.dumps({"v": FINETUNE_VERSION, "settings": settings.to_dict(), "plan": dict(plan)}, sort_keys=True)
    return key.path(f"finetune-{hashlib.sha256(what.encode()).hexdigest()[:12]}", ".npz")


def cached_finetune(path: Any, compute: Callable[[], FinetuneResult]) -> FinetuneResult:
    """The result cached at ``path``, or ``compute()``'s (then cached); a damaged entry is recomputed."""
    from sr_export.core.io import atomic_path

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            weights = {k: data[k] for k in meta["weights"]}
        scales = {k: (float(v[0]), int(v[1])) for k, v in meta["scales"].items()}
        return FinetuneResult(weights, scales, meta["loss_before"], meta["loss_after"], meta["steps"],
                              meta["minutes"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = compute()
    meta = {"weights": list(result.weights), "scales": {k: list(v) for k, v in result.scales.items()},
            "loss_before": result.loss_before, "loss_after": result.loss_after, "steps": result.steps,
            "minutes": result.minutes}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, __meta__=np.array(json.dumps(meta)), **dict(result.weights))
    return result


def tuned_float_proto(float_proto: Any, weights: Mapping[str, np.ndarray]) -> Any:
    """A copy of ``float_proto`` with the tuned values in place of its initialisers (by name)."""
    import onnx
    from onnx import numpy_helper

    result = onnx.ModelProto.FromString(float_proto.SerializeToString())
    for init in result.graph.initializer:
        if init.name in weights:
            init.CopyFrom(numpy_helper.from_array(np.asarray(weights[init.name], np.float32), init.name))
    return result


def tuned_ranges(ranges: Mapping[str, tuple[float, float]],
                 scales: Mapping[str, tuple[float, int]]) -> dict[str, tuple[float, float]]:
    """Ranges that ONNX Runtime's quantiser turns back into the learned (step, zero point) of uint8 activations.

    It computes step = (high - low) / 255 and zero point = round(-low / step)
    from a range containing 0, so low = -zp * step and high = (255 - zp) * step
    reproduce both exactly.
    """
    result = dict(ranges)
    for name, (step, zero_point) in scales.items():
        result[name] = (-zero_point * step, (255 - zero_point) * step)
    return result


def finetuned_graph(
    float_proto: Any,
    statistics: Any,
    recipe: Any,
    plan: Any,
    key: CalibrationKey,
    calibration: Any,
    *,
    data_range: float,
    clamp: float | None,
    flavour: str,
    progress: bool = True,
) -> tuple[Any, Any, FinetuneResult]:
    """The tuned float graph and the statistics to quantise it with, after fine-tuning (or from the cache).

    The student is always the ONNX Runtime QDQ graph of ``plan`` (uint8
    activations). Its learned steps are written back where the built graph
    has the same kind of activations; anywhere else (the TensorRT flavour,
    symmetric recipes, ``learn_scales = false``) the tuned weights are
    calibrated afresh by the recipe's method.
    """
    from dataclasses import replace

    from sr_export.quantize.cache_key import initialiser_hash
    from sr_export.quantize.qdq_graph import quantized_proto
    from sr_export.quantize.statistics import ActivationStatistics, statistics_for

    settings = recipe.finetune

    def train() -> FinetuneResult:
        student = quantized_proto(float_proto, statistics, recipe, exclude=plan.names(),
                                  float_tensors=plan.tensors(), data_range=clamp)
        return finetune(float_proto, student, list(calibration), settings, data_range, progress=progress)

    result = cached_finetune(cache_key_path(key, settings, plan.describe()), train)
    tuned = tuned_float_proto(float_proto, result.weights)
    if settings.learn_scales and flavour == "onnxruntime" and recipe.activations == "asymmetric":
        tuned_statistics = ActivationStatistics(tuned_ranges(statistics.ranges, result.scales), statistics.method,
                                                f"{statistics.key}+finetune", cached=result.cached)
    else:
        tuned_statistics = statistics_for(tuned, replace(key, weights=initialiser_hash(tuned)), calibration, recipe)
    return tuned, tuned_statistics, result
