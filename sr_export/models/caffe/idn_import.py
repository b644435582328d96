"""The authors' IDN Caffe models onto the zoo ``idn`` module, blob by blob.

Caffe layer names map to module names one to one (see ``models/idn.py``):
``conv1``/``conv2`` keep their names, ``conv{3+b}_{k}`` is
``dblocks.{b}.conv_{k}``, ``down{b+1}`` is ``dblocks.{b}.down`` and the
deconvolution ``upsample`` keeps its name. Blob 0 is the weight and blob 1
the bias. Caffe lays both convolution (out, in/group, kh, kw) and
deconvolution (in, out/group, kh, kw) weights out as PyTorch's Conv2d and
ConvTranspose2d do, so they are copied unchanged; the NumPy reference
forward (``numpy_forward``) is what proves that layout right.

Nothing is guessed: every weight layer must map and fit the module's shape,
every layer type and setting the module hard-codes (LeakyReLU slope 0.05,
channel split at 16, Eltwise sum, kernel/stride/pad/group of each conv) is
checked against the graph, and the scale is read from the deconvolution's
stride. Anything else is reported by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.caffe.net import CaffeLayer, CaffeNet, read_net, with_weights

IDN_SLOPE = 0.05
IDN_SLICE = 16
DECONV = "upsample"
_DBLOCK_CONV = re.compile(r"^conv(\d+)_(\d)$")
_DOWN = re.compile(r"^down(\d+)$")
# Layer types whose work the module does without weights of its own.
_STRUCTURAL = ("ReLU", "Split", "Slice", "Concat", "Eltwise")
_SHOWN = 4


@dataclass(frozen=True)
class MappedBlob:
    layer: str
    key: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class CaffeImport:
    """A Caffe IDN model as an ``idn`` state dict, and what was checked on the way."""

    caffemodel: Path
    prototxt: Path
    net: CaffeNet  # the graph with its blobs, for the NumPy reference
    scale: int
    state_dict: dict[str, torch.Tensor]
    mapped: tuple[MappedBlob, ...]

    @property
    def params(self) -> int:
        return sum(int(t.numel()) for k, t in self.state_dict.items() if k != "scale_factor")


def find_prototxt(caffemodel: Path) -> Path | None:
    """The deploy prototxt the authors ship beside a model (``IDN_x4_deploy.prototxt``), if any."""
    folder, stem = caffemodel.parent, caffemodel.stem
    for name in (f"{stem}_deploy.prototxt", f"{stem}.prototxt", "deploy.prototxt"):
        if (folder / name).is_file():
            return folder / name
    return None


def caffe_key(layer: str) -> str | None:
    """The module prefix a Caffe IDN layer's blobs go to, or None if it has none."""
    if layer in ("conv1", "conv2", DECONV):
        return layer
    if match := _DBLOCK_CONV.match(layer):
        block, index = int(match.group(1)) - 3, int(match.group(2))
        return f"dblocks.{block}.conv_{index}" if block >= 0 and 1 <= index <= 6 else None
    if match := _DOWN.match(layer):
        block = int(match.group(1)) - 1
        return f"dblocks.{block}.down" if block >= 0 else None
    return None


def import_idn(caffemodel: str | Path, prototxt: str | Path | None = None) -> CaffeImport:
    """Read, map and verify a Caffe IDN model; the prototxt is looked for beside it when not given."""
    caffemodel = Path(caffemodel).expanduser().resolve()
    weights = read_net(caffemodel)
    if prototxt is None:
        prototxt = find_prototxt(caffemodel)
    if prototxt is None:
        # A caffemodel holds the training graph (data, crop, loss layers), not the one to run.
        raise SrExportError(
            f"no deploy prototxt beside {caffemodel} (looked for {caffemodel.stem}_deploy.prototxt, "
            f"{caffemodel.stem}.prototxt, deploy.prototxt); pass --prototxt"
        )
    prototxt = Path(prototxt).expanduser().resolve()
    net, extra = with_weights(read_net(prototxt), weights)
    if extra:
        raise SrExportError(
            f"{caffemodel.name} has weights for layers that {prototxt.name} lacks: {_names(extra)}; "
            "is it the prototxt of this model?"
        )
    disagree = _disagreeing_settings(net, weights)
    if disagree:
        # e.g. the x2 prototxt with the x4 weights: same shapes, wrong stride.
        raise SrExportError(
            f"{prototxt.name} and {caffemodel.name} describe different networks: {_names(disagree)}; "
            "use the prototxt that belongs to this model"
        )
    scale = _scale(net, caffemodel)
    _check_structure(net)
    state, mapped = _map_blobs(net, scale)
    return CaffeImport(caffemodel, prototxt, net, scale, state, mapped)


def import_caffe(caffemodel: Path, prototxt: Path | None) -> tuple[dict[str, torch.Tensor], int]:
    """The zoo loader's hook (``ModelSpec.caffe_import``): an IDN Caffe model as (state dict, scale)."""
    imported = import_idn(caffemodel, prototxt)
    return imported.state_dict, imported.scale


def _disagreeing_settings(graph: CaffeNet, weights: CaffeNet) -> list[str]:
    """(De)convolutions whose settings differ between the deploy graph and the caffemodel's own record."""
    found = []
    for layer in graph.layers:
        stored = weights.layer(layer.name)
        if layer.conv is None or stored is None or stored.conv is None or stored.conv.kernel == (0, 0):
            continue  # old caffemodels may not record settings
        if stored.conv != layer.conv:
            found.append(f"{layer.name} (prototxt {_geometry(layer)}, caffemodel {_geometry(stored)})")
    return found


