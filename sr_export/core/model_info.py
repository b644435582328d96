"""The model contract: what an artifact, a check or a timing needs to know about a network,
without PyTorch.

:class:`ModelInfo` says how to feed a network and read its output;
:class:`ModelRequest` says how to rebuild it (what the user asked for), so an
artifact can carry it and its PyTorch reference can be rebuilt later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColorMode = Literal["rgb", "y"]


@dataclass(frozen=True)
class ModelInfo:
    """How to feed a network and read its output."""

    name: str
    scale: int
    in_channels: int = 3
    data_range: float = 1.0
    color: ColorMode = "rgb"
    min_input_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelRequest:
    """What the user asked for; stored in artifacts so the PyTorch reference can be rebuilt."""

    model: str
    scale: int | None = None
    weights: str | None = None  # a path, "official", or None for random init
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    data_range: float | None = None
    in_channels: int | None = None
    pad_to: int | None = None  # pad inputs (reflect) to a multiple of this, crop outputs back
    prototxt: str | None = None  # Caffe weights: the deploy graph (default: found beside the caffemodel)
    app_dir: str | None = None  # where ``package.module:Class`` is imported from (default: the current folder)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRequest:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
