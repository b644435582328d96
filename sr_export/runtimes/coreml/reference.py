"""A numpy executor for Core ML ML Programs, so Core ML parity is provable on Linux.

Core ML's own ``predict`` only exists on macOS. This module reads the MIL
program an ``.mlpackage`` actually holds (the protobuf spec and its weight
blob, not the PyTorch model it came from) and runs its operations in numpy.

Precision is honoured the way the program declares it: every op computes in
float32 and its result is rounded to the dtype the program gives that output
(float16 in an FP16 program), so each FP16 rounding Core ML must do at an op
boundary happens here too. Accumulation inside an op is float32; Core ML's GPU
and Neural Engine may accumulate in float16, which is why the FP16 parity bound
has headroom.

Only the operations super-resolution networks use are implemented. Any other
op, or an option of a known op that is not implemented, raises
:class:`UnsupportedOp` naming it: the executor never guesses.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError, StageFailed, first_line

# MIL's DataType names -> numpy dtypes (the subset tensors here can have).
NUMPY_DTYPES: dict[str, Any] = {
    "FLOAT16": np.float16,
    "FLOAT32": np.float32,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}
# The dtype strings of MIL's ``cast`` op.
CAST_DTYPES: dict[str, Any] = {
    "fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int16": np.int16,
    "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_,
}
BLOB_SENTINEL = 0xDEADBEEF
_BLOB_HEADER = struct.Struct("<IIQQ")  # sentinel, dtype, size in bytes, data offset


class UnsupportedOp(SrExportError):
    """The program uses an op (or an op option) the reference executor does not implement."""

    exit_code = 1

    def __init__(self, op_type: str, node: str, detail: str = "") -> None:
        what = f"op '{op_type}' (node '{node}')" + (f": {detail}" if detail else "")
        super().__init__(
            f"the Core ML reference executor does not implement {what}; parity cannot be proven on this machine "
            "(run `sr-export check` on a Mac, or try the default rewrites / --fp32)"
        )
        self.op_type = op_type
        self.node = node


def load_coremltools_proto() -> Any:
    """coremltools' generated ``Model_pb2``, imported without its macOS-only warnings."""
    from sr_export.runtimes.coreml.quiet import import_coremltools

    import_coremltools()  # one place that silences "Failed to load _MLModelProxy" and names the extra
    from coremltools.proto import Model_pb2

    return Model_pb2


