"""PyTorch to an ExecuTorch program: ``torch.export`` (bounded dynamic H and W, or one fixed size), then
``to_edge_transform_and_lower`` with the XNNPACK partitioner, then the ``.pte`` bytes.

What XNNPACK takes runs in its delegate; anything else stays on ExecuTorch's
portable kernels, much slower on a CPU. :class:`OpCounts` records both, so a
build never slows down silently: the build report and the metadata list the
portable ops, and a warning names them.
"""

from __future__ import annotations

import contextlib
import operator
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sr_export.core.errors import MissingDependencyError, StageFailed, first_line
from sr_export.core.sizes import Size

if TYPE_CHECKING:
    import torch

# Graph bookkeeping, not kernels: tuple indexing and symbolic size arithmetic of a dynamic program.
_BOOKKEEPING = ("getitem", "sym_size", "sym_", "mul", "add", "floordiv", "sub", "truediv", "mod")


@dataclass(frozen=True)
class OpCounts:
    """Ops the XNNPACK delegate runs and ops left on portable kernels (by op name)."""

    delegated: int
    delegates: int  # how many delegate blobs (partitions) the program calls
    portable: Mapping[str, int] = field(default_factory=dict)

    @property
    def portable_total(self) -> int:
        return sum(self.portable.values())

    def to_dict(self) -> dict[str, Any]:
        return {"delegated": self.delegated, "delegates": self.delegates, "portable": dict(self.portable)}

    def summary(self) -> str:
        """The line the metadata and the build report carry: 'XNNPACK runs 40 ops in 21 partitions; ...'."""
        portable = ", ".join(f"{name} x{count}" for name, count in sorted(self.portable.items())) or "none"
        return f"XNNPACK runs {self.delegated} ops in {self.delegates} partition(s); portable kernels run: {portable}"

    def warning(self) -> str | None:
        """One line naming the ops XNNPACK did not take (None when it took them all)."""
        if not self.portable:
            return None
        named = ", ".join(f"{name} x{count}" for name, count in sorted(self.portable.items()))
        return (f"{self.portable_total} op(s) stay on ExecuTorch's portable kernels, not XNNPACK (slower): {named}")


@dataclass(frozen=True)
class LoweredProgram:
    buffer: bytes
    ops: OpCounts
    dynamic: bool  # False: one fixed LR size


def import_executorch() -> Any:
    """The ``executorch`` package, or a one-line error naming the extra."""
    from sr_export.runtimes.import_logs import drop_harmless_import_logs

    drop_harmless_import_logs()  # only the lines known to be harmless: the loggers' other lines still show
    try:
        import executorch.exir as exir
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("executorch", "executorch", purpose="ExecuTorch programs") from exc
    return exir


def export_program(module: torch.nn.Module, sample: torch.Tensor, bounds: tuple[int, int] | None) -> Any:
    """``torch.export`` of ``module``: height and width dynamic within ``bounds`` (None: fixed at the sample's)."""
    import torch
    from torch.export import Dim, export

    dynamic_shapes = None
    if bounds is not None:
        low, high = bounds
        dynamic_shapes = ({2: Dim("height", min=low, max=high), 3: Dim("width", min=low, max=high)},)
    if isinstance(module, torch.nn.Module) and not isinstance(module, torch.fx.GraphModule):
        module = module.eval()  # a PT2E graph module (INT8) refuses train() / eval(); it is in eval mode already
    try:
        return export(module, (sample,), dynamic_shapes=dynamic_shapes)
    except Exception as exc:  # torch.export raises many types (UserError, GuardOnDataDependent...); one meaning
        size = "x".join(str(d) for d in sample.shape[2:])
        hint = ("; its shape math refuses dynamic sizes: give fixed sizes (--shape HxW, repeatable), which run tiled"
                if bounds is not None else f" at {size}")
        raise StageFailed("export", f"torch.export refused the model{hint} ({first_line(exc)[:300]})") from exc


def lower_to_xnnpack(exported: Any) -> tuple[Any, OpCounts]:
    """The edge program with XNNPACK's partitions lowered, and what was delegated."""
    import_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    except Exception as exc:
        raise StageFailed("convert", f"lowering to XNNPACK failed: {first_line(exc)[:300]}") from exc
    return edge, count_ops(edge.exported_program())


def to_buffer(edge: Any) -> bytes:
    try:
        return bytes(edge.to_executorch().buffer)
    except Exception as exc:
        raise StageFailed("convert", f"serialising the ExecuTorch program failed: {first_line(exc)[:300]}") from exc


def lower_module(module: torch.nn.Module, sample: torch.Tensor, bounds: tuple[int, int] | None) -> LoweredProgram:
    """``module`` as ``.pte`` bytes: exported (dynamic within ``bounds``, or fixed), lowered, serialised."""
    with quiet_deprecations():
        edge, ops = lower_to_xnnpack(export_program(module, sample, bounds))
        return LoweredProgram(to_buffer(edge), ops, bounds is not None)


@contextlib.contextmanager
def quiet_deprecations() -> Iterator[None]:
    """ExecuTorch's and torch's own deprecation notices (pytree, torchao) say nothing to a user of sr-export."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def count_ops(program: Any) -> OpCounts:
    """Delegated ops (inside XNNPACK's lowered modules) and portable ones (left in the top graph), by name."""
    graph_module = program.graph_module
    delegated, delegates = 0, 0
    portable: Counter[str] = Counter()
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = op_name(node.target)
        if name == "executorch_call_delegate":
            delegates += 1
            lowered = getattr(graph_module, node.args[0].target)
            delegated += sum(1 for inner in lowered.original_module.graph.nodes
                             if inner.op == "call_function" and not _bookkeeping(op_name(inner.target)))
        elif not _bookkeeping(name):
            portable[name] += 1
    return OpCounts(delegated, delegates, dict(portable))


def op_name(target: Any) -> str:
    """'aten.split_with_sizes_copy' for an edge op overload, the function's name otherwise."""
    if target in (operator.getitem,):
        return "getitem"
    name = getattr(target, "__name__", None) or str(target)
    text = str(target)
    if text.startswith("<EdgeOpOverload: "):
        text = text[len("<EdgeOpOverload: "):].split(">")[0]
        name = text.rsplit(".", 1)[0] if text.endswith(".default") else text
    elif text.startswith("aten."):
        name = text.rsplit(".", 1)[0]
    return name


def _bookkeeping(name: str) -> bool:
    short = name.split(".")[-1]
    return name.startswith("aten.sym_size") or short in _BOOKKEEPING or name.startswith("sym_")


def sample_input(channels: int, size: Size, data_range: float) -> torch.Tensor:
    from sr_export.models.loader import example_input

    return example_input((1, channels, *size), data_range)
