"""Reading checkpoints and loading them strictly, with errors a person can act on."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.core.io import content_sha256, require_file

# Where training frameworks nest the weights (BasicSR: params / params_ema, ...).
# params_ema first: when both exist it is the one the authors evaluate.
NESTING_KEYS = ("params_ema", "params", "state_dict", "model", "net", "network", "generator")
_LISTED = 3  # how many key names an error message shows per category


def sha256_of(path: Path) -> str:
    return content_sha256(path)


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``constants.pkl`` / ``code/`` entry."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat ``name -> tensor`` mapping from a checkpoint file.

    Accepts a bare state dict or one nested under a training framework's key,
    and strips the ``module.`` prefix that ``DataParallel`` adds.
    """
    path = Path(path)
    require_file(path, "checkpoint")
    if is_safetensors(path):
        return _strip_data_parallel(_read_safetensors(path))
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        if "allowed global" in str(exc) or "Unsupported global" in str(exc):
            raise SrExportError(
                f"checkpoint {path} holds pickled Python objects, which are not loaded for safety; "
                "re-save it with torch.save(model.state_dict(), ...)"
            ) from exc
        raise SrExportError(
            f"cannot read checkpoint {path}: the file is corrupt or not a PyTorch checkpoint ({type(exc).__name__})"
        ) from exc
    state = _unwrap(raw)
    if not state:
        raise SrExportError(f"checkpoint {path} holds no tensors; expected a state_dict")
    return state


def _unwrap(raw: Any) -> dict[str, torch.Tensor]:
    for _ in range(3):  # e.g. {'model': {'state_dict': {...}}}
        if not isinstance(raw, Mapping):
            break
        if any(isinstance(v, torch.Tensor) for v in raw.values()):
            break
        nested = next((raw[k] for k in NESTING_KEYS if isinstance(raw.get(k), Mapping)), None)
        if nested is None:
            break
        raw = nested
    if not isinstance(raw, Mapping):
        return {}
    return _strip_data_parallel({str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)})


def _strip_data_parallel(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``module.`` prefix ``DataParallel`` adds to every key."""
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def is_safetensors(path: Path) -> bool:
    """By suffix, or by content: an 8-byte little-endian header length, then a JSON object."""
    if path.suffix.lower() == ".safetensors":
        return True
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; the format holds no code, so nothing is unpickled."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # SafetensorError, OSError, ValueError on damaged headers
        raise SrExportError(
            f"cannot read checkpoint {path}: the file is corrupt or not a safetensors file ({type(exc).__name__})"
        ) from exc
    if not tensors:
        raise SrExportError(f"checkpoint {path} holds no tensors; expected a state_dict")
    return tensors


def describe_mismatch(module: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """One line naming missing, unexpected and wrongly shaped keys, or None if all fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            shown = ", ".join(items[:_LISTED])
            more = f" (+{len(items) - _LISTED} more)" if len(items) > _LISTED else ""
            parts.append(f"{len(items)} {label}: {shown}{more}")
    return "; ".join(parts) if parts else None


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    problem = describe_mismatch(module, state)
    if problem:
        raise SrExportError(f"checkpoint does not fit {what}: {problem}")
    module.load_state_dict(state, strict=True)
