"""A Caffe network as plain data: layers, their settings and weight blobs.

``read_net`` reads a ``.prototxt`` (text) or ``.caffemodel`` (binary) into
:class:`CaffeNet`; ``with_weights`` puts a caffemodel's blobs on a deploy
graph, layer by layer, by name. Only what sr-export uses is kept: the
settings of Convolution, Deconvolution, ReLU, Slice, Concat and Eltwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.core.io import require_file
from sr_export.models.caffe.schema import V1_TYPES, message_classes

ELTWISE_OPS = ("PROD", "SUM", "MAX")


@dataclass(frozen=True)
class ConvSettings:
    """A (de)convolution's geometry, after Caffe's defaults and per-axis fields are applied."""

    num_output: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    group: int = 1
    bias_term: bool = True


@dataclass(frozen=True)
class CaffeLayer:
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    blobs: tuple[np.ndarray, ...] = ()
    conv: ConvSettings | None = None
    negative_slope: float = 0.0  # ReLU
    axis: int = 1  # Slice / Concat
    slice_points: tuple[int, ...] = ()
    eltwise_op: str = "SUM"
    coeffs: tuple[float, ...] = ()


@dataclass(frozen=True)
class CaffeNet:
    name: str
    inputs: tuple[str, ...]
    layers: tuple[CaffeLayer, ...] = field(default_factory=tuple)

    def layer(self, name: str) -> CaffeLayer | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    @property
    def weighted_layers(self) -> tuple[CaffeLayer, ...]:
        return tuple(layer for layer in self.layers if layer.blobs)


def read_net(path: str | Path) -> CaffeNet:
    """A prototxt (text) or caffemodel (binary) file as a :class:`CaffeNet`."""
    path = Path(path)
    require_file(path, "Caffe file")
    data = path.read_bytes()
    message = message_classes()["NetParameter"]()
    if _looks_like_text(path, data):
        _parse_text(path, data, message)
    else:
        _parse_binary(path, data, message)
    return _net_from_message(message, path)


def with_weights(graph: CaffeNet, weights: CaffeNet) -> tuple[CaffeNet, tuple[str, ...]]:
    """``graph``'s layers with the blobs of the same-named layers in ``weights``.

    Also returns the names of weight layers that ``graph`` does not have,
    which a caller must report: their blobs would otherwise be dropped unseen.
    """
    blobs = {layer.name: layer.blobs for layer in weights.weighted_layers}
    names = {layer.name for layer in graph.layers}
    layers = tuple(replace(layer, blobs=blobs.get(layer.name, ())) for layer in graph.layers)
    return replace(graph, layers=layers), tuple(name for name in blobs if name not in names)


def _looks_like_text(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in (".prototxt", ".pbtxt", ".txt"):
        return True
    if path.suffix.lower() in (".caffemodel", ".binaryproto"):
        return False
    try:
        data[:4096].decode("ascii")
    except UnicodeDecodeError:
        return False
    return True


def _parse_text(path: Path, data: bytes, message: Any) -> None:
    from google.protobuf import text_format

    try:
        # Caffe's text files carry many settings sr-export does not need (fillers, lr_mult...).
        text_format.Parse(data.decode("utf-8", errors="replace"), message, allow_unknown_field=True)
    except text_format.ParseError as exc:
        raise SrExportError(f"{path} is not a Caffe prototxt: {exc}") from exc


def _parse_binary(path: Path, data: bytes, message: Any) -> None:
    from google.protobuf.message import DecodeError

    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise SrExportError(f"{path} is not a Caffe model (protobuf NetParameter): {exc}") from exc
    if not message.layer and not message.layers:
        raise SrExportError(f"{path} is not a Caffe model: it holds no layers")


def _net_from_message(message: Any, path: Path) -> CaffeNet:
    layers = [_layer(layer, v1=False, path=path) for layer in message.layer]
    layers += [_layer(layer, v1=True, path=path) for layer in message.layers]
    return CaffeNet(name=message.name, inputs=tuple(message.input), layers=tuple(layers))


def _layer(message: Any, *, v1: bool, path: Path) -> CaffeLayer:
    if v1:
        enum = message.DESCRIPTOR.fields_by_name["type"].enum_type
        kind = V1_TYPES.get(enum.values_by_number[message.type].name) if message.type in enum.values_by_number else None
        kind = kind or f"V1 type {message.type}"
    else:
        kind = message.type
    layer = CaffeLayer(
        name=message.name,
        type=kind,
        bottoms=tuple(message.bottom),
        tops=tuple(message.top),
        blobs=tuple(_blob(blob, message.name, path) for blob in message.blobs),
    )
    if kind in ("Convolution", "Deconvolution"):
        layer = replace(layer, conv=_conv_settings(message.convolution_param))
    elif kind == "ReLU":
        layer = replace(layer, negative_slope=float(message.relu_param.negative_slope))
    elif kind == "Slice":
        param = message.slice_param
        axis = param.axis if param.HasField("axis") else (param.slice_dim if param.HasField("slice_dim") else 1)
        layer = replace(layer, axis=int(axis), slice_points=tuple(int(p) for p in param.slice_point))
    elif kind == "Concat":
        param = message.concat_param
        axis = param.axis if param.HasField("axis") else (param.concat_dim if param.HasField("concat_dim") else 1)
        layer = replace(layer, axis=int(axis))
    elif kind == "Eltwise":
        param = message.eltwise_param
        operation = ELTWISE_OPS[param.operation] if param.HasField("operation") else "SUM"
        layer = replace(layer, eltwise_op=operation, coeffs=tuple(float(c) for c in param.coeff))
    return layer


def _conv_settings(param: Any) -> ConvSettings:
    """Caffe's rules: ``kernel_h``/``_w`` override ``kernel_size``; one value means both axes."""

    def pair(values: Any, h_field: str, w_field: str, default: int) -> tuple[int, int]:
        if param.HasField(h_field) or param.HasField(w_field):
            return int(getattr(param, h_field)), int(getattr(param, w_field))
        if not values:
            return default, default
        return (int(values[0]), int(values[-1])) if len(values) <= 2 else (int(values[0]), int(values[1]))

    kernel = pair(param.kernel_size, "kernel_h", "kernel_w", 0)
    return ConvSettings(
        num_output=int(param.num_output),
        kernel=kernel,
        stride=pair(param.stride, "stride_h", "stride_w", 1),
        pad=pair(param.pad, "pad_h", "pad_w", 0),
        dilation=(int(param.dilation[0]), int(param.dilation[-1])) if param.dilation else (1, 1),
        group=int(param.group) if param.HasField("group") else 1,
        bias_term=bool(param.bias_term) if param.HasField("bias_term") else True,
    )


def _blob(blob: Any, layer: str, path: Path) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:  # the pre-2015 4-D fields
        shape = tuple(int(getattr(blob, f)) for f in ("num", "channels", "height", "width"))
    values = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise SrExportError(
            f"{path}: a blob of layer '{layer}' has {values.size} values but shape {shape}; the file is damaged"
        )
    return values.reshape(shape)
