"""Caffe's forward pass in NumPy (float64), for the layer types SR networks use.

An independent reference for imported models: it follows the Caffe graph
(bottoms and tops), not the PyTorch module, and implements Caffe's own
conventions, so a mapping or geometry mistake in the import shows up as a
difference. Deconvolution is written the way Caffe computes it (each input
pixel scatters ``W[c_in, c_out]`` times itself into the output at
``stride * i - pad + k``), with the (in, out/group, kh, kw) blob layout.
Meant for small inputs: it is exact, not fast.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.models.caffe.net import CaffeLayer, CaffeNet

SUPPORTED = ("Convolution", "Deconvolution", "ReLU", "Split", "Slice", "Concat", "Eltwise")


def forward(net: CaffeNet, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All blobs after running ``net`` on ``inputs`` ((N, C, H, W) arrays by input name)."""
    blobs = {name: np.asarray(value, dtype=np.float64) for name, value in inputs.items()}
    for layer in net.layers:
        missing = [b for b in layer.bottoms if b not in blobs]
        if missing:
            raise SrExportError(f"Caffe layer '{layer.name}' reads blob(s) {missing} that nothing produced")
        outputs = _run(layer, [blobs[b] for b in layer.bottoms])
        blobs.update(zip(layer.tops, outputs))
    return blobs


def _run(layer: CaffeLayer, bottoms: list[np.ndarray]) -> list[np.ndarray]:
    kind = layer.type
    if kind == "Convolution":
        return [convolution(bottoms[0], *_weights(layer), layer)]
    if kind == "Deconvolution":
        return [deconvolution(bottoms[0], *_weights(layer), layer)]
    if kind == "ReLU":
        x = bottoms[0]
        return [np.where(x > 0, x, x * layer.negative_slope)]
    if kind == "Split":
        return [bottoms[0]] * len(layer.tops)
    if kind == "Slice":
        x = bottoms[0]
        points = layer.slice_points or tuple(x.shape[layer.axis] // len(layer.tops) * i
                                             for i in range(1, len(layer.tops)))
        return list(np.split(x, list(points), axis=layer.axis))
    if kind == "Concat":
        return [np.concatenate(bottoms, axis=layer.axis)]
    if kind == "Eltwise":
        return [_eltwise(layer, bottoms)]
    raise SrExportError(f"Caffe layer '{layer.name}' has type {kind}, which the NumPy reference does not run "
                        f"(supported: {', '.join(SUPPORTED)})")


def _weights(layer: CaffeLayer) -> tuple[np.ndarray, np.ndarray | None]:
    if not layer.blobs:
        raise SrExportError(f"Caffe layer '{layer.name}' has no weights")
    weight = layer.blobs[0].astype(np.float64)
    bias = layer.blobs[1].astype(np.float64).reshape(-1) if len(layer.blobs) > 1 else None
    return weight, bias


def _eltwise(layer: CaffeLayer, bottoms: list[np.ndarray]) -> np.ndarray:
    if layer.eltwise_op == "PROD":
        return np.prod(np.stack(bottoms), axis=0)
    if layer.eltwise_op == "MAX":
        return np.max(np.stack(bottoms), axis=0)
    coeffs = layer.coeffs or (1.0,) * len(bottoms)
    return sum(c * b for c, b in zip(coeffs, bottoms))


def convolution(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, layer: CaffeLayer) -> np.ndarray:
    """Caffe convolution; weight (out, in/group, kh, kw); output floor((H + 2p - k) / s) + 1."""
    conv = layer.conv
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.pad
    if conv.dilation != (1, 1):
        raise SrExportError(f"Caffe layer '{layer.name}': dilated convolution is not supported by the NumPy reference")
    n, channels, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    groups = conv.group
    per_in, per_out = channels // groups, weight.shape[0] // groups
    out = np.empty((n, weight.shape[0], out_h, out_w))
    for g in range(groups):
        part = padded[:, g * per_in:(g + 1) * per_in]
        # windows: (n, c, out_h, out_w, kh, kw)
        windows = np.lib.stride_tricks.sliding_window_view(part, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        windows = windows[:, :, :out_h, :out_w]
        w = weight[g * per_out:(g + 1) * per_out].reshape(per_out, -1)
        columns = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, -1)  # im2col, Caffe's way
        out[:, g * per_out:(g + 1) * per_out] = (columns @ w.T).reshape(n, out_h, out_w, per_out).transpose(0, 3, 1, 2)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def deconvolution(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, layer: CaffeLayer) -> np.ndarray:
    """Caffe deconvolution; weight (in, out/group, kh, kw); output s * (H - 1) + k - 2p."""
    conv = layer.conv
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.pad
    n, channels, height, width = x.shape
    groups = conv.group
    per_in, per_out = channels // groups, weight.shape[1]
    full = np.zeros((n, per_out * groups, sh * (height - 1) + kh, sw * (width - 1) + kw))
    for g in range(groups):
        part = x[:, g * per_in:(g + 1) * per_in]
        w = weight[g * per_in:(g + 1) * per_in]  # (in, out/group, kh, kw)
        target = full[:, g * per_out:(g + 1) * per_out]
        for i in range(kh):
            for j in range(kw):
                target[:, :, i:i + sh * height:sh, j:j + sw * width:sw] += np.einsum("nchw,co->nohw", part, w[:, :, i, j])
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out