def model_file(package: Path) -> Path:
    """The ``model.mlmodel`` spec inside an ``.mlpackage`` (via its manifest)."""
    manifest_path = package / "Manifest.json"
    if not manifest_path.is_file():
        raise SrExportError(f"{package} is not a Core ML package (no Manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = manifest.get("itemInfoEntries", {}).get(manifest.get("rootModelIdentifier", ""))
    if not entry:
        raise SrExportError(f"{package}: its Manifest.json names no root model")
    return package / "Data" / entry["path"]


def load_spec(package: Path) -> Any:
    spec = load_coremltools_proto().Model()
    spec.ParseFromString(model_file(package).read_bytes())
    return spec


@dataclass
class MilProgram:
    """The ``main`` function of an ML Program: its ops in order, inputs and outputs."""

    inputs: dict[str, str]  # name -> MIL dtype
    outputs: list[str]
    operations: list[Any]  # MIL_pb2.Operation
    weights_root: Path
    opset: str
    _blobs: dict[Path, bytes] = field(default_factory=dict)

    @classmethod
    def from_package(cls, package: str | Path) -> MilProgram:
        package = Path(package)
        spec = load_spec(package)
        if spec.WhichOneof("Type") != "mlProgram":
            raise SrExportError(f"{package} holds a '{spec.WhichOneof('Type')}' model, not an ML Program")
        function = spec.mlProgram.functions.get("main")
        if function is None:
            raise SrExportError(f"{package}: its ML Program has no 'main' function")
        block = function.block_specializations[function.opset]
        inputs = {i.name: _dtype_name(i.type) for i in function.inputs}
        return cls(inputs, list(block.outputs), list(block.operations), model_file(package).parent, function.opset)

    def op_types(self) -> list[str]:
        return [op.type for op in self.operations]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute the program on ``feeds`` (input name -> array); returns its outputs by name."""
        env: dict[str, Any] = {}
        for name, dtype in self.inputs.items():
            if name not in feeds:
                raise SrExportError(f"the program needs an input named '{name}'")
            env[name] = np.asarray(feeds[name]).astype(NUMPY_DTYPES[dtype])
        for op in self.operations:
            node = _node_name(op)
            if op.blocks:
                raise UnsupportedOp(op.type, node, "ops with nested blocks (control flow)")
            if op.type == "const":
                env[op.outputs[0].name] = self._const(op)
                continue
            kernel = KERNELS.get(op.type)
            if kernel is None:
                raise UnsupportedOp(op.type, node)
            arguments = {key: self._argument(arg, env, op, key) for key, arg in op.inputs.items()}
            if op.type.startswith("constexpr_"):
                # iOS16/17 constexpr ops keep their tensors as attributes, not inputs.
                arguments.update({k: self._value(v, op) for k, v in op.attributes.items() if k != "name"})
            try:
                results = kernel(**arguments)
            except UnsupportedOp:
                raise
            except _Unsupported as exc:
                raise UnsupportedOp(op.type, node, str(exc)) from exc
            except Exception as exc:  # a kernel meeting inputs it cannot take: name the op, not numpy's line
                raise StageFailed(
                    "check", f"the Core ML reference executor failed at op '{op.type}' (node '{node}'): {first_line(exc)}"
                ) from exc
            results = results if isinstance(results, tuple) else (results,)
            if len(results) != len(op.outputs):
                raise UnsupportedOp(op.type, node, f"{len(op.outputs)} outputs expected, computed {len(results)}")
            for output, value in zip(op.outputs, results):
                env[output.name] = _as_declared(value, output.type)
        return {name: env[name] for name in self.outputs}

    def _argument(self, argument: Any, env: dict[str, Any], op: Any, key: str) -> Any:
        values = []
        for binding in argument.arguments:
            if binding.WhichOneof("binding") == "name":
                values.append(env[binding.name])
            else:
                values.append(self._value(binding.value, op))
        # Variadic inputs (concat's "values") arrive as a list, everything else as one value.
        return values if key in VARIADIC_INPUTS else values[0]

    def _const(self, op: Any) -> Any:
        return self._value(op.attributes["val"], op)

    def _value(self, value: Any, op: Any) -> Any:
        kind = value.WhichOneof("value")
        if kind == "immediateValue":
            return _immediate(value, op)
        if kind == "blobFileValue":
            return self._blob(value, op)
        raise UnsupportedOp(op.type, _node_name(op), f"a value stored as '{kind}'")

    def _blob(self, value: Any, op: Any) -> np.ndarray:
        tensor = value.type.tensorType
        dtype_name = _dtype_name(value.type)
        if dtype_name not in NUMPY_DTYPES:
            raise UnsupportedOp(op.type, _node_name(op), f"weights of type {dtype_name}")
        relative = value.blobFileValue.fileName.replace("@model_path/", "")
        path = self.weights_root / relative
        if path not in self._blobs:
            self._blobs[path] = path.read_bytes()
        data = self._blobs[path]
        sentinel, _, size, offset = _BLOB_HEADER.unpack_from(data, value.blobFileValue.offset)
        if sentinel != BLOB_SENTINEL:
            raise SrExportError(f"{path} is corrupt: no weight header at offset {value.blobFileValue.offset}")
        shape = [d.constant.size for d in tensor.dimensions]
        return np.frombuffer(data, NUMPY_DTYPES[dtype_name], count=size // np.dtype(NUMPY_DTYPES[dtype_name]).itemsize,
                             offset=offset).reshape(shape)


VARIADIC_INPUTS = {"values"}


class _Unsupported(Exception):
    """Raised inside a kernel for an option it does not implement (becomes UnsupportedOp)."""


def _node_name(op: Any) -> str:
    if "name" in op.attributes:
        strings = op.attributes["name"].immediateValue.tensor.strings.values
        if strings:
            return strings[0]
    return op.outputs[0].name if op.outputs else "?"


def _dtype_name(value_type: Any) -> str:
    from coremltools.proto import MIL_pb2  # already imported (quietly) by load_spec

    return MIL_pb2.DataType.Name(value_type.tensorType.dataType)


def _immediate(value: Any, op: Any) -> Any:
    tensor = value.immediateValue.tensor
    dtype_name = _dtype_name(value.type)
    shape = [d.constant.size for d in value.type.tensorType.dimensions]
    kind = tensor.WhichOneof("value")
    if kind == "strings":
        strings = list(tensor.strings.values)
        return strings[0] if not shape else strings
    if kind == "bytes":
        if dtype_name not in NUMPY_DTYPES:
            raise UnsupportedOp(op.type, _node_name(op), f"constants of type {dtype_name}")
        array = np.frombuffer(tensor.bytes.values, NUMPY_DTYPES[dtype_name])
    elif kind in ("floats", "ints", "bools", "longInts", "doubles"):
        array = np.asarray(list(getattr(tensor, kind).values), NUMPY_DTYPES.get(dtype_name, np.float32))
    else:
        raise UnsupportedOp(op.type, _node_name(op), f"an immediate value of kind '{kind}'")
    return array.reshape(shape)


def _as_declared(value: Any, value_type: Any) -> Any:
    """``value`` rounded to the dtype the program declares for it (where FP16 rounding happens)."""
    if not isinstance(value, np.ndarray | np.generic):
        return value
    dtype = NUMPY_DTYPES.get(_dtype_name(value_type))
    if dtype is None:
        return value
    with np.errstate(over="ignore"):  # overflowing to inf is what an FP16 program does, not a bug here
        return np.asarray(value).astype(dtype)


# --- kernels -----------------------------------------------------------------
# Each takes the op's inputs as keyword arguments (MIL names) and returns numpy
# arrays; float inputs are widened to float32 to compute.


def _f(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind == "f" else x


def _ints(x: Any) -> list[int]:
    return [int(v) for v in np.asarray(x).reshape(-1)]


def _scalar(x: Any) -> Any:
    return np.asarray(x).reshape(()).item()


def _same_pads(size: int, kernel: int, stride: int, lower: bool) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


def _spatial_pads(pad_type: str, pad: Any, sizes: tuple[int, ...], kernels: list[int], strides: list[int]) -> list[int]:
    """[top, bottom, left, right] for conv and pooling pad types."""
    if pad_type == "valid":
        return [0, 0, 0, 0]
    if pad_type == "custom":
        return _ints(pad)
    if pad_type in ("same", "same_lower"):
        pads: list[int] = []
        for size, kernel, stride in zip(sizes, kernels, strides):
            pads.extend(_same_pads(size, kernel, stride, pad_type == "same_lower"))
        return pads
    raise _Unsupported(f"pad_type '{pad_type}'")


def conv(x: Any, weight: Any, bias: Any = None, strides: Any = (1, 1), pad_type: str = "valid", pad: Any = (0, 0, 0, 0),
         dilations: Any = (1, 1), groups: Any = 1) -> np.ndarray:
    x, weight = _f(x), _f(weight)
    if x.ndim != 4:
        raise _Unsupported(f"{x.ndim - 2}-d convolution")
    groups = int(_scalar(groups))
    strides, dilations = _ints(strides), _ints(dilations)
    out_channels, group_in, kh, kw = weight.shape
    span_h, span_w = dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1
    top, bottom, left, right = _spatial_pads(pad_type, pad, x.shape[2:], [span_h, span_w], strides)
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    windows = windows[:, :, :: strides[0], :: strides[1], :: dilations[0], :: dilations[1]]
    group_out = out_channels // groups
    parts = []
    for g in range(groups):
        patch = windows[:, g * group_in:(g + 1) * group_in]
        kernel = weight[g * group_out:(g + 1) * group_out]
        parts.append(np.tensordot(patch, kernel, axes=([1, 4, 5], [1, 2, 3])))  # N, H, W, O
    out = np.concatenate(parts, axis=3).transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + _f(bias).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)


def conv_transpose(x: Any, weight: Any, bias: Any = None, pad: Any = (0, 0, 0, 0), output_shape: Any = None,
                   pad_type: str = "valid", strides: Any = (1, 1), dilations: Any = (1, 1), groups: Any = 1) -> np.ndarray:
    x, weight = _f(x), _f(weight)
    if x.ndim != 4:
        raise _Unsupported(f"{x.ndim - 2}-d transposed convolution")
    groups = int(_scalar(groups))
    (sh, sw), (dh, dw) = _ints(strides), _ints(dilations)
    batch, _, height, width = x.shape
    in_channels, group_out, kh, kw = weight.shape  # MIL: [C_in, C_out / groups, kH, kW]
    full_h, full_w = (height - 1) * sh + dh * (kh - 1) + 1, (width - 1) * sw + dw * (kw - 1) + 1
    if pad_type == "custom":
        top, bottom, left, right = _ints(pad)
    elif pad_type == "valid":
        top = bottom = left = right = 0
    elif pad_type == "same":
        top, bottom = _same_pads_transposed(full_h, height * sh)
        left, right = _same_pads_transposed(full_w, width * sw)
    else:
        raise _Unsupported(f"pad_type '{pad_type}'")
    out_h, out_w = full_h - top - bottom, full_w - left - right
    if output_shape is not None:
        out_h, out_w = _ints(output_shape)[-2:]
    canvas = np.zeros((batch, group_out * groups, max(full_h, top + out_h), max(full_w, left + out_w)), np.float32)
    group_in = in_channels // groups
    for g in range(groups):
        columns = np.tensordot(x[:, g * group_in:(g + 1) * group_in], weight[g * group_in:(g + 1) * group_in],
                               axes=([1], [0]))  # N, H, W, O, kH, kW
        target = canvas[:, g * group_out:(g + 1) * group_out]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (height - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (width - 1) * sw + 1, sw)
                target[:, :, rows, cols] += columns[..., i, j].transpose(0, 3, 1, 2)
    out = canvas[:, :, top:top + out_h, left:left + out_w]
    if bias is not None:
        out = out + _f(bias).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)


def _same_pads_transposed(full: int, wanted: int) -> tuple[int, int]:
    total = max(full - wanted, 0)
    return total // 2, total - total // 2


def _pool(x: Any, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any, ceil_mode: Any, fill: float) -> tuple:
    x = _f(x)
    if x.ndim != 4:
        raise _Unsupported(f"{x.ndim - 2}-d pooling")
    kernels, strides = _ints(kernel_sizes), _ints(strides)
    top, bottom, left, right = _spatial_pads(pad_type, pad, x.shape[2:], kernels, strides)
    extra = [0, 0]
    if bool(_scalar(ceil_mode)):
        for axis, (size, before, after) in enumerate(((x.shape[2], top, bottom), (x.shape[3], left, right))):
            padded = size + before + after
            out = -(-(padded - kernels[axis]) // strides[axis]) + 1
            # A window must start inside the input or its leading padding (PyTorch's and Core ML's rule).
            if (out - 1) * strides[axis] >= size + before:
                out -= 1
            extra[axis] = max((out - 1) * strides[axis] + kernels[axis] - padded, 0)
    widths = ((0, 0), (0, 0), (top, bottom + extra[0]), (left, right + extra[1]))
    valid = np.pad(np.ones(x.shape[2:], np.float32), widths[2:])
    x = np.pad(x, widths, constant_values=fill)
    windows = np.lib.stride_tricks.sliding_window_view(x, kernels, axis=(2, 3))[:, :, :: strides[0], :: strides[1]]
    counts = np.lib.stride_tricks.sliding_window_view(valid, kernels)[:: strides[0], :: strides[1]]
    return windows, counts, (top, bottom, left, right)


def max_pool(x: Any, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any = (0, 0, 0, 0),
             ceil_mode: Any = False) -> np.ndarray:
    windows, _, _ = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, -np.inf)
    return windows.max(axis=(4, 5))


def avg_pool(x: Any, kernel_sizes: Any, strides: Any, pad_type: str, pad: Any = (0, 0, 0, 0),
             exclude_padding_from_average: Any = False, ceil_mode: Any = False) -> np.ndarray:
    windows, counts, _ = _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    sums = windows.sum(axis=(4, 5))
    if bool(_scalar(exclude_padding_from_average)):
        return sums / counts.sum(axis=(2, 3))
    kernels = _ints(kernel_sizes)
    return sums / float(kernels[0] * kernels[1])


def _bilinear_axis(source: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and upper weight for each output coordinate along one axis."""
    source = np.clip(source, 0.0, size - 1)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, size - 1)
    return lower, upper, (source - lower).astype(np.float32)


