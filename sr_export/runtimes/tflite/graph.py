"""A TFLite graph through the LiteRT schema's object API: tensors, ops and their links, read by name or index.

Everything here works on ``ai_edge_litert.tools.flatbuffer_utils`` objects (the
schema bindings LiteRT ships), never on hand-parsed bytes. :class:`TfliteGraph`
reads subgraph 0 (op names, producers, consumers, tensor types and
quantisation parameters), gives the SR rules of
:mod:`sr_export.quantize.sr_layers` their view of it
(:meth:`TfliteGraph.dataflow`) and answers with the SR-sensitive ops, so the
TFLite path keeps the same layers at higher precision as the ONNX one. The
edits INT8 needs (folding float islands, the I/O ends) are in
:mod:`sr_export.runtimes.tflite.graph_edits`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.quantize import sr_layers
from sr_export.quantize.sr_layers import Conventions, Dataflow, Op

CONV_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"})
ADD_OPS = frozenset({"ADD"})
# Ops that move or pad values without arithmetic (pixel shuffle is RESHAPE/TRANSPOSE/RESHAPE).
PASS_THROUGH_OPS = frozenset({"RESHAPE", "TRANSPOSE", "DEPTH_TO_SPACE", "PAD", "MIRROR_PAD", "SQUEEZE", "EXPAND_DIMS"})
CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
SHAPE_OPS = frozenset({"SHAPE"})
TFLITE_KINDS = sr_layers.kind_table(conv=CONV_OPS, add=ADD_OPS, pass_through=PASS_THROUGH_OPS, convert=CONVERSION_OPS,
                                    shape=SHAPE_OPS)
# The TFLite path's reasons: an op keeps the first reason found; ops are told apart by position.
TFLITE_CONVENTIONS = Conventions()

# The schema's TensorType codes (schema_py_generated.TensorType), by the names sr-export uses.
TENSOR_TYPES = {"float32": 0, "uint8": 3, "int16": 7, "int8": 9}
TYPE_NAMES = {code: name for name, code in TENSOR_TYPES.items()}
# Integer ranges of the I/O types: (qmin, qmax).
INTEGER_RANGES = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767)}


@dataclass(frozen=True)
class Quantization:
    """Per-tensor affine parameters: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    @classmethod
    def for_range(cls, dtype: str, data_range: float) -> Quantization:
        """Parameters that map [0, data_range] onto the whole of ``dtype`` (int16: symmetric, as LiteRT wants)."""
        return cls.covering(dtype, 0.0, data_range)

    @classmethod
    def covering(cls, dtype: str, low: float, high: float) -> Quantization:
        """Parameters whose grid covers [low, high] and 0 (int16: symmetric, as LiteRT's 16-bit kernels want)."""
        qmin, qmax = INTEGER_RANGES[dtype]
        low, high = min(low, 0.0), max(high, 0.0)
        if dtype == "int16":
            return cls(max(abs(low), abs(high), 1e-9) / qmax, 0)
        scale = max(high - low, 1e-9) / (qmax - qmin)
        return cls(scale, int(np.clip(round(qmin - low / scale), qmin, qmax)))

    def real_range(self, dtype: str) -> tuple[float, float]:
        qmin, qmax = INTEGER_RANGES[dtype]
        return self.scale * (qmin - self.zero_point), self.scale * (qmax - self.zero_point)


