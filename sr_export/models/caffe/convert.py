"""``sr-export import-caffe``: a Caffe model to a verified PyTorch checkpoint.

The conversion is proven before anything is written: the imported PyTorch
model and the NumPy forward pass of the Caffe graph (``numpy_forward``) run
on the same small input, and on the region Caffe computes the model's
output must equal Caffe's residual plus MATLAB-bicubic upscaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sr_export.core.errors import CheckFailed
from sr_export.core.io import atomic_path
from sr_export.data.matlab_resize import upscale
from sr_export.models.caffe.idn_import import CaffeImport, import_idn
from sr_export.models.caffe.numpy_forward import forward

CHECK_SIZE = (13, 11)  # odd, unequal sides: catches transposed or off-by-one geometry
TOLERANCE = 1e-4  # float32 PyTorch vs float64 NumPy, on values in [0, 1]


@dataclass(frozen=True)
class CaffeCheck:
    input_hw: tuple[int, int]
    compared_hw: tuple[int, int]
    max_abs_diff: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= TOLERANCE


@dataclass(frozen=True)
class Conversion:
    imported: CaffeImport
    check: CaffeCheck
    output: Path | None

    def to_dict(self) -> dict[str, Any]:
        i = self.imported
        return {
            "model": "idn",
            "scale": i.scale,
            "caffemodel": str(i.caffemodel),
            "prototxt": str(i.prototxt) if i.prototxt else None,
            "params": i.params,
            "mapped": [{"layer": m.layer, "key": m.key, "shape": list(m.shape)} for m in i.mapped],
            "check": {"input_hw": list(self.check.input_hw), "compared_hw": list(self.check.compared_hw),
                      "max_abs_diff": self.check.max_abs_diff, "tolerance": TOLERANCE, "passed": self.check.passed},
            "output": str(self.output) if self.output else None,
        }


def idn_module(imported: CaffeImport) -> torch.nn.Module:
    from sr_export.models.idn import build_idn

    module = build_idn(scale=imported.scale)
    module.load_state_dict(imported.state_dict, strict=True)
    return module.eval()


def check_against_caffe(imported: CaffeImport, lr: np.ndarray | None = None) -> CaffeCheck:
    """Max |PyTorch - (Caffe residual + bicubic)| over the region Caffe computes, for one LR Y image."""
    if lr is None:
        lr = np.random.default_rng(0).random(CHECK_SIZE)
    scale = imported.scale
    net = imported.net
    data = net.inputs[0] if net.inputs else net.layers[0].bottoms[0]
    blobs = forward(net, {data: lr[None, None]})
    residual = blobs[net.layers[-1].tops[0]][0, 0]
    expected = residual + upscale(lr, scale)[scale - 1:, scale - 1:]
    with torch.inference_mode():
        full = idn_module(imported)(torch.from_numpy(lr).float()[None, None])[0, 0].double().numpy()
    got = full[scale - 1:, scale - 1:]
    if got.shape != expected.shape:
        return CaffeCheck(lr.shape, expected.shape, float("inf"))
    return CaffeCheck(lr.shape, expected.shape, float(np.abs(got - expected).max()))


def convert(caffemodel: Path, prototxt: Path | None) -> Conversion:
    """Import and prove; raises CheckFailed (nothing written) when the model does not match Caffe."""
    imported = import_idn(caffemodel, prototxt)
    check = check_against_caffe(imported)
    if not check.passed:
        raise CheckFailed(
            f"the imported model differs from the Caffe graph by {check.max_abs_diff:.3g} "
            f"(tolerance {TOLERANCE:g}); nothing written"
        )
    return Conversion(imported, check, None)


def save(conversion: Conversion, output: Path) -> Conversion:
    """Write the state dict (atomically: a failed write leaves no file)."""
    with atomic_path(output) as tmp:
        torch.save(conversion.imported.state_dict, tmp)
    return Conversion(conversion.imported, conversion.check, output)