def _bilinear(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    x = _f(x)
    r0, r1, rw = _bilinear_axis(rows, x.shape[-2])
    c0, c1, cw = _bilinear_axis(cols, x.shape[-1])
    top = x[..., r0, :] * (1 - rw)[:, None] + x[..., r1, :] * rw[:, None]
    return top[..., c0] * (1 - cw) + top[..., c1] * cw


def _coordinates(out: int, size: int, mode: str, scale: float | None = None) -> np.ndarray:
    dst = np.arange(out, dtype=np.float64)
    ratio = (1.0 / scale) if scale is not None else size / out
    if mode == "align_corners":
        return dst * ((size - 1) / (out - 1) if out > 1 else 0.0)
    if mode == "half_pixel":
        return (dst + 0.5) * ratio - 0.5
    if mode == "asymmetric":
        return dst * ratio
    raise _Unsupported(f"sampling mode '{mode}'")


def upsample_bilinear(x: Any, scale_factor_height: Any = 1, scale_factor_width: Any = 1, align_corners: Any = False,
                      half_pixel_centers: Any = None) -> np.ndarray:
    x = _f(x)
    sh, sw = float(_scalar(scale_factor_height)), float(_scalar(scale_factor_width))
    height, width = x.shape[-2:]
    out_h, out_w = int(np.floor(height * sh)), int(np.floor(width * sw))
    aligned = bool(_scalar(align_corners))
    half = (not aligned) if half_pixel_centers is None else bool(_scalar(half_pixel_centers))
    mode = "align_corners" if aligned else ("half_pixel" if half else "asymmetric")
    return _bilinear(x, _coordinates(out_h, height, mode, sh), _coordinates(out_w, width, mode, sw))


RESIZE_SAMPLING = {"UNALIGN_CORNERS": "half_pixel", "DEFAULT": "asymmetric",
                   "STRICT_ALIGN_CORNERS": "align_corners", "ALIGN_CORNERS": "align_corners"}


def resize_bilinear(x: Any, target_size_height: Any, target_size_width: Any, sampling_mode: str = "DEFAULT") -> np.ndarray:
    x = _f(x)
    if sampling_mode not in RESIZE_SAMPLING:
        raise _Unsupported(f"sampling_mode '{sampling_mode}'")
    mode = RESIZE_SAMPLING[sampling_mode]
    out_h, out_w = int(_scalar(target_size_height)), int(_scalar(target_size_width))
    return _bilinear(x, _coordinates(out_h, x.shape[-2], mode), _coordinates(out_w, x.shape[-1], mode))


def upsample_nearest_neighbor(x: Any, scale_factor_height: Any = 1, scale_factor_width: Any = 1) -> np.ndarray:
    x = _f(x)
    sh, sw = float(_scalar(scale_factor_height)), float(_scalar(scale_factor_width))
    height, width = x.shape[-2:]
    rows = np.minimum(np.floor(np.arange(int(height * sh)) / sh).astype(np.int64), height - 1)
    cols = np.minimum(np.floor(np.arange(int(width * sw)) / sw).astype(np.int64), width - 1)
    return x[..., rows, :][..., cols]


def resize_nearest_neighbor(x: Any, target_size_height: Any, target_size_width: Any) -> np.ndarray:
    x = _f(x)
    height, width = x.shape[-2:]
    out_h, out_w = int(_scalar(target_size_height)), int(_scalar(target_size_width))
    rows = np.minimum(np.floor(np.arange(out_h) * height / out_h).astype(np.int64), height - 1)
    cols = np.minimum(np.floor(np.arange(out_w) * width / out_w).astype(np.int64), width - 1)
    return x[..., rows, :][..., cols]


def pixel_shuffle(x: Any, upscale_factor: Any) -> np.ndarray:
    r = int(_scalar(upscale_factor))
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: Any, downscale_factor: Any) -> np.ndarray:
    r = int(_scalar(downscale_factor))
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


