"""A conv whose output is split along channels as one conv per chunk, each with its slice of the weights.

IMDN's distillation blocks (and IDN's enhancement units) run ``conv -> activation
-> torch.split(..., dim=1)``. A split is a copy that some runtimes cannot
delegate: ExecuTorch's XNNPACK partitioner has no split kernel, so every split
runs on portable kernels and cuts the block into separate XNNPACK partitions,
each boundary a layout conversion. Computing each chunk with its own conv
(output channels ``start:end`` of the weights and bias) gives the same values
with no split at all, so the whole block stays in one partition.

The pattern is looked for in the ``forward`` of every submodule (the root's
own ``forward`` is left as it is: it cannot be swapped in place). A submodule
with a site is replaced by an FX graph module that calls its children exactly
as before, except that the split conv is now a :class:`ConvChunks` of the same
name, so module paths (``IMDB1.c1.0``) still start with the original one.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn

# Elementwise ops that may sit between the conv and the split: applied per chunk, they give the same values.
ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Hardswish, nn.Hardsigmoid,
    nn.ELU, nn.Identity,
)
ELEMENTWISE_FUNCTIONS: frozenset[Callable[..., object]] = frozenset({
    torch.relu, torch.sigmoid, torch.tanh, nn.functional.relu, nn.functional.leaky_relu, nn.functional.silu,
    nn.functional.gelu, nn.functional.hardswish, nn.functional.relu6, nn.functional.elu,
})
ELEMENTWISE_METHODS: frozenset[str] = frozenset({"relu", "sigmoid", "tanh"})


class ConvChunks(nn.Module):
    """The convs that replace one split conv: child ``str(i)`` computes chunk ``i`` (only the chunks used)."""

    def __init__(self, conv: nn.Conv2d, sizes: list[int], used: set[int]) -> None:
        super().__init__()
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        for index in sorted(used):
            self.add_module(str(index), sliced(conv, starts[index], starts[index] + sizes[index]))


def sliced(conv: nn.Conv2d, start: int, end: int) -> nn.Conv2d:
    """A conv computing output channels ``start:end`` of ``conv``, with copies of those weights."""
    part = nn.Conv2d(
        conv.in_channels, end - start, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=1, bias=conv.bias is not None, padding_mode=conv.padding_mode,
        device=conv.weight.device, dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        part.weight.copy_(conv.weight[start:end])
        if conv.bias is not None:
            part.bias.copy_(conv.bias[start:end])
    return part.train(conv.training)


@dataclass(frozen=True)
class Site:
    conv: fx.Node  # the call of the split conv
    chain: tuple[fx.Node, ...]  # elementwise ops from the conv to the split, in order
    split: fx.Node
    sizes: list[int]  # channels of each chunk
    chunks: dict[int, fx.Node]  # chunk index -> the getitem node that takes it
    helpers: tuple[fx.Node, ...]  # size arithmetic only the split reads (IDN's ``h.size(1) - 16``), in graph order


class _OwnForward(fx.Tracer):
    """Traces one module's own ``forward``: every child stays a single call, untouched."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return True


def apply(module: nn.Module) -> int:
    """Rewrite every conv -> elementwise ops -> channel split inside ``module``'s submodules; return how many."""
    count = 0
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        count += apply(child)  # children first: a rewritten graph module must hold their rewritten forms
        if _library_module(child) or child._forward_hooks or child._forward_pre_hooks:  # hooks would be lost
            continue
        rewritten, sites = rewrite_forward(child)
        if sites:
            module._modules[name] = rewritten
            count += sites
    return count


def rewrite_forward(module: nn.Module) -> tuple[nn.Module, int]:
    """``module`` as a graph module with its split convs rewritten, or itself (and 0) when it has none."""
    try:
        graph = _OwnForward().trace(module)
    except Exception:  # data-dependent control flow and the like: FX cannot see this forward, so it stays as it is
        return module, 0
    traced = fx.GraphModule(module, graph, class_name=type(module).__name__)
    sites = [site for node in list(graph.nodes) if (site := find_site(traced, node)) is not None]
    for site in sites:
        replace(traced, site)
    if not sites:
        return module, 0
    graph.lint()
    traced.recompile()
    return traced.train(module.training), len(sites)


