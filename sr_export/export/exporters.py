"""PyTorch's two ONNX exporters behind one signature.

- ``dynamo``: ``torch.export`` (non-strict) with symbolic batch, height and
  width, then ``torch.onnx.export`` of the exported program. Sizes computed
  from ``x.shape`` stay symbolic; code that turns a size into a Python int
  (``int()``, ``math.ceil``) makes torch.export refuse, which is reported.
- ``legacy``: the TorchScript tracer with ``dynamic_axes``. It follows tensor
  size arithmetic but freezes any size that passes through Python.

Neither exporter's claim of dynamic axes is trusted: :mod:`sr_export.export.verify`
proves a graph at several sizes before it is used.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import onnx
import torch

from sr_export.core.errors import first_line
from sr_export.export.budget import BudgetSpent, ChildFailed, Say, run_within
from sr_export.models.loader import example_input

INPUT_NAME, OUTPUT_NAME = "input", "output"
EXPORTER_CHOICES = ("auto", "dynamo", "legacy")
# What --exporter tries, in order.
EXPORTER_ORDER: dict[str, tuple[str, ...]] = {
    "auto": ("dynamo", "legacy"),
    "dynamo": ("dynamo",),
    "legacy": ("legacy",),
}
DYNAMIC_INPUT_DIMS = {0: "batch", 2: "height", 3: "width"}
DYNAMIC_OUTPUT_DIMS = {0: "batch", 2: "out_height", 3: "out_width"}
# Node metadata that says where in which source file a node came from: absolute paths (a checkout's, a
# virtual environment's) and line numbers would make the same model's graph differ between machines.
SOURCE_LOCATION_KEYS = frozenset({"pkg.torch.onnx.stack_trace"})
_CHATTY_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript", "onnx_ir")


class ExportAttemptFailed(Exception):
    """One exporter could not produce a graph; ``reason`` is one line for the user."""

    def __init__(self, exporter: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{exporter}: {reason}")
        self.exporter = exporter
        self.reason = reason
        self.timed_out = timed_out


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' warnings, progress prints and logged tracebacks."""
    saved = {name: logging.getLogger(name).level for name in _CHATTY_LOGGERS}
    sink = io.StringIO()
    try:
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def export_graph(
    exporter: str,
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    *,
    dynamic: bool,
    opset: int,
    timeout: float | None = None,
    say: Say | None = None,
) -> onnx.ModelProto:
    """Trace ``module`` on a (seeded) random input of ``input_shape`` with ``exporter``.

    With a ``timeout`` (seconds) the trace runs in a child process that is
    stopped when the time is spent; ``say`` hears every second which exporter
    is working and for how long. Raises :class:`ExportAttemptFailed` with a
    one-line reason when no graph comes.
    """
    _load_exporter(exporter)  # here, once, not in every child

    def traced() -> bytes:
        with quiet():
            return _EXPORTERS[exporter](module, input_shape, dynamic, opset).SerializeToString()

    try:
        data = run_within(traced, seconds=timeout, label=f"exporting with {exporter}", explain=explain_failure,
                          say=say, child_setup=_one_thread)
    except BudgetSpent as spent:
        why = f"; {_WHY_SLOW[exporter]}" if dynamic and exporter in _WHY_SLOW else ""
        raise ExportAttemptFailed(exporter, f"stopped after {spent.seconds:g} s (--export-timeout){why}",
                                  timed_out=True) from None
    except ChildFailed as failed:
        raise ExportAttemptFailed(exporter, failed.reason) from None
    proto = onnx.load_from_string(data)
    produced = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if produced != opset:
        raise ExportAttemptFailed(exporter, f"produced opset {produced}, not the requested {opset}")
    if dynamic:
        name_dynamic_dims(proto)
    strip_source_locations(proto)
    return proto