def depth_to_space(x: Any, block_size: Any) -> np.ndarray:
    # DCR order: the block offsets are the outer part of the channel index.
    r = int(_scalar(block_size))
    n, c, h, w = x.shape
    return x.reshape(n, r, r, c // (r * r), h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (r * r), h * r, w * r)


def space_to_depth(x: Any, block_size: Any) -> np.ndarray:
    r = int(_scalar(block_size))
    n, c, h, w = x.shape
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * r * r, h // r, w // r)


def reshape(x: Any, shape: Any) -> np.ndarray:
    x = np.asarray(x)
    dims = _ints(shape)
    # iOS17 reshape: 0 copies the input's dimension at that position.
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def transpose(x: Any, perm: Any) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, _ints(perm)))


def concat(values: list[Any], axis: Any, interleave: Any = False) -> np.ndarray:
    if bool(_scalar(interleave)):
        raise _Unsupported("interleave=True")
    # Shape arithmetic concatenates scalars into a shape vector.
    arrays = [np.atleast_1d(_f(v)) for v in values]
    return np.concatenate(arrays, axis=int(_scalar(axis)))


def split(x: Any, axis: Any, num_splits: Any = None, split_sizes: Any = None) -> tuple[np.ndarray, ...]:
    axis = int(_scalar(axis))
    if split_sizes is not None:
        bounds = np.cumsum(_ints(split_sizes))[:-1]
        return tuple(np.split(x, bounds, axis=axis))
    return tuple(np.split(x, int(_scalar(num_splits)), axis=axis))


