"""How much context an output pixel depends on, measured by perturbing one input pixel.

Tiling a fixed-size artifact is exact when every tile carries at least the
network's receptive field as context around the part it contributes. The
radius is measured, not derived from the layers, because it must also cover
attention (strided pooling, resizing) and because what matters is the
*effective* field: pixels whose influence is at least :data:`THRESHOLD` of the
perturbed pixel's own. Networks that pool the whole image (IMDN's
contrast-aware channel attention) still respond at the probe's border; they
are marked ``global_context`` and tiling them can only approximate.

Some networks are not shift-invariant: window attention partitions the image
into windows anchored at its top-left corner, and strided bodies see a
different grid when the input moves by one pixel. Their *period* (the
smallest shift, among powers of two, by which the output moves along with
the input) is measured too: tiles must start at multiples of it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sr_export.core.model_info import ModelInfo

PROBE_SIZE = 96  # LR pixels per side
THRESHOLD = 1e-3  # relative to the response at the perturbed pixel
PERTURBATION = 0.1  # of the data range
PERIODS = (1, 2, 4, 8, 16, 32)
SHIFT_TOLERANCE = 1e-3  # of the data range, away from the borders


@dataclass(frozen=True)
class ReceptiveField:
    radius: int  # LR pixels of context per side (a lower bound when global_context)
    global_context: bool
    period: int = 1  # tiles must start at multiples of this many LR pixels


def measure_receptive_field(module: nn.Module, info: ModelInfo, size: int = PROBE_SIZE) -> ReceptiveField | None:
    """The effective receptive field of ``module``; None if the model cannot be probed."""
    from sr_export.data.images import builtin_image, center_crop
    from sr_export.data.matlab_resize import downscale
    from sr_export.data.tensors import image_to_batch

    scale, data_range = info.scale, info.data_range
    image = center_crop(downscale(builtin_image("astronaut"), 2), size, size)
    base = torch.from_numpy(image_to_batch(image, info)).double()
    probe = _float64_copy(module)
    if probe is None:  # e.g. some TorchScript modules: measure in float32 instead
        probe, base = module, base.float()
    perturbed = base.clone()
    perturbed[..., size // 2, size // 2] += PERTURBATION * data_range
    try:
        with torch.inference_mode():
            response = (probe(perturbed) - probe(base)).abs().amax(dim=1)[0].numpy()
    except Exception:  # the model's own failures are reported by the forward stage, not here
        return None
    if response.shape != (size * scale, size * scale):
        return None
    per_lr_pixel = response.reshape(size, scale, size, scale).max(axis=(1, 3))
    rows, cols = np.mgrid[:size, :size]
    distance = np.maximum(abs(rows - size // 2), abs(cols - size // 2))
    rings = np.array([per_lr_pixel[distance == k].max() for k in range(size // 2)])
    peak = rings.max()
    if not np.isfinite(peak) or peak == 0:
        return None
    radius = int(np.nonzero(rings > THRESHOLD * peak)[0].max())
    global_context = radius >= size // 2 - 1
    period = 1 if global_context else shift_period(probe, base, scale, data_range, margin=radius + 2)
    return ReceptiveField(radius=radius, global_context=global_context, period=period)


def remembered_receptive_field(module: nn.Module, info: ModelInfo) -> ReceptiveField | None:
    """:func:`measure_receptive_field`, kept in ``$SR_EXPORT_CACHE/receptive-fields`` under the module's
    fingerprint: the float64 probe of E-RFDN takes about 10 s, and every export and build of a model needs it."""
    import hashlib
    import json

    from sr_export.core.cache import cache_root
    from sr_export.models.fingerprint import module_fingerprint

    fingerprint = module_fingerprint(module)
    if fingerprint is None:
        return measure_receptive_field(module, info)
    key = hashlib.sha256(repr(("rf-v1", fingerprint, info, PROBE_SIZE, THRESHOLD, PERIODS)).encode()).hexdigest()
    path = cache_root() / "receptive-fields" / f"{key}.json"
    try:
        known = json.loads(path.read_text())
        return None if known is None else ReceptiveField(int(known["radius"]), bool(known["global_context"]),
                                                         int(known["period"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not measured yet, or a damaged entry: measure
    measured = measure_receptive_field(module, info)
    record = None if measured is None else {"radius": measured.radius, "global_context": measured.global_context,
                                            "period": measured.period}
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError:  # a cache that cannot be written only costs the next run its time
        with contextlib.suppress(OSError):
            tmp.unlink()
    return measured


def shift_period(probe: nn.Module, base: torch.Tensor, scale: int, data_range: float, margin: int) -> int:
    """The smallest shift in :data:`PERIODS` under which the output moves with the input.

    Two crops of the same image, offset by ``p`` pixels, must give outputs
    that agree (offset by ``p * scale``) away from their borders. When no
    period in the list works, or the receptive field leaves no interior to
    compare, 1 is returned: there is no alignment that would help.
    """
    size = base.shape[-1]
    crop = size - max(PERIODS)
    with torch.inference_mode():
        reference = probe(base[..., :crop, :crop])
        for period in PERIODS:
            shifted = probe(base[..., period : period + crop, period : period + crop])
            inner = slice(margin * scale, (crop - margin - period) * scale)
            moved = slice((margin + period) * scale, (crop - margin) * scale)
            if inner.start >= inner.stop:
                return 1
            difference = (shifted[..., inner, inner] - reference[..., moved, moved]).abs().max().item()
            if difference <= SHIFT_TOLERANCE * data_range:
                return period
    return 1


def _float64_copy(module: nn.Module) -> nn.Module | None:
    try:
        with warnings.catch_warnings():
            # A TorchScript module's parameters are not leaves to torch, so .double() reading their .grad warns;
            # this copy is never trained.
            warnings.filterwarnings("ignore", message=r"The \.grad attribute of a Tensor that is not a leaf",
                                    category=UserWarning)
            return copy.deepcopy(module).double().eval()
    except Exception:
        return None
