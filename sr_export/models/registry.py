"""The model zoo: one :class:`ModelSpec` per named model.

A new family is one new module that defines ``SPECS`` plus one line in
``ZOO_MODULES``. Modules are imported only when the zoo is first asked for, so
tools that never touch a model (``--help``) never import torch.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ColorMode

if TYPE_CHECKING:
    import torch
    from torch import nn


StateDict = Mapping[str, "torch.Tensor"]

ZOO_MODULES: tuple[str, ...] = (
    "sr_export.models.imdn",
    "sr_export.models.rfdn",
    "sr_export.models.idn",
)


@dataclass(frozen=True)
class CompanionFile:
    """A file that must lie beside a checkpoint (a Caffe model's deploy prototxt)."""

    filename: str  # name beside the checkpoint
    url: str
    sha256: str


@dataclass(frozen=True)
class OfficialWeights:
    """A published checkpoint: where it comes from and how to recognise it."""

    model: str
    scale: int
    filename: str  # name in the cache / local weights folder
    url: str
    sha256: str
    upstream_filename: str = ""  # the authors' own file name, also accepted locally
    data_range: float | None = None  # when it differs from the model's default
    companions: tuple[CompanionFile, ...] = ()

    def accepted_names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.filename, self.upstream_filename) if n)


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline needs to build and feed one named model."""

    name: str
    build: Callable[..., nn.Module]  # build(scale=..., in_channels=..., **kwargs)
    description: str
    family: str
    scales: tuple[int, ...] = (2, 3, 4)
    in_channels: int = 3
    data_range: float = 1.0
    color: ColorMode = "rgb"
    min_input_size: int = 1
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    # spandrel-style detection: architecture kwargs (and 'scale', 'in_channels')
    # read off a state dict's keys and shapes; raises SrExportError if it does not fit.
    detect: Callable[[StateDict], dict[str, Any]] | None = None
    official_weights: tuple[OfficialWeights, ...] = ()
    # "module:function" of (caffemodel, prototxt or None) -> (state dict, scale), for families whose
    # weights are Caffe models. A name, not the function: the importer maps onto the family's own module,
    # so the family module cannot import it without a cycle.
    caffe_import: str | None = None

    def official_for(self, scale: int) -> OfficialWeights | None:
        return next((w for w in self.official_weights if w.scale == scale), None)

    def import_caffe(self, caffemodel: Path, prototxt: Path | None) -> tuple[dict[str, torch.Tensor], int]:
        """The state dict and scale of a Caffe model of this family (``caffe_import`` must be set)."""
        assert self.caffe_import is not None
        module_name, function_name = self.caffe_import.split(":")
        return getattr(importlib.import_module(module_name), function_name)(caffemodel, prototxt)


@functools.cache
def zoo() -> dict[str, ModelSpec]:
    """All registered models by name (imports the model modules on first call)."""
    specs: dict[str, ModelSpec] = {}
    for module_name in ZOO_MODULES:
        for spec in importlib.import_module(module_name).SPECS:
            if spec.name in specs:
                raise RuntimeError(f"model name '{spec.name}' is registered twice")
            specs[spec.name] = spec
    return specs


def get_spec(name: str) -> ModelSpec:
    specs = zoo()
    if name not in specs:
        known = ", ".join(sorted(specs))
        raise SrExportError(
            f"unknown model '{name}'; choose one of {known}, or bring your own as path/to/file.py:ClassName"
        )
    return specs[name]