def slice_by_index(x: Any, begin: Any, end: Any, stride: Any = None, begin_mask: Any = None, end_mask: Any = None,
                   squeeze_mask: Any = None) -> np.ndarray:
    x = np.asarray(x)
    rank = x.ndim
    begin, end = _ints(begin), _ints(end)
    stride = _ints(stride) if stride is not None else [1] * rank
    begin_mask = [bool(v) for v in np.asarray(begin_mask).reshape(-1)] if begin_mask is not None else [False] * rank
    end_mask = [bool(v) for v in np.asarray(end_mask).reshape(-1)] if end_mask is not None else [False] * rank
    squeeze = [bool(v) for v in np.asarray(squeeze_mask).reshape(-1)] if squeeze_mask is not None else [False] * rank
    index = []
    for axis in range(rank):
        if squeeze[axis]:
            index.append(begin[axis])
            continue
        start = None if begin_mask[axis] else begin[axis]
        stop = None if end_mask[axis] else end[axis]
        index.append(slice(start, stop, stride[axis]))
    return np.ascontiguousarray(x[tuple(index)])


def slice_by_size(x: Any, begin: Any, size: Any) -> np.ndarray:
    x = np.asarray(x)
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(_ints(begin), _ints(size)))
    return np.ascontiguousarray(x[index])


def pad(x: Any, pad: Any, mode: str = "constant", constant_val: Any = 0.0) -> np.ndarray:
    x = _f(x)
    amounts = _ints(pad)
    pairs = [(0, 0)] * (x.ndim - len(amounts) // 2) + [(amounts[i], amounts[i + 1]) for i in range(0, len(amounts), 2)]
    if mode == "constant":
        return np.pad(x, pairs, constant_values=float(_scalar(constant_val)))
    if mode == "reflect":
        return np.pad(x, pairs, mode="reflect")
    if mode == "replicate":
        return np.pad(x, pairs, mode="edge")
    raise _Unsupported(f"pad mode '{mode}'")


def _reduce(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def kernel(x: Any, axes: Any = None, keep_dims: Any = False) -> np.ndarray:
        dims = tuple(_ints(axes)) if axes is not None else None
        return function(_f(x), axis=dims, keepdims=bool(_scalar(keep_dims)))

    return kernel


def _binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def kernel(x: Any, y: Any) -> np.ndarray:
        return function(_f(x), _f(y))

    return kernel


def _unary(function: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def kernel(x: Any) -> np.ndarray:
        return function(_f(x))

    return kernel


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def leaky_relu(x: Any, alpha: Any = 0.01) -> np.ndarray:
    x = _f(x)
    return np.where(x >= 0, x, x * np.float32(_scalar(alpha)))


def elu(x: Any, alpha: Any = 1.0) -> np.ndarray:
    x = _f(x)
    return np.where(x > 0, x, np.float32(_scalar(alpha)) * np.expm1(x))


def prelu(x: Any, alpha: Any) -> np.ndarray:
    x = _f(x)
    slope = _f(alpha).reshape(1, -1, *([1] * (x.ndim - 2)))
    return np.where(x >= 0, x, x * slope)


def clip(x: Any, alpha: Any, beta: Any) -> np.ndarray:
    return np.clip(_f(x), float(_scalar(alpha)), float(_scalar(beta)))


def rsqrt(x: Any, epsilon: Any = 1e-12) -> np.ndarray:
    return 1.0 / np.sqrt(_f(x) + np.float32(_scalar(epsilon)))


def gelu(x: Any, mode: str = "EXACT") -> np.ndarray:
    x = _f(x).astype(np.float64)
    if mode == "EXACT":
        from math import erf

        return (0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))).astype(np.float32)
    if mode == "TANH_APPROXIMATION":
        return (0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))).astype(np.float32)
    if mode == "SIGMOID_APPROXIMATION":
        return (x * _sigmoid(1.702 * x)).astype(np.float32)
    raise _Unsupported(f"mode '{mode}'")


def cast(x: Any, dtype: str) -> np.ndarray:
    if dtype not in CAST_DTYPES:
        raise _Unsupported(f"cast to '{dtype}'")
    return np.asarray(x).astype(CAST_DTYPES[dtype])


def linear(x: Any, weight: Any, bias: Any = None) -> np.ndarray:
    out = _f(x) @ _f(weight).T
    return out + _f(bias) if bias is not None else out


def matmul(x: Any, y: Any, transpose_x: Any = False, transpose_y: Any = False) -> np.ndarray:
    x, y = _f(x), _f(y)
    if bool(_scalar(transpose_x)):
        x = np.swapaxes(x, -1, -2)
    if bool(_scalar(transpose_y)):
        y = np.swapaxes(y, -1, -2)
    return x @ y


def batch_norm(x: Any, mean: Any, variance: Any, gamma: Any = None, beta: Any = None, epsilon: Any = 1e-5) -> np.ndarray:
    x = _f(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - _f(mean).reshape(shape)) / np.sqrt(_f(variance).reshape(shape) + np.float32(_scalar(epsilon)))
    if gamma is not None:
        out = out * _f(gamma).reshape(shape)
    if beta is not None:
        out = out + _f(beta).reshape(shape)
    return out


def shape(x: Any) -> np.ndarray:
    return np.asarray(np.shape(x), np.int32)


def gather(x: Any, indices: Any, axis: Any = 0, batch_dims: Any = 0, validate_indices: Any = False) -> np.ndarray:
    if int(_scalar(batch_dims)) != 0:
        raise _Unsupported("batch_dims != 0")
    return np.take(np.asarray(x), np.asarray(indices).astype(np.int64), axis=int(_scalar(axis)))


def expand_dims(x: Any, axes: Any) -> np.ndarray:
    out = np.asarray(x)
    for axis in sorted(_ints(axes)):
        out = np.expand_dims(out, axis)
    return out


def squeeze(x: Any, axes: Any = None) -> np.ndarray:
    return np.squeeze(np.asarray(x), axis=tuple(_ints(axes)) if axes is not None else None)


def tile(x: Any, reps: Any) -> np.ndarray:
    return np.tile(np.asarray(x), _ints(reps))


def select(cond: Any, a: Any, b: Any) -> np.ndarray:
    return np.where(np.asarray(cond).astype(bool), a, b)


