"""An ONNX graph run as a differentiable PyTorch module: the QDQ graph itself, trainable.

Quantisation-aware fine-tuning must train the graph that ships, not a
look-alike: the same tensors quantised, the same float islands, the same
Relu folded into a uint8 range. So the student is the QDQ graph built by
:func:`sr_export.quantize.qdq_graph.quantized_proto`, interpreted op by op:

- an activation QuantizeLinear/DequantizeLinear pair becomes a fake-quant
  with a learnable step size (LSQ) and the graph's zero point;
- a weight DequantizeLinear becomes the float weight (a parameter, from the
  float graph under the same name) fake-quantised per channel, symmetric, the
  way ONNX Runtime will quantise the tuned weight;
- a bias DequantizeLinear becomes the float bias (int32 rounding of a bias is
  far below an activation step).

Learned weights and step sizes therefore map back to the graph by tensor name,
with nothing to guess. The float graph run by the same class is the teacher.
Only the op types of the SR models' exports are supported; anything else is
an error naming the op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError

QUANTIZED_SUFFIX = "_quantized"  # ONNX Runtime's quantiser: 'w' becomes 'w_quantized'
WEIGHT_QMAX = 127  # ONNX Runtime's symmetric int8 weights span [-127, 127]


def _round_ste(value: Any) -> Any:
    """Round forward, identity backward (the straight-through estimator)."""
    return value + (value.round() - value).detach()


def fake_quant(x: Any, scale: Any, zero_point: Any, qmin: int, qmax: int) -> Any:
    """Quantise-dequantise with gradients for ``x`` (inside the range) and ``scale`` (LSQ)."""
    import torch

    q = torch.clamp(_round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def fake_quant_weight(weight: Any, axis: int = 0) -> Any:
    """Symmetric per-channel int8 as ONNX Runtime derives it from the weight: step = max|w| / 127."""
    import torch

    dims = [d for d in range(weight.dim()) if d != axis]
    scale = weight.detach().abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / WEIGHT_QMAX
    return torch.clamp(_round_ste(weight / scale), -WEIGHT_QMAX, WEIGHT_QMAX) * scale


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _pads(pads: list[int]) -> tuple[int, int]:
    """ONNX [top, left, bottom, right] pads as torch's symmetric (h, w); asymmetric pads are not supported."""
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise SrExportError(f"asymmetric pads {pads} are not supported by the fine-tuning interpreter")
    return pads[0], pads[1]


def _conv(x: Any, w: Any, b: Any | None, a: Mapping[str, Any]) -> Any:
    import torch.nn.functional as F

    return F.conv2d(x, w, b, stride=tuple(a.get("strides", (1, 1))), padding=_pads(list(a.get("pads", [0] * 4))),
                    dilation=tuple(a.get("dilations", (1, 1))), groups=int(a.get("group", 1)))


def _resize(x: Any, roi: Any, scales: Any, sizes: Any, a: Mapping[str, Any]) -> Any:
    import torch.nn.functional as F

    mode, transform = a.get("mode", "nearest"), a.get("coordinate_transformation_mode", "half_pixel")
    if mode != "linear" or transform not in ("half_pixel", "pytorch_half_pixel"):
        raise SrExportError(f"Resize mode={mode}, coordinate_transformation_mode={transform} is not supported "
                            "by the fine-tuning interpreter")
    if sizes is not None and sizes.numel():
        size = [int(v) for v in sizes.tolist()[-2:]]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    factors = [float(v) for v in scales.tolist()[-2:]]
    return F.interpolate(x, scale_factor=factors, mode="bilinear", align_corners=False)


def _split(x: Any, split: Any, a: Mapping[str, Any], outputs: int) -> list[Any]:
    import torch

    axis = int(a.get("axis", 0))
    sizes = [int(v) for v in split.tolist()] if split is not None else a.get("split")
    if sizes is None:
        return list(torch.chunk(x, int(a.get("num_outputs", outputs)), dim=axis))
    return list(torch.split(x, sizes, dim=axis))


def _reduce_mean(x: Any, axes: Any, a: Mapping[str, Any]) -> Any:
    dims = [int(v) for v in axes.tolist()] if axes is not None else a.get("axes")
    return x.mean(dim=tuple(dims), keepdim=bool(a.get("keepdims", 1)))