def strip_source_locations(proto: onnx.ModelProto) -> None:
    """Drop what ties nodes to source files on this machine (stack traces, doc strings), so a graph's bytes
    depend on the model, not on where its code is installed; module names and scopes stay for viewers."""
    graphs: list[Any] = [proto.graph, *proto.functions]  # and the subgraphs of If/Loop nodes, found on the way
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            node.doc_string = ""
            kept = [p for p in node.metadata_props if p.key not in SOURCE_LOCATION_KEYS]
            if len(kept) != len(node.metadata_props):
                del node.metadata_props[:]
                node.metadata_props.extend(kept)
            graphs.extend(a.g for a in node.attribute if a.HasField("g"))
            graphs.extend(g for a in node.attribute for g in a.graphs)


# What usually makes an exporter slow on symbolic sizes, said when its time runs out.
_WHY_SLOW = {"dynamo": "torch.export's symbolic shape solver can take minutes on a model's size arithmetic"}


def _load_exporter(exporter: str) -> None:
    """Import the exporter's modules before forking, so each child starts with them loaded."""
    if exporter == "dynamo":
        import torch.export  # noqa: F401

        with contextlib.suppress(ImportError):  # torch's private layout: only a head start, never required
            import torch.onnx._internal.exporter._core  # noqa: F401


def _one_thread() -> None:
    # A forked child must not use the parent's OpenMP pool (its threads did not survive the fork).
    torch.set_num_threads(1)


def explain_failure(exc: BaseException) -> str:
    """The one line worth showing of an exporter's (often very long) error."""
    if isinstance(exc, ExportAttemptFailed):
        return exc.reason
    text = str(exc)
    if "specialized" in text and "Constraints violated" in text:
        return (
            "torch.export fixed height/width at the trace size: the model turns sizes into Python "
            "numbers (int(), math.ceil, ...), which no exporter keeps symbolic"
        )
    return first_line(exc)


def _trace_dynamo(module: torch.nn.Module, input_shape: tuple[int, ...], dynamic: bool, opset: int) -> onnx.ModelProto:
    from torch.export import Dim

    shape = list(input_shape)
    dynamic_shapes = None
    if dynamic:
        # A batch of 1 would be specialised (0/1 specialisation), so trace with 2.
        shape[0] = max(2, shape[0])
        dynamic_shapes = ({axis: Dim.DYNAMIC for axis in DYNAMIC_INPUT_DIMS},)
    example = (example_input(shape),)
    program = torch.export.export(module, example, dynamic_shapes=dynamic_shapes, strict=False)
    onnx_program = torch.onnx.export(
        program,
        example,
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        optimize=True,
        verbose=False,
    )
    return onnx_program.model_proto


def _trace_legacy(module: torch.nn.Module, input_shape: tuple[int, ...], dynamic: bool, opset: int) -> onnx.ModelProto:
    dynamic_axes = {INPUT_NAME: DYNAMIC_INPUT_DIMS, OUTPUT_NAME: DYNAMIC_OUTPUT_DIMS} if dynamic else None
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        (example_input(input_shape),),
        buffer,
        dynamo=False,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes=dynamic_axes,
        do_constant_folding=True,
    )
    return onnx.load_from_string(buffer.getvalue())


_EXPORTERS: dict[str, Callable[[torch.nn.Module, tuple[int, ...], bool, int], onnx.ModelProto]] = {
    "dynamo": _trace_dynamo,
    "legacy": _trace_legacy,
}


def name_dynamic_dims(proto: onnx.ModelProto) -> None:
    """Give the graph's symbolic input/output dimensions readable names (batch, height, ...).

    torch.export names them s0, s1, ... and the output ``4*s1``; tools and
    users read the graph's inputs, so those get the names the legacy exporter
    would give.
    """
    renames: dict[str, str] = {}
    for value, names in ((proto.graph.input[0], DYNAMIC_INPUT_DIMS), (proto.graph.output[0], DYNAMIC_OUTPUT_DIMS)):
        dims = value.type.tensor_type.shape.dim
        for axis, name in names.items():
            if axis < len(dims) and dims[axis].dim_param and dims[axis].dim_param != name:
                renames.setdefault(dims[axis].dim_param, name)
    if not renames:
        return
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