def range_1d(end: Any, start: Any, step: Any) -> np.ndarray:
    values = [np.asarray(v) for v in (start, end, step)]
    dtype = np.result_type(*values)
    return np.arange(_scalar(start), _scalar(end), _scalar(step)).astype(dtype)


def floor_div(x: Any, y: Any) -> np.ndarray:
    x, y = _f(x), _f(y)
    return np.floor_divide(x, y)


def identity(x: Any) -> Any:
    return x


def constexpr_affine_dequantize(quantized_data: Any, zero_point: Any, scale: Any, axis: Any) -> np.ndarray:
    data = np.asarray(quantized_data).astype(np.float32)
    axis = int(_scalar(axis)) % data.ndim
    shape = [1] * data.ndim
    zero, step = _f(zero_point).astype(np.float32), _f(scale)
    if zero.size > 1:
        shape[axis] = -1
        zero = zero.reshape(shape)
    if step.size > 1:
        shape = [1] * data.ndim
        shape[axis] = -1
        step = step.reshape(shape)
    return (data - zero) * step


def constexpr_blockwise_shift_scale(data: Any, scale: Any, offset: Any = None) -> np.ndarray:
    data = np.asarray(data).astype(np.float32)
    scale = _f(scale)
    blocks = [d // s for d, s in zip(data.shape, scale.shape)]

    def spread(values: np.ndarray) -> np.ndarray:
        for axis, block in enumerate(blocks):
            values = np.repeat(values, block, axis=axis)
        return values

    if offset is not None:
        data = data - spread(np.asarray(offset).astype(np.float32))
    return data * spread(scale)


KERNELS: dict[str, Callable[..., Any]] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "max_pool": max_pool,
    "avg_pool": avg_pool,
    "upsample_bilinear": upsample_bilinear,
    "resize_bilinear": resize_bilinear,
    "upsample_nearest_neighbor": upsample_nearest_neighbor,
    "resize_nearest_neighbor": resize_nearest_neighbor,
    "pixel_shuffle": pixel_shuffle,
    "pixel_unshuffle": pixel_unshuffle,
    "depth_to_space": depth_to_space,
    "space_to_depth": space_to_depth,
    "reshape": reshape,
    "transpose": transpose,
    "concat": concat,
    "split": split,
    "slice_by_index": slice_by_index,
    "slice_by_size": slice_by_size,
    "pad": pad,
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "real_div": _binary(np.divide),
    "pow": _binary(np.power),
    "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum),
    "floor_div": floor_div,
    "mod": _binary(np.mod),
    "equal": _binary(np.equal),
    "not_equal": _binary(np.not_equal),
    "greater": _binary(np.greater),
    "greater_equal": _binary(np.greater_equal),
    "less": _binary(np.less),
    "less_equal": _binary(np.less_equal),
    "logical_and": _binary(np.logical_and),
    "logical_or": _binary(np.logical_or),
    "logical_not": _unary(np.logical_not),
    "select": select,
    "range_1d": range_1d,
    "floor": _unary(np.floor),
    "ceil": _unary(np.ceil),
    "relu": _unary(lambda x: np.maximum(x, 0)),
    "relu6": _unary(lambda x: np.clip(x, 0, 6)),
    "sigmoid": _unary(_sigmoid),
    "tanh": _unary(np.tanh),
    "sqrt": _unary(np.sqrt),
    "exp": _unary(np.exp),
    "abs": _unary(np.abs),
    "silu": _unary(lambda x: x * _sigmoid(x)),
    "leaky_relu": leaky_relu,
    "elu": elu,
    "prelu": prelu,
    "clip": clip,
    "rsqrt": rsqrt,
    "gelu": gelu,
    "reduce_mean": _reduce(np.mean),
    "reduce_sum": _reduce(np.sum),
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "cast": cast,
    "linear": linear,
    "matmul": matmul,
    "batch_norm": batch_norm,
    "shape": shape,
    "gather": gather,
    "expand_dims": expand_dims,
    "squeeze": squeeze,
    "tile": tile,
    "identity": identity,
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_blockwise_shift_scale": constexpr_blockwise_shift_scale,
}
