"""The one way sr-export opens a TFLite file in-process: LiteRT's interpreter (or tflite_runtime's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sr_export.core.errors import MissingDependencyError
from sr_export.runtimes.tflite import device
from sr_export.runtimes.tflite.quiet import quiet_litert


def interpreter_module() -> Any:
    """LiteRT's interpreter module, or tflite_runtime's on boards that only have that (as the device runner picks)."""
    try:
        module, _ = device.interpreter_module()
    except ImportError as exc:
        raise MissingDependencyError("ai-edge-litert", "tflite", purpose="running TFLite models") from exc
    return module


def interpreter_class() -> Any:
    return interpreter_module().Interpreter


def open_interpreter(
    path: Path | None = None, threads: int | None = None, *, xnnpack: bool = True, content: bytes | None = None,
    preserve_all_tensors: bool = False,
) -> Any:
    """An allocated interpreter for a file (``path``) or flatbuffer (``content``); XNNPACK unless ``xnnpack`` is False."""
    module = interpreter_module()
    options: dict[str, Any] = {}
    if not xnnpack:
        options["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if preserve_all_tensors:
        options["experimental_preserve_all_tensors"] = True
    source = {"model_content": bytes(content)} if content is not None else {"model_path": str(path)}
    with quiet_litert():
        opened = module.Interpreter(**source, num_threads=threads or None, **options)
        opened.allocate_tensors()
    return opened
