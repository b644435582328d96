"""Bring-your-own models: ``path/to/file.py:ClassName``, ``package.module:ClassName``
or a TorchScript file."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from sr_export.core.errors import SrExportError, stage
from sr_export.core.io import require_file
from sr_export.models.checkpoints import is_torchscript

# Constructor arguments that mean "upscaling factor" in the wild.
SCALE_ARGUMENT_NAMES = ("scale", "upscale", "upscale_factor", "upscaling_factor", "scale_factor", "sf")
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript", ".ptl")


@dataclass(frozen=True)
class ModelReference:
    kind: Literal["file", "module", "torchscript"]
    location: str  # absolute file path or dotted module name
    class_name: str = ""

    def __str__(self) -> str:
        return self.location if self.kind == "torchscript" else f"{self.location}:{self.class_name}"


def parse_reference(text: str) -> ModelReference | None:
    """Recognise a bring-your-own model reference; None means 'a zoo name'."""
    location, sep, class_name = text.rpartition(":")
    if sep and class_name.isidentifier() and location:
        if location.endswith(".py") or "/" in location or "\\" in location:
            return ModelReference("file", str(Path(location).expanduser().resolve()), class_name)
        return ModelReference("module", location, class_name)
    path = Path(text).expanduser()
    if text.lower().endswith(TORCHSCRIPT_SUFFIXES) or path.is_file():
        return ModelReference("torchscript", str(path.resolve()))
    return None


def import_class(ref: ModelReference, app_dir: str | Path | None = None) -> type[nn.Module]:
    """The class ``ref`` names. A ``package.module`` is imported from ``app_dir`` (default: the current
    folder) before anything else on ``sys.path``, as ``python -m`` and uvicorn do."""
    if ref.kind == "file":
        path = Path(ref.location)
        require_file(path, "model file")
        module_name = user_module_name(path)
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise SrExportError(f"cannot import {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        # The file may import siblings next to it, as it would when run directly.
        with _importable_from(path.parent):
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # user code: any failure is the user's to fix
                raise SrExportError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    else:
        folder = app_folder(app_dir)
        with _importable_from(folder):
            try:
                module = importlib.import_module(ref.location)
            except Exception as exc:
                where = f" (looked in {folder} first)" if app_dir is not None else ""
                raise SrExportError(
                    f"cannot import module '{ref.location}'{where}: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, ref.class_name, None)
    if cls is None:
        raise SrExportError(f"{ref.location} has no attribute '{ref.class_name}'")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise SrExportError(f"{ref} is not a torch.nn.Module class")
    return cls


def app_folder(app_dir: str | Path | None) -> Path:
    """The folder ``package.module`` references import from: ``app_dir`` (which must be a folder), else the
    current one."""
    if app_dir is None:
        return Path.cwd()
    folder = Path(app_dir).expanduser()
    if not folder.exists():
        raise SrExportError(f"--app-dir {app_dir}: not found")
    if not folder.is_dir():
        raise SrExportError(f"--app-dir {app_dir}: not a folder")
    return folder.resolve()


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the import only: taken off again afterwards, so one call's
    folder never serves the next call's imports (the CLI runs many times in one test process)."""
    entry = str(folder)
    sys.path.insert(0, entry)
    # Path finders cache folder listings; a package written a moment ago (same mtime second) would be missed.
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(entry)  # the first occurrence: the one inserted above


def user_module_name(path: Path) -> str:
    """The name a model file is imported under: distinct per file, and the same in every run.

    Converters bake the module's qualified name into the artifact (TFLite tensor names), so it must not
    come from ``hash()`` (salted per process) or from where the file lies: a digest of its content.
    """
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"sr_export_user_{path.stem}_{digest}"


def instantiate(cls: type[nn.Module], kwargs: dict[str, Any], scale: int | None) -> nn.Module:
    """Build ``cls(**kwargs)``, passing ``scale`` under whatever name the class uses for it."""
    kwargs = dict(kwargs)
    if scale is not None:
        parameters = inspect.signature(cls.__init__).parameters
        name = next((n for n in SCALE_ARGUMENT_NAMES if n in parameters), None)
        if name and name not in kwargs:
            kwargs[name] = scale
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise SrExportError(
            f"cannot build {cls.__name__}(**{kwargs}): {type(exc).__name__}: {exc}; "
            "pass constructor arguments with --model-kwargs '{...}'"
        ) from exc


def load_torchscript(path: Path) -> nn.Module:
    require_file(path, "model file")
    if not is_torchscript(path):
        raise SrExportError(
            f"{path} is not a TorchScript archive; for a checkpoint pass --model NAME --weights {path}, "
            "for your own code --model file.py:ClassName"
        )
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise SrExportError(f"cannot load TorchScript file {path}: {exc}") from exc


@dataclass(frozen=True)
class Probe:
    """What one or two forward passes tell about a model."""

    scale: int
    size_multiple: int = 1  # >1: the model only computes on sides that are multiples of this
    odd_size_failure: str = ""  # why the odd-sized probe failed, when size_multiple > 1


class _WrongOutput(SrExportError):
    """The output can never be right, whatever the input size (tuple, 3-d, channels)."""


# Sides tried when a model fails on odd sizes: the smallest multiple that works is its requirement.
CANDIDATE_MULTIPLES = (2, 4, 8, 16, 32, 64)
PROBE_HW = (37, 45)  # odd, non-square, not multiples of 8


def probe_model(module: nn.Module, in_channels: int, min_size: int = 1) -> Probe:
    """Scale and size requirement of ``module``, measured by running it.

    A model is first run at an odd, non-square size. If that fails (or the
    output is not an exact upscaling) but sides in multiples of N work, the
    model needs inputs in multiples of N.
    """
    height, width = (max(h, min_size | 1) for h in PROBE_HW)
    try:
        return Probe(_upscale_factor(module, in_channels, height, width))
    except _WrongOutput:
        raise
    except SrExportError as odd_failure:
        for multiple in CANDIDATE_MULTIPLES:
            try:
                scale = _upscale_factor(module, in_channels, _round_up(height, multiple), _round_up(width, multiple))
            except SrExportError:
                continue
            return Probe(scale, multiple, str(odd_failure))
        raise


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _upscale_factor(module: nn.Module, in_channels: int, height: int, width: int) -> int:
    x = torch.rand(1, in_channels, height, width)
    with stage("forward", f"the model raised on a 1x{in_channels}x{height}x{width} input",
               "check --in-channels, --model-kwargs and the model's size requirements (--pad-to N)",
               exit_code=2):
        with torch.inference_mode():
            y = module(x)
    if not isinstance(y, torch.Tensor):
        raise _WrongOutput(
            f"the model returns a {type(y).__name__}, not a tensor; sr-export needs forward() to return "
            "one NCHW image tensor (wrap the model to return only the image)"
        )
    if y.dim() != 4:
        raise _WrongOutput(f"the model returns a {y.dim()}-d tensor {tuple(y.shape)}; an SR model returns NCHW images")
    if y.shape[1] != in_channels:
        raise _WrongOutput(
            f"the model returns {y.shape[1]} channels for a {in_channels}-channel input; "
            "pass --in-channels to match the model, or make it return as many channels as it takes"
        )
    scale_h, scale_w = y.shape[2] / height, y.shape[3] / width
    if scale_h != scale_w or scale_h != int(scale_h) or scale_h < 1:
        raise SrExportError(
            f"the model maps {height}x{width} to {y.shape[2]}x{y.shape[3]}: not an integer upscaling"
        )
    return int(scale_h)