def _slice(x: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
    result = x
    axis_list = axes.tolist() if axes is not None else list(range(len(starts)))
    step_list = steps.tolist() if steps is not None else [1] * len(axis_list)
    for axis, start, end, step in zip(axis_list, starts.tolist(), ends.tolist(), step_list):
        index = [slice(None)] * result.dim()
        index[int(axis)] = slice(int(start), min(int(end), result.shape[int(axis)]), int(step))
        result = result[tuple(index)]
    return result


def _depth_to_space(x: Any, a: Mapping[str, Any]) -> Any:
    import torch.nn.functional as F

    if a.get("mode", "DCR") != "CRD":
        raise SrExportError("DepthToSpace mode DCR is not supported by the fine-tuning interpreter")
    return F.pixel_shuffle(x, int(a["blocksize"]))


def _op_table() -> dict[str, Callable[..., Any]]:
    """op type -> f(attributes, *inputs) returning one tensor or a list; inputs missing in ONNX are None."""
    import torch
    import torch.nn.functional as F

    return {
        "Conv": lambda a, x, w, b=None: _conv(x, w, b, a),
        "Relu": lambda a, x: F.relu(x),
        "LeakyRelu": lambda a, x: F.leaky_relu(x, float(a.get("alpha", 0.01))),
        "Sigmoid": lambda a, x: torch.sigmoid(x),
        "Add": lambda a, x, y: x + y,
        "Sub": lambda a, x, y: x - y,
        "Mul": lambda a, x, y: x * y,
        "Div": lambda a, x, y: x / y,
        "Pow": lambda a, x, y: x.pow(y),
        # A channel made constant by rounding has variance 0, where sqrt's gradient is infinite.
        "Sqrt": lambda a, x: torch.sqrt(x.clamp_min(1e-12)),
        "Concat": lambda a, *xs: torch.cat(xs, dim=int(a["axis"])),
        "MaxPool": lambda a, x: F.max_pool2d(x, tuple(a["kernel_shape"]), tuple(a.get("strides", a["kernel_shape"])),
                                             _pads(list(a.get("pads", [0] * 4))), ceil_mode=bool(a.get("ceil_mode", 0))),
        "Resize": lambda a, x, roi=None, scales=None, sizes=None: _resize(x, roi, scales, sizes, a),
        "DepthToSpace": lambda a, x: _depth_to_space(x, a),
        "ReduceMean": lambda a, x, axes=None: _reduce_mean(x, axes, a),
        "Clip": lambda a, x, low=None, high=None: torch.clamp(x, low, high),
        "Shape": lambda a, x: torch.tensor(x.shape[a.get("start", 0):a.get("end", len(x.shape))], dtype=torch.int64),
        "Gather": lambda a, x, i: torch.index_select(x, int(a.get("axis", 0)), i.reshape(-1)).reshape(
            x.shape[: int(a.get("axis", 0))] + i.shape + x.shape[int(a.get("axis", 0)) + 1:]),
        "Unsqueeze": lambda a, x, axes=None: x.reshape(
            _unsqueezed(tuple(x.shape), axes.tolist() if axes is not None else a["axes"])),
        "Slice": lambda a, x, starts, ends, axes=None, steps=None: _slice(x, starts, ends, axes, steps),
        "Identity": lambda a, x: x,
        "Split": lambda a, x, *rest: _split(x, rest[0] if len(rest) > 1 else None, a, rest[-1]),
    }


def _unsqueezed(shape: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    result = list(shape)
    for axis in sorted(int(v) % (len(shape) + len(axes)) for v in axes):
        result.insert(axis, 1)
    return tuple(result)


def topological_order(proto: Any) -> list[Any]:
    """The graph's nodes, producers first: ONNX Runtime's quantiser appends its Q/DQ nodes at the end."""
    available = {i.name for i in proto.graph.input} | {i.name for i in proto.graph.initializer} | {""}
    pending, ordered = list(proto.graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise SrExportError(f"graph has a cycle or an undefined input near {pending[0].name}")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    return ordered


def _safe(name: str) -> str:
    """A ParameterDict key for an ONNX tensor name (no dots allowed there)."""
    return name.replace(".", "__dot__")


def _float_initialisers(proto: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def build_graph_module(proto: Any, float_proto: Any | None = None, *, trainable: bool = True) -> Any:
    """``proto`` (a float or QDQ graph) as a torch module; float weights come from ``float_proto`` (default: ``proto``).

    Parameters are the float graph's float initialisers of rank >= 1 (conv
    weights and biases), named as in the graph; each activation Q/DQ pair gets
    a learnable log step size, initialised from the graph's scale.
    """
    import torch

    class GraphModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proto_nodes = topological_order(proto)
            self.input_name = proto.graph.input[0].name
            self.output_name = proto.graph.output[0].name
            floats = _float_initialisers(float_proto if float_proto is not None else proto)
            self.constants = {k: torch.from_numpy(np.array(v)) for k, v in _float_initialisers(proto).items()}
            self.weights = torch.nn.ParameterDict({
                _safe(k): torch.nn.Parameter(torch.from_numpy(np.array(v, np.float32)), requires_grad=trainable)
                for k, v in floats.items() if v.dtype == np.float32 and v.ndim >= 1})
            self.log_scales = torch.nn.ParameterDict()
            self.zero_points: dict[str, tuple[float, int, int]] = {}
            for node in self.proto_nodes:
                if node.op_type == "QuantizeLinear" and node.input[0] not in self.constants:
                    scale = float(self.constants[node.input[1]].reshape(-1)[0])
                    zp = self.constants[node.input[2]]
                    info = torch.iinfo(zp.dtype)
                    self.log_scales[_safe(node.input[0])] = torch.nn.Parameter(torch.tensor(np.log(scale)))
                    self.zero_points[node.input[0]] = (float(zp.reshape(-1)[0]), int(info.min), int(info.max))
            self.ops = _op_table()
            self.attributes = [_attributes(node) for node in self.proto_nodes]  # parsed once, not per step

        def activation_scales(self) -> dict[str, tuple[float, int]]:
            """Quantised activation tensor -> (learned step size, zero point)."""
            return {name: (float(torch.exp(self.log_scales[_safe(name)]).detach()), int(zp))
                    for name, (zp, _lo, _hi) in self.zero_points.items()}

        def float_weights(self) -> dict[str, np.ndarray]:
            return {k.replace("__dot__", "."): v.detach().numpy().copy() for k, v in self.weights.items()}

        def _value(self, name: str) -> Any:
            key = _safe(name)
            if key in self.weights:
                return self.weights[key]
            return self.constants.get(name)

        def _dequantize(self, node: Any, attributes: Mapping[str, Any], env: dict[str, Any]) -> Any:
            source = node.input[0]
            if source in env:  # the activation's Q already fake-quantised it
                return env[source]
            weight = self._value(source.removesuffix(QUANTIZED_SUFFIX))
            if weight is None or not isinstance(weight, torch.nn.Parameter):
                raise SrExportError(f"DequantizeLinear of {source}: no float initialiser behind it")
            if self.constants[source].dtype == torch.int8:
                return fake_quant_weight(weight, int(attributes.get("axis", 1)) if weight.dim() > 1 else 0)
            return weight  # int32 bias: its rounding is far below an activation step

        def forward(self, x: Any) -> Any:
            env: dict[str, Any] = {self.input_name: x}
            for node, attributes in zip(self.proto_nodes, self.attributes):
                if node.op_type == "QuantizeLinear":
                    zp, qmin, qmax = self.zero_points[node.input[0]]
                    scale = torch.exp(self.log_scales[_safe(node.input[0])])
                    env[node.output[0]] = fake_quant(env[node.input[0]], scale, zp, qmin, qmax)
                    continue
                if node.op_type == "DequantizeLinear":
                    env[node.output[0]] = self._dequantize(node, attributes, env)
                    continue
                if node.op_type == "Constant":
                    from onnx import numpy_helper

                    env[node.output[0]] = torch.from_numpy(np.array(numpy_helper.to_array(node.attribute[0].t)))
                    continue
                op = self.ops.get(node.op_type)
                if op is None:
                    raise SrExportError(f"op {node.op_type} ({node.name}) is not supported by the fine-tuning "
                                        "interpreter")
                inputs = [(env[i] if i in env else self._value(i)) if i else None for i in node.input]
                if node.op_type == "Split":  # the only op whose result count comes from the node
                    inputs.append(len(node.output))
                result = op(attributes, *inputs)
                for name, value in zip(node.output, result if isinstance(result, list) else [result]):
                    env[name] = value
            return env[self.output_name]

    return GraphModule()
