"""Traced graphs kept between runs, as candidates only.

Tracing is the slow step of an export (the dynamo exporter takes 10-20 s for
E-RFDN on one thread), and the workflows people repeat (`sr-bench`, then
`history`, `compare` and `gate` against a baseline; INT8 with one recipe, then
another) trace the same module again and again.

A cached graph is never trusted: :func:`sr_export.export.onnx.export_onnx`
verifies it against the live PyTorch module at every verification size, exactly
as it verifies a fresh trace, and one that fails is dropped and traced afresh.
So the key only has to make a hit likely to be right, not prove it: it names
the exporter, its settings and the library versions, and the module by its
fingerprint (:mod:`sr_export.models.fingerprint`).

``SR_EXPORT_TRACE_CACHE=0`` turns the cache off (every export traces).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import onnx
import torch

from sr_export.core.cache import cache_root

DISABLE_ENV = "SR_EXPORT_TRACE_CACHE"


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def cache_dir() -> Path:
    return cache_root() / "traces"


def trace_key(module: torch.nn.Module, exporter: str, input_shape: tuple[int, ...], *, dynamic: bool,
              opset: int) -> str | None:
    """The key of ``module`` traced with these settings, or None for a module it cannot describe."""
    import onnxscript

    from sr_export.models.fingerprint import module_fingerprint

    fingerprint = module_fingerprint(module)
    if fingerprint is None:
        return None
    settings = ("trace-v1", fingerprint, exporter, tuple(input_shape), dynamic, opset, onnx.__version__,
                getattr(onnxscript, "__version__", ""))
    return hashlib.sha256(repr(settings).encode()).hexdigest()


def load(key: str) -> onnx.ModelProto | None:
    path = cache_dir() / f"{key}.onnx"
    if not path.is_file():
        return None
    try:
        return onnx.load_from_string(path.read_bytes())
    except Exception:  # noqa: BLE001 - a damaged entry is a miss
        discard(key)
        return None


def store(key: str, proto: onnx.ModelProto) -> None:
    """Keep ``proto`` under ``key``; a cache that cannot be written only costs the next run its time."""
    path = cache_dir() / f"{key}.onnx"
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(proto.SerializeToString())
        os.replace(tmp, path)  # whole or absent, also with two exports racing
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def discard(key: str) -> None:
    try:
        (cache_dir() / f"{key}.onnx").unlink()
    except OSError:
        pass
