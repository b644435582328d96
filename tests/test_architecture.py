"""The package's shape: imports point down the pipeline, never up, and never in a circle.

The import graph is read from the source (every ``import`` statement, at module
level, inside functions and under ``TYPE_CHECKING``), so a lazy import that
reaches up a layer counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sr_export"

# The pipeline, bottom to top. A module may import from its own layer or any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("data",),
    ("models",),
    ("export",),
    ("rewrites", "quantize"),
    ("runtimes",),
    ("targets",),
    ("checks",),
    ("bench",),
    ("api",),
    ("cli",),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The sr_export modules ``path`` imports (``from x import y`` imports ``x.y`` when that is a module, else ``x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            names = submodules if len(submodules) == len(node.names) else [base, *submodules]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("sr_export") and name != me:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {name: imported_modules(path, known) for name, path in files.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__init__":
        return 0  # sr_export/__init__.py holds the version only
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_one_above_it() -> None:
    upward = [f"{source} -> {target}" for source, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer_of(target) > layer_of(source)]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_graph_reader_sees_lazy_imports_and_cycles() -> None:
    graph = {"sr_export.a": {"sr_export.b"}, "sr_export.b": {"sr_export.c"}, "sr_export.c": {"sr_export.a"},
             "sr_export.d": set()}
    assert cycles(graph) == [["sr_export.a", "sr_export.b", "sr_export.c"]]
    lazy = import_graph()["sr_export.runtimes.open"]
    assert "sr_export.runtimes.tiling" in lazy  # imported inside a function


@pytest.mark.parametrize("module", ["sr_export.api", "sr_export.checks.parity", "sr_export.bench.evaluate",
                                    "sr_export.core.artifacts", "sr_export.runtimes.registry"])
def test_the_core_checks_and_evaluation_import_no_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", f"importing {module} imports torch"