def _geometry(layer: CaffeLayer) -> str:
    c = layer.conv
    return f"kernel {c.kernel[0]}x{c.kernel[1]} stride {c.stride[0]} pad {c.pad[0]} group {c.group} out {c.num_output}"


def _scale(net: CaffeNet, source: Path) -> int:
    deconv = net.layer(DECONV)
    if deconv is None or deconv.type != "Deconvolution" or deconv.conv is None:
        raise SrExportError(f"{source.name} is not an IDN model: it has no Deconvolution layer '{DECONV}'")
    settings = deconv.conv
    if settings.kernel != (17, 17) or settings.pad != (8, 8) or settings.stride[0] != settings.stride[1]:
        raise SrExportError(
            f"{source.name}: IDN's '{DECONV}' is a 17x17 deconvolution with pad 8 and equal strides, "
            f"this one has kernel {settings.kernel}, pad {settings.pad}, stride {settings.stride}"
        )
    if settings.stride[0] not in (2, 3, 4):
        raise SrExportError(f"{source.name}: deconvolution stride {settings.stride[0]}; IDN comes in x2, x3 and x4")
    return int(settings.stride[0])


def _check_structure(net: CaffeNet) -> None:
    """Layer types and the settings the module hard-codes; everything else is 'cannot map'."""
    problems = []
    for layer in net.layers:
        if layer.type in ("Convolution", "Deconvolution"):
            if caffe_key(layer.name) is None:
                problems.append(f"{layer.name} ({layer.type}: no idn module of that name)")
        elif layer.type not in _STRUCTURAL:
            problems.append(f"{layer.name} (type {layer.type})")
        elif layer.type == "ReLU" and not np.isclose(layer.negative_slope, IDN_SLOPE, rtol=0, atol=1e-7):
            problems.append(f"{layer.name} (ReLU negative_slope {layer.negative_slope:g}, idn uses {IDN_SLOPE})")
        elif layer.type == "Slice" and (layer.axis != 1 or layer.slice_points != (IDN_SLICE,)):
            problems.append(f"{layer.name} (Slice at {layer.slice_points} on axis {layer.axis}, "
                            f"idn splits channels at {IDN_SLICE})")
        elif layer.type == "Eltwise" and (layer.eltwise_op != "SUM" or any(c != 1.0 for c in layer.coeffs)):
            problems.append(f"{layer.name} (Eltwise {layer.eltwise_op} {layer.coeffs or ''}, idn adds)")
        elif layer.type == "Concat" and layer.axis != 1:
            problems.append(f"{layer.name} (Concat on axis {layer.axis}, idn concatenates channels)")
    if problems:
        raise SrExportError(f"cannot map {len(problems)} Caffe layer(s) onto idn: {_names(problems)}")


def _map_blobs(net: CaffeNet, scale: int) -> tuple[dict[str, torch.Tensor], tuple[MappedBlob, ...]]:
    from sr_export.models.idn import build_idn

    module = build_idn(scale=scale)
    expected = module.state_dict()
    modules = dict(module.named_modules())
    state: dict[str, torch.Tensor] = {"scale_factor": expected["scale_factor"].clone()}
    mapped, wrong = [], []
    for layer in net.layers:
        key = caffe_key(layer.name)
        if key is None or layer.type not in ("Convolution", "Deconvolution"):
            continue
        if not layer.blobs:
            wrong.append(f"{layer.name} has no weights in the caffemodel")
            continue
        wrong += _check_geometry(layer, modules[key])
        names = ("weight", "bias")[: len(layer.blobs)]
        if len(layer.blobs) > 2:
            wrong.append(f"{layer.name} has {len(layer.blobs)} blobs, expected weight and bias")
        for name, blob in zip(names, layer.blobs):
            target = f"{key}.{name}"
            shape = tuple(expected[target].shape)
            if name == "bias" and blob.size == int(np.prod(shape)):
                blob = blob.reshape(shape)  # old models store biases as (1, 1, 1, n)
            if tuple(blob.shape) != shape:
                wrong.append(f"{layer.name} {name} {tuple(blob.shape)} vs {target} {shape}")
                continue
            state[target] = torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32))
            mapped.append(MappedBlob(layer.name, target, shape))
    missing = [k for k in expected if k not in state]
    if missing:
        wrong.append(f"nothing in the Caffe model for {_names(missing)}")
    if wrong:
        raise SrExportError(f"the Caffe model does not fit idn x{scale}: {_names(wrong)}")
    return state, tuple(mapped)


def _check_geometry(layer: CaffeLayer, module: torch.nn.Module) -> list[str]:
    settings = layer.conv
    if layer.type == "Deconvolution":
        return []  # checked by _scale; the module's padding is derived from it (see IDN)
    have = (settings.kernel, settings.stride, settings.pad, settings.group, settings.dilation, settings.bias_term)
    want = (tuple(module.kernel_size), tuple(module.stride), tuple(module.padding), module.groups,
            tuple(module.dilation), module.bias is not None)
    if have != want:
        return [f"{layer.name} has kernel/stride/pad/group/dilation/bias {have}, the module {want}"]
    return []


def _names(items: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")