class TfliteGraph:
    """Subgraph 0 of a TFLite model (SR networks have one), with op names resolved."""

    def __init__(self, model: Any) -> None:
        self.model = model
        if len(model.subgraphs) != 1:
            raise SrExportError(f"the TFLite model has {len(model.subgraphs)} subgraphs; an SR network has one")
        self.subgraph = model.subgraphs[0]

    @classmethod
    def from_bytes(cls, flatbuffer: bytes) -> TfliteGraph:
        from ai_edge_litert.tools import flatbuffer_utils

        return cls(flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer)))

    def to_bytes(self) -> bytes:
        from ai_edge_litert.tools import flatbuffer_utils

        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))

    # --- reading -------------------------------------------------------------

    @property
    def ops(self) -> list[Any]:
        return list(self.subgraph.operators)

    def op_name(self, op: Any) -> str:
        from ai_edge_litert.tools import flatbuffer_utils

        return str(flatbuffer_utils.opcode_to_name(self.model, op.opcodeIndex))

    def tensor(self, index: int) -> Any:
        return self.subgraph.tensors[index]

    def tensor_name(self, index: int) -> str:
        name = self.tensor(index).name
        return name.decode() if isinstance(name, bytes) else str(name)

    def dtype(self, index: int) -> str:
        code = self.tensor(index).type
        return TYPE_NAMES.get(code, f"type{code}")

    def quantization(self, index: int) -> Quantization | None:
        params = self.tensor(index).quantization
        if params is None or params.scale is None or len(params.scale) != 1:
            return None
        zero_points = params.zeroPoint if params.zeroPoint is not None and len(params.zeroPoint) else [0]
        return Quantization(float(params.scale[0]), int(zero_points[0]))

    @property
    def input_index(self) -> int:
        return int(self.subgraph.inputs[0])

    @property
    def output_index(self) -> int:
        return int(self.subgraph.outputs[0])

    def producer(self, tensor: int) -> Any | None:
        for op in self.subgraph.operators:
            if tensor in op.outputs:
                return op
        return None

    def consumers(self, tensor: int) -> list[Any]:
        return [op for op in self.subgraph.operators if tensor in op.inputs]

    def is_constant(self, tensor: int) -> bool:
        buffer = self.tensor(tensor).buffer
        data = self.model.buffers[buffer].data if 0 < buffer < len(self.model.buffers) else None
        return data is not None and len(data) > 0

    def shape(self, tensor: int) -> tuple[int, ...] | None:
        """The tensor's static shape; None where the file records none."""
        shape = self.tensor(tensor).shape
        return None if shape is None else tuple(int(d) for d in shape)

    def activation_tensors(self) -> list[int]:
        """Float tensors computed at run time (graph input and op outputs): what calibration measures."""
        found = [self.input_index] + [t for op in self.subgraph.operators for t in op.outputs if t >= 0]
        return [t for t in dict.fromkeys(found) if self.dtype(t) == "float32" and not self.is_constant(t)]

    def output_name(self, op: Any) -> str:
        """The name ai-edge-quantizer addresses an op by: its first output tensor's."""
        return self.tensor_name(op.outputs[0])

    def tensors_of(self, op_names: Iterable[str]) -> list[str]:
        """Names of the run-time tensors the ops named (by output) read or write."""
        wanted = set(op_names)
        found: dict[str, None] = {}
        for op in self.subgraph.operators:
            if self.output_name(op) in wanted:
                for index in [*op.inputs, *op.outputs]:
                    if index >= 0 and not self.is_constant(index):
                        found[self.tensor_name(index)] = None
        return list(found)

    def output_chain(self) -> list[int]:
        """The graph output and the tensors that reach it through pass-through ops only (same values, moved)."""
        chain = [self.output_index]
        op = self.producer(self.output_index)
        while op is not None and self.op_name(op) in PASS_THROUGH_OPS:
            source = op.inputs[0]
            chain.append(source)
            op = self.producer(source)
        return chain

    def op_precisions(self) -> dict[str, list[str]]:
        """Activation type -> names of the compute ops (not QUANTIZE/DEQUANTIZE) that produce it."""
        found: dict[str, list[str]] = {}
        for op in self.subgraph.operators:
            name = self.op_name(op)
            if name in CONVERSION_OPS:
                continue
            found.setdefault(self.dtype(op.outputs[0]), []).append(name)
        return found

    # --- SR-aware layers (the rules: sr_export.quantize.sr_layers) ----------

    def dataflow(self) -> Dataflow:
        """The SR rules' view: tensors by index, ops named by their first output, the one input and output.

        Only subgraph input 0 and output 0 are ends (an SR network has one of
        each); the shapes are those of the op outputs the file records.
        """
        ops = tuple(
            Op(name=self.output_name(op), type=self.op_name(op), kind=TFLITE_KINDS.get(self.op_name(op), "other"),
               inputs=_indices(op.inputs), outputs=_indices(op.outputs))
            for op in self.subgraph.operators
        )
        read = {t for op in ops for t in op.inputs if t >= 0}
        written = {t for op in ops for t in op.outputs}
        shapes = {t: shape for t in written if (shape := self.shape(t)) is not None}
        return Dataflow(ops=ops, inputs=(self.input_index,), outputs=(self.output_index,),
                        constants=frozenset(t for t in read if self.is_constant(t)), shapes=shapes)

    def first_convs(self) -> list[Any]:
        """Convs reached from the graph input through no other conv."""
        return self._ops_at(sr_layers.first_convs(self.dataflow()))

    def tail_ops(self) -> list[Any]:
        """From the last conv(s) to the output: last conv, pixel shuffle, trailing adds."""
        return self._ops_at(sr_layers.tail_ops(self.dataflow(), by_name=TFLITE_CONVENTIONS.tail_by_name))

    def shallow_readers(self) -> list[Any]:
        """Ops that read the first convs' output directly (rounding it feeds noise to the whole body)."""
        return self._ops_at(sr_layers.shallow_readers(self.dataflow()))

    def global_residual_adds(self) -> list[Any]:
        """The latest ADD that joins the shallow features with the body's output."""
        return self._ops_at(sr_layers.global_residual_adds(self.dataflow()))

    def global_statistic_ops(self) -> list[Any]:
        """Ops that compute per-channel statistics of a whole feature map (channel attention after pooling).

        See :func:`sr_export.quantize.sr_layers.statistic_ops` (IMDN's
        contrast attention in int8: ~6 dB of output PSNR).
        """
        return self._ops_at(sr_layers.statistic_ops(self.dataflow()))

    def sr_sensitive_ops(self) -> dict[str, str]:
        """Op output name -> why it is SR-sensitive (what the SR-aware schemes keep at higher precision)."""
        return sr_layers.sr_sensitive(self.dataflow(), TFLITE_CONVENTIONS)

    def _ops_at(self, positions: Iterable[int]) -> list[Any]:
        operators = self.subgraph.operators
        return [operators[position] for position in positions]


def _indices(tensors: Any) -> tuple[int, ...]:
    """Tensor indices as ints (the object API holds numpy arrays; -1 marks an absent optional input)."""
    return () if tensors is None else tuple(int(t) for t in tensors)