def find_site(traced: fx.GraphModule, split: fx.Node) -> Site | None:
    """The rewritable site ending at ``split`` (a channel split of a conv's output), or None."""
    if not _channel_split(split):
        return None
    helpers = size_helpers(split)
    if any(set(node.users) - {*helpers, split} for node in helpers):
        return None  # the sizes are used elsewhere too
    chain: list[fx.Node] = []
    source, readers = split.args[0], {split, *helpers}  # what the split tensor may feed: the split, its sizes
    while isinstance(source, fx.Node) and set(source.users) <= readers and _elementwise(traced, source):
        chain.insert(0, source)
        source, readers = source.args[0], {source}
    if not (isinstance(source, fx.Node) and set(source.users) <= readers and _plain_conv(traced, source)):
        return None
    calls = [n for n in traced.graph.nodes if n.op == "call_module" and n.target == source.target]
    taken = [user for user in split.users
             if user.op == "call_function" and user.target is operator.getitem and isinstance(user.args[1], int)]
    if len(calls) != 1 or len(taken) != len(split.users):  # the conv called twice, or the chunks used as a tuple
        return None
    chunks = {user.args[1]: user for user in taken if user.users}  # unpacking takes chunks nobody reads
    sizes = chunk_sizes(split, traced.get_submodule(str(source.target)).out_channels)
    if sizes is None or any(not 0 <= index < len(sizes) for index in chunks):
        return None
    order = {node: position for position, node in enumerate(traced.graph.nodes)}
    return Site(source, tuple(chain), split, sizes, chunks, tuple(sorted(helpers, key=order.__getitem__)))


def size_helpers(split: fx.Node) -> set[fx.Node]:
    """The ops computing the split's sizes from the tensor it splits (none when the sizes are constants)."""
    sections = split.args[1] if len(split.args) > 1 else ()
    pending = [size for size in sections if isinstance(size, fx.Node)] if isinstance(sections, (list, tuple)) else []
    helpers: set[fx.Node] = set()
    while pending:
        node = pending.pop()
        if node is not split.args[0] and node not in helpers and node.op in ("call_function", "call_method"):
            helpers.add(node)
            pending.extend(node.all_input_nodes)
    return helpers


def chunk_sizes(split: fx.Node, channels: int) -> list[int] | None:
    """Channels per chunk, computed the way ``torch.split`` / ``torch.chunk`` do (None: not a static split)."""
    keywords = ("split_size_or_sections", "split_size", "chunks")
    how = split.args[1] if len(split.args) > 1 else next((split.kwargs[k] for k in keywords if k in split.kwargs), None)
    if isinstance(how, (list, tuple)):
        known = [size for size in how if isinstance(size, int)]
        if len(known) == len(how):
            return list(how) if sum(how) == channels else None
        rest = channels - sum(known)
        if len(known) == len(how) - 1 and rest >= 0:  # IDN's (16, h.size(1) - 16): sections sum to the channels
            return [size if isinstance(size, int) else rest for size in how]
        return None
    if not isinstance(how, int) or how <= 0:
        return None
    channel_ids = torch.arange(channels)
    parts = channel_ids.chunk(how) if _is(split, torch.chunk, "chunk") else channel_ids.split(how)
    return [len(part) for part in parts]


def replace(traced: fx.GraphModule, site: Site) -> None:
    """One conv (and copy of the elementwise chain) per used chunk, in place of the conv, chain and split."""
    target = str(site.conv.target)
    traced.set_submodule(target, ConvChunks(traced.get_submodule(target), site.sizes, set(site.chunks)))
    graph = traced.graph
    for unread in set(site.split.users) - set(site.chunks.values()):
        graph.erase_node(unread)
    for index, chunk in site.chunks.items():
        with graph.inserting_before(site.split):
            value = graph.call_module(f"{target}.{index}", site.conv.args, site.conv.kwargs)
            for op in site.chain:
                previous = value
                value = graph.node_copy(op, lambda arg, op=op, previous=previous: previous if arg is op.args[0] else arg)
        chunk.replace_all_uses_with(value)
        graph.erase_node(chunk)
    for node in (site.split, *reversed(site.helpers), *reversed(site.chain), site.conv):
        graph.erase_node(node)


def _channel_split(node: fx.Node) -> bool:
    if not (_is(node, torch.split, "split") or _is(node, torch.chunk, "chunk")) or not node.args:
        return False
    dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    return dim in (1, -3)  # channels of the batched NCHW tensors SR models take


def _is(node: fx.Node, function: Callable[..., object], method: str) -> bool:
    return (node.op == "call_function" and node.target is function) or (
        node.op == "call_method" and node.target == method)


def _elementwise(traced: fx.GraphModule, node: fx.Node) -> bool:
    if not (node.args and node.args[0] in node.all_input_nodes and len(node.all_input_nodes) == 1):
        return False  # one tensor in, as the first argument: the chunk can take its place
    if node.op == "call_module":
        return type(traced.get_submodule(str(node.target))) in ELEMENTWISE_MODULES
    if node.op == "call_method":
        return node.target in ELEMENTWISE_METHODS
    return node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS


def _plain_conv(traced: fx.GraphModule, node: fx.Node) -> bool:
    """A call of an ``nn.Conv2d`` itself (not a subclass, which may compute otherwise) without groups."""
    if node.op != "call_module":
        return False
    conv = traced.get_submodule(str(node.target))
    return type(conv) is nn.Conv2d and conv.groups == 1


def _library_module(module: nn.Module) -> bool:
    """PyTorch's own layers: their forward holds no model code to rewrite."""
    return type(module).__module__.startswith("torch.")
