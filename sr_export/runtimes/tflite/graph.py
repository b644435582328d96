"""A TFLite graph through the LiteRT schema's object API: the SR-sensitive ops, and the edits INT8 needs.

Everything here works on ``ai_edge_litert.tools.flatbuffer_utils`` objects (the
schema bindings LiteRT ships), never on hand-parsed bytes:

* the SR-sensitive ops, found by structure like :mod:`sr_export.quantize.graph`
  does for ONNX (first conv, the ops reading its features, the global residual
  add, last conv + upsampler), plus the ops computing per-channel statistics
  (channel attention), so the rule holds for any model and converter naming;
* folding float islands: ai-edge-quantizer does not know LEAKY_RELU and leaves
  every LeakyReLU as DEQUANTIZE -> float LEAKY_RELU -> QUANTIZE, although the
  LiteRT kernels (and XNNPACK) run it in int8 and int16; the island becomes one
  integer op keeping the calibrated output parameters;
* the I/O ends: the graph input and output get the requested type with fixed
  pixel parameters (:meth:`TfliteGraph.set_io`), joined to the calibrated
  interior by QUANTIZE / DEQUANTIZE ops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError

CONV_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"})
# Ops that move or pad values without arithmetic (pixel shuffle is RESHAPE/TRANSPOSE/RESHAPE).
PASS_THROUGH_OPS = frozenset({"RESHAPE", "TRANSPOSE", "DEPTH_TO_SPACE", "PAD", "MIRROR_PAD", "SQUEEZE", "EXPAND_DIMS"})
CONVERSION_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
# Elementwise ops the LiteRT integer kernels run but the quantiser leaves in float.
FOLDABLE_OPS = frozenset({"LEAKY_RELU"})

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
    """Subgraph 0 of a TFLite model (SR networks have one), editable, with op names resolved."""

    def __init__(self, model: Any) -> None:
        self.model = model
        if len(model.subgraphs) != 1:
            raise SrExportError(f"the TFLite model has {len(model.subgraphs)} subgraphs; an SR network has one")
        self.subgraph = model.subgraphs[0]
        self._schema = _schema()

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

    def activation_tensors(self) -> list[int]:
        """Float tensors computed at run time (graph input and op outputs): what calibration measures."""
        found = [self.input_index] + [t for op in self.subgraph.operators for t in op.outputs if t >= 0]
        return [t for t in dict.fromkeys(found) if self.dtype(t) == "float32" and not self.is_constant(t)]

    def output_name(self, op: Any) -> str:
        """The name ai-edge-quantizer addresses an op by: its first output tensor's."""
        return self.tensor_name(op.outputs[0])

    # --- SR-aware layers -----------------------------------------------------

    def first_convs(self) -> list[Any]:
        """Convs reached from the graph input through no other conv."""
        reached = {self.input_index}
        firsts = []
        for op in self.subgraph.operators:  # TFLite stores ops in execution order
            if not any(t in reached for t in op.inputs):
                continue
            if self.op_name(op) in CONV_OPS:
                firsts.append(op)
            else:
                reached.update(op.outputs)
        return firsts

    def tail_ops(self) -> list[Any]:
        """From the last conv(s) to the output: last conv, pixel shuffle, trailing adds."""
        tail: list[Any] = []
        stack = [self.producer(self.output_index)]
        while stack:
            op = stack.pop()
            if op is None or any(op is seen for seen in tail):
                continue
            tail.append(op)
            if self.op_name(op) in CONV_OPS:
                continue  # the last conv is in; what feeds it is the body
            stack.extend(self.producer(t) for t in op.inputs if t >= 0 and not self.is_constant(t))
        return [op for op in self.subgraph.operators if any(op is t for t in tail)]

    def shallow_readers(self) -> list[Any]:
        """Ops that read the first convs' output directly (rounding it feeds noise to the whole body)."""
        shallow = {t for op in self.first_convs() for t in op.outputs}
        return [op for op in self.subgraph.operators if any(t in shallow for t in op.inputs)]

    def global_residual_adds(self) -> list[Any]:
        """The latest ADD that joins the shallow features with the body's output."""
        shallow = {t for op in self.first_convs() for t in op.outputs}
        convs_seen, last = 0, None
        for op in self.subgraph.operators:
            name = self.op_name(op)
            if name in PASS_THROUGH_OPS and any(t in shallow for t in op.inputs):
                shallow.update(op.outputs)
            elif name in CONV_OPS:
                convs_seen += 1
            elif name == "ADD" and any(t in shallow for t in op.inputs) and convs_seen > 2:
                last = op
        return [last] if last is not None else []

    def global_statistic_ops(self) -> list[Any]:
        """Ops that compute per-channel statistics of a whole feature map (channel attention after pooling).

        Their outputs have one value per channel; the attention they drive
        rescales whole feature maps, so int8 steps there shift entire
        channels (IMDN's contrast attention: ~6 dB of output PSNR), while
        they cost next to nothing in float.
        """
        found = []
        for op in self.subgraph.operators:
            shape = [int(d) for d in self.tensor(op.outputs[0]).shape]
            if shape and int(np.prod(shape)) == max(shape) and self.op_name(op) not in CONVERSION_OPS:
                found.append(op)
        return found

    def sr_sensitive_ops(self) -> dict[str, str]:
        """Op output name -> why it is SR-sensitive (what the SR-aware schemes keep at higher precision)."""
        reasons: dict[str, str] = {}
        for op in self.first_convs():
            reasons[self.output_name(op)] = "first conv (sees raw pixels)"
        for op in self.shallow_readers():
            reasons.setdefault(self.output_name(op), "reads the shallow features")
        for op in self.global_residual_adds():
            reasons.setdefault(self.output_name(op), "global residual add")
        for op in self.tail_ops():
            name = self.op_name(op)
            what = "last conv" if name in CONV_OPS else "upsampler / output"
            reasons.setdefault(self.output_name(op), f"{what} ({name})")
        for op in self.global_statistic_ops():
            reasons.setdefault(self.output_name(op), f"per-channel statistic ({self.op_name(op)})")
        return reasons

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

    # --- precision summary ---------------------------------------------------

    def op_precisions(self) -> dict[str, list[str]]:
        """Activation type -> names of the compute ops (not QUANTIZE/DEQUANTIZE) that produce it."""
        found: dict[str, list[str]] = {}
        for op in self.subgraph.operators:
            name = self.op_name(op)
            if name in CONVERSION_OPS:
                continue
            found.setdefault(self.dtype(op.outputs[0]), []).append(name)
        return found

    # --- edits -----------------------------------------------------------------

    def fold_float_islands(self, kinds: Iterable[str] = FOLDABLE_OPS) -> int:
        """DEQUANTIZE -> float op -> QUANTIZE(s) becomes one integer op; returns how many were folded.

        The folded op reads the integer tensor the DEQUANTIZE read and writes,
        in the same type, the QUANTIZE output of that type (so it keeps its
        calibrated parameters). QUANTIZE ops to the other type (int8 <-> int16
        boundaries of the SR-aware scheme) stay, now requantising its output.
        """
        kinds = set(kinds)
        removed: list[Any] = []
        folded = 0
        for op in self.ops:
            if self.op_name(op) not in kinds:
                continue
            dequantize = self.producer(op.inputs[0])
            users = self.consumers(op.outputs[0])
            if dequantize is None or self.op_name(dequantize) != "DEQUANTIZE" or op.outputs[0] == self.output_index:
                continue
            if not users or any(self.op_name(user) != "QUANTIZE" for user in users):
                continue
            float_in, integer_in = op.inputs[0], dequantize.inputs[0]
            dtype = self.dtype(integer_in)
            same = [user for user in users if self.dtype(user.outputs[0]) == dtype]
            output = same[0].outputs[0] if same else self._covering_tensor([u.outputs[0] for u in users], dtype)
            op.inputs = [integer_in, *list(op.inputs[1:])]
            op.outputs = [output]
            for user in users:
                if same and user is same[0]:
                    removed.append(user)
                else:
                    user.inputs = [output]
            if not self.consumers(float_in):
                removed.append(dequantize)
            folded += 1
        self.subgraph.operators = [op for op in self.subgraph.operators if not any(op is r for r in removed)]
        self.drop_unused_tensors()
        return folded

    def _covering_tensor(self, tensors: list[int], dtype: str) -> int:
        """A new ``dtype`` tensor shaped like ``tensors[0]`` whose grid covers all their real ranges."""
        ranges = []
        for index in tensors:
            params = self.quantization(index)
            assert params is not None
            ranges.append(params.real_range(self.dtype(index)))
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        return self._new_tensor(tensors[0], dtype, Quantization.covering(dtype, low, high))

    def set_io(self, dtype: str, data_range: float) -> None:
        """Give the graph input and output ``dtype`` ("float32", "int8" or "uint8").

        Integer I/O carries pixels: [0, data_range] spread over the whole type
        (uint8: scale data_range/255, zero point 0, i.e. raw 0..255 pixel
        values; int8: the same scale, zero point -128). Inside, the calibrated
        tensors stay as the quantiser made them; QUANTIZE ops join the two where
        their types or parameters differ (two where LiteRT's kernel has no
        direct path), and a DEQUANTIZE gives float output.
        """
        if dtype not in ("float32", "int8", "uint8"):
            raise SrExportError(f"TFLite I/O type '{dtype}' is not one of float32, int8, uint8")
        wanted = None if dtype == "float32" else Quantization.for_range(dtype, data_range)
        self._set_input(self._interior_input(), dtype, wanted)
        self._set_output(self._interior_output(), dtype, wanted)
        self.drop_unused_tensors()

    def _interior_input(self) -> int:
        """The tensor the body reads: the graph input itself, or the output of the QUANTIZE that alone reads it."""
        index = self.input_index
        users = self.consumers(index)
        if self.dtype(index) == "float32" and len(users) == 1 and self.op_name(users[0]) == "QUANTIZE":
            self._drop_op(users[0])
            return int(users[0].outputs[0])
        return index

    def _interior_output(self) -> int:
        """The tensor the body writes: the graph output itself, or the input of the DEQUANTIZE that writes it."""
        index = self.output_index
        op = self.producer(index)
        if op is not None and self.op_name(op) == "DEQUANTIZE":
            self._drop_op(op)
            return int(op.inputs[0])
        return index

    def _set_input(self, interior: int, dtype: str, wanted: Quantization | None) -> None:
        original = self.input_index
        if self._matches(interior, dtype, wanted):
            self._replace_end(original, interior, is_input=True)
            return
        outer = self._new_tensor(interior, dtype, wanted)
        chain = [outer, *self._steps(interior, outer, dtype, self.dtype(interior)), interior]
        for position, (source, target) in enumerate(zip(chain, chain[1:])):
            self._insert_op(position, self._conversion(source, target), source, target)
        self._replace_end(original, outer, is_input=True)

    def _set_output(self, interior: int, dtype: str, wanted: Quantization | None) -> None:
        original = self.output_index
        if self._matches(interior, dtype, wanted):
            self._replace_end(original, interior, is_input=False)
            return
        outer = self._new_tensor(interior, dtype, wanted)
        chain = [interior, *self._steps(interior, outer, self.dtype(interior), dtype), outer]
        for source, target in zip(chain, chain[1:]):
            self._insert_op(len(self.subgraph.operators), self._conversion(source, target), source, target)
        self._replace_end(original, outer, is_input=False)

    def _conversion(self, source: int, target: int) -> str:
        # QUANTIZE also requantises integer -> integer; only integer -> float is a DEQUANTIZE.
        return "DEQUANTIZE" if self.dtype(target) == "float32" else "QUANTIZE"

    def _steps(self, interior: int, outer: int, source: str, target: str) -> list[int]:
        """An int8 tensor between uint8 and int16: LiteRT's QUANTIZE kernel has no direct path.

        It keeps the uint8 tensor's scale with the zero point moved by 128, so
        the uint8 <-> int8 hop is exact.
        """
        if {source, target} != {"uint8", "int16"}:
            return []
        params = self.quantization(outer)
        assert params is not None
        return [self._new_tensor(interior, "int8", Quantization(params.scale, params.zero_point - 128))]

    def _matches(self, index: int, dtype: str, wanted: Quantization | None) -> bool:
        if self.dtype(index) != dtype:
            return False
        have = self.quantization(index)
        if wanted is None or have is None:
            return wanted is None and have is None
        return have.zero_point == wanted.zero_point and bool(np.isclose(have.scale, wanted.scale, rtol=1e-6))

    def _replace_end(self, old: int, new: int, *, is_input: bool) -> None:
        """Make ``new`` the graph input (or output) in the subgraph and every signature, under ``old``'s name."""
        if old == new:
            return
        if is_input:
            self.subgraph.inputs = [new if t == old else t for t in self.subgraph.inputs]
        else:
            self.subgraph.outputs = [new if t == old else t for t in self.subgraph.outputs]
        for signature in self.model.signatureDefs or []:
            for entry in (signature.inputs if is_input else signature.outputs) or []:
                if entry.tensorIndex == old:
                    entry.tensorIndex = new
        # Users and tools look the I/O tensors up by the converter's names; the interior gets a telling one.
        name = self.tensor_name(old)
        self.tensor(old).name = f"{name}_{self.dtype(old)}"
        self.tensor(new).name = name

    def _new_tensor(self, like: int, dtype: str, params: Quantization | None) -> int:
        template = self.tensor(like)
        tensor = self._schema.TensorT()
        tensor.shape = list(template.shape)
        if template.shapeSignature is not None:
            tensor.shapeSignature = list(template.shapeSignature)
        tensor.type = TENSOR_TYPES[dtype]
        tensor.buffer = 0  # the empty buffer: computed at run time
        tensor.name = f"{self.tensor_name(like)}_{dtype}"
        self.subgraph.tensors.append(tensor)
        index = len(self.subgraph.tensors) - 1
        if params is not None:
            quantization = self._schema.QuantizationParametersT()
            quantization.scale = [float(params.scale)]
            quantization.zeroPoint = [int(params.zero_point)]
            quantization.quantizedDimension = 0
            tensor.quantization = quantization
        return index

    def _insert_op(self, position: int, kind: str, source: int, target: int) -> None:
        op = self._schema.OperatorT()
        op.opcodeIndex = self._opcode(kind)
        op.inputs, op.outputs = [source], [target]
        self.subgraph.operators.insert(position, op)

    def _drop_op(self, op: Any) -> None:
        self.subgraph.operators = [o for o in self.subgraph.operators if o is not op]

    def _opcode(self, kind: str) -> int:
        from ai_edge_litert.tools import flatbuffer_utils

        code = getattr(self._schema.BuiltinOperator, kind)
        for index, opcode in enumerate(self.model.operatorCodes):
            if flatbuffer_utils.get_builtin_code_from_operator_code(opcode) == code:
                return index
        opcode = self._schema.OperatorCodeT()
        opcode.builtinCode = code
        opcode.deprecatedBuiltinCode = min(code, 127)  # the schema's placeholder for codes above 127
        opcode.version = 1
        self.model.operatorCodes.append(opcode)
        return len(self.model.operatorCodes) - 1

    def drop_unused_tensors(self) -> None:
        """Remove tensors no op, graph end or signature refers to (what the edits left behind), renumbering the rest."""
        used = set(self.subgraph.inputs) | set(self.subgraph.outputs)
        for op in self.subgraph.operators:
            used.update(t for t in op.inputs if t >= 0)
            used.update(op.outputs)
        keep = [i for i in range(len(self.subgraph.tensors)) if i in used]
        if len(keep) == len(self.subgraph.tensors):
            return
        new_index = {old: new for new, old in enumerate(keep)}
        self.subgraph.tensors = [self.subgraph.tensors[i] for i in keep]
        self.subgraph.inputs = [new_index[t] for t in self.subgraph.inputs]
        self.subgraph.outputs = [new_index[t] for t in self.subgraph.outputs]
        for op in self.subgraph.operators:
            op.inputs = [new_index[t] if t >= 0 else t for t in op.inputs]
            op.outputs = [new_index[t] for t in op.outputs]
            if op.intermediates is not None:
                op.intermediates = [new_index[t] for t in op.intermediates if t in new_index]
        for signature in self.model.signatureDefs or []:
            for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
                entry.tensorIndex = new_index[entry.tensorIndex]


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated
