"""A module's fingerprint: what a result computed from the module (a traced graph, a measured receptive
field) depends on, so that such results can be kept between runs under it.

It names sr-export's and PyTorch's versions, the module's structure (its repr), every submodule's class with
the source files that define it and its plain settings (a window size, a scale, a flag), TorchScript code, and
every tensor of the state dict, bytes included.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from pathlib import Path

import torch

_PLAIN = (bool, int, float, str, type(None))


def module_fingerprint(module: torch.nn.Module) -> str | None:
    """The fingerprint of ``module`` (hex sha256), or None for a module it cannot describe."""
    import sr_export

    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            digest.update(repr(part).encode())
            digest.update(b"\0")

    add("module-v1", sr_export.__version__, torch.__version__)
    try:
        add(repr(module))
        for name, sub in module.named_modules():
            add(name, type(sub).__module__, type(sub).__qualname__, _plain_attributes(sub))
            add(getattr(sub, "code", ""))  # TorchScript modules carry their own code
            for source in _source_files(type(sub)):
                add(source, hashlib.sha256(Path(source).read_bytes()).hexdigest())
        for name, tensor in module.state_dict().items():
            value = tensor.detach().cpu().contiguous()
            add(name, str(value.dtype), tuple(value.shape))
            digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    except (OSError, TypeError, RuntimeError, ValueError):
        return None
    return digest.hexdigest()


def _plain_attributes(module: torch.nn.Module) -> tuple[tuple[str, str], ...]:
    """A module's own settings that are not tensors or submodules."""
    items = []
    for name, value in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, _PLAIN) or (isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value)):
            items.append((name, repr(value)))
    return tuple(items)


def _source_files(cls: type) -> list[str]:
    """The files defining ``cls`` and its bases (outside torch), where there are files."""
    files = []
    for klass in inspect.getmro(cls):
        if klass.__module__.startswith(("torch", "builtins")):
            continue
        try:
            source = inspect.getsourcefile(klass)
        except TypeError:
            continue
        if source and os.path.isfile(source) and source not in files:
            files.append(source)
    return files
