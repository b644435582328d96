"""From what the user typed (model name or reference, weights, scale) to a ready model."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sr_export.core.errors import SrExportError
from sr_export.core.io import require_file
from sr_export.core.model_info import ModelInfo, ModelRequest
from sr_export.models import custom
from sr_export.models.checkpoints import load_strict, read_state_dict, sha256_of
from sr_export.models.padding import PadToMultiple
from sr_export.models.registry import ModelSpec, OfficialWeights, get_spec, zoo
from sr_export.models.weights import resolve_official

if TYPE_CHECKING:
    from sr_export.models.receptive_field import ReceptiveField

DEFAULT_SCALE = 4
RANDOM_INIT_SEED = 0  # random-init models must be rebuildable bit for bit (parity)
EXAMPLE_INPUT_SEED = 0  # what tracers and converters see; a graph may keep values it traced (artifacts reproducible)


def example_input(shape: tuple[int, ...] | list[int], data_range: float = 1.0) -> torch.Tensor:
    """A uniform random input in [0, data_range) for tracing: the same values in every run.

    Exporters may fold what they traced into the graph (and a converter may calibrate on it), so an unseeded
    sample could make two builds of the same model differ; its own generator leaves the global RNG alone.
    """
    generator = torch.Generator().manual_seed(EXAMPLE_INPUT_SEED)
    return torch.rand(tuple(shape), generator=generator) * data_range


@dataclass
class LoadedModel:
    module: nn.Module
    info: ModelInfo
    request: ModelRequest  # resolved: absolute paths, scale filled in
    weights_path: Path | None = None
    weights_sha256: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def random_init(self) -> bool:
        return self.weights_path is None and not isinstance(self.module, torch.jit.ScriptModule)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def size_multiple(self) -> int:
        """Sides the network computes on are multiples of this (the module pads to it itself)."""
        return self.request.pad_to or 1

    @functools.cached_property
    def receptive_field(self) -> ReceptiveField | None:
        """Measured once per loaded model; what tiling needs to know (see receptive_field.py)."""
        from sr_export.models.receptive_field import remembered_receptive_field

        return remembered_receptive_field(self.module, self.info)


def load_model(request: ModelRequest) -> LoadedModel:
    if request.data_range is not None and request.data_range not in (1.0, 255.0):
        raise SrExportError(f"--data-range must be 1 or 255, not {request.data_range:g}")
    if request.scale is not None and not 1 <= request.scale <= 16:
        raise SrExportError(f"--scale must be between 1 and 16, not {request.scale}")
    if request.pad_to is not None and not 1 <= request.pad_to <= 256:
        raise SrExportError(f"--pad-to must be between 1 and 256, not {request.pad_to}")
    if request.app_dir is not None:  # a bad folder is refused whatever the model, before any work;
        # stored absolute, so the reference can be rebuilt from an artifact's metadata anywhere
        request = replace(request, app_dir=str(custom.app_folder(request.app_dir)))
    reference = custom.parse_reference(request.model)
    loaded = _load_zoo(request) if reference is None else _load_custom(request, reference)
    loaded.module.eval()
    if loaded.size_multiple > 1:
        loaded.module = PadToMultiple(loaded.module, loaded.size_multiple, loaded.info.scale).eval()
    if loaded.random_init:
        loaded.notes.append(
            f"no weights given: {loaded.info.name} is randomly initialised, so its output quality is meaningless "
            "(fine for profiling and parity; pass --weights official or a checkpoint for real results)"
        )
    return loaded


def _load_zoo(request: ModelRequest) -> LoadedModel:
    spec = get_spec(request.model)
    weights_path, official = _weights_file(spec, request)
    state = _read_weights(spec, weights_path, request.prototxt) if weights_path else None
    sha = sha256_of(weights_path) if weights_path else None
    official = official or _official_by_checksum(sha)

    kwargs: dict[str, Any] = {**spec.kwargs, **request.kwargs}
    scale, in_channels, info_spec, notes = request.scale, request.in_channels or spec.in_channels, spec, []
    if state is not None and spec.detect is not None:
        detected = spec.detect(state)
        found_scale, in_channels = detected.pop("scale"), detected.pop("in_channels")
        if scale is not None and scale != found_scale:
            raise SrExportError(
                f"{weights_path.name} is a x{found_scale} checkpoint but --scale {scale} was asked; "
                f"use --scale {found_scale} or a x{scale} checkpoint"
            )
        scale = found_scale
        kwargs.update(detected)
        info_spec = _matching_member(spec, kwargs)
        if info_spec is None:
            info_spec = spec
            notes.append(f"checkpoint holds a custom {spec.family} variant: {detected}")
        elif info_spec.name != spec.name:
            notes.append(f"checkpoint holds the '{info_spec.name}' variant ({info_spec.description})")
    scale = scale or DEFAULT_SCALE
    if scale not in spec.scales:
        raise SrExportError(f"{spec.name} supports scales {', '.join(map(str, spec.scales))}, not {scale}")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        module = spec.build(scale=scale, in_channels=in_channels, **kwargs)
    if state is not None:
        load_strict(module, state, what=f"model '{spec.name}' x{scale} {_describe_kwargs(kwargs)}")

    data_range = request.data_range or (official.data_range if official else None) or info_spec.data_range
    info = ModelInfo(
        name=info_spec.name,
        scale=scale,
        in_channels=in_channels,
        data_range=float(data_range),
        color=info_spec.color,
        min_input_size=info_spec.min_input_size,
    )
    resolved = replace(
        request,
        scale=scale,
        weights=str(weights_path) if weights_path else None,
        data_range=info.data_range,
        in_channels=in_channels,
        prototxt=str(Path(request.prototxt).expanduser().resolve()) if request.prototxt else None,
    )
    return LoadedModel(module, info, resolved, weights_path, sha, notes)


def _weights_file(spec: ModelSpec, request: ModelRequest) -> tuple[Path | None, OfficialWeights | None]:
    if request.weights is None:
        return None, None
    if request.weights != "official":
        return Path(request.weights).expanduser().resolve(), None
    if not spec.official_weights:
        raise SrExportError(f"{spec.name} has no official checkpoint; pass --weights path/to/checkpoint.pth")
    scale = request.scale or (spec.official_weights[0].scale if len(spec.official_weights) == 1 else DEFAULT_SCALE)
    official = spec.official_for(scale)
    if official is None:
        have = ", ".join(f"x{w.scale}" for w in spec.official_weights)
        raise SrExportError(f"there is no official {spec.name} x{scale} checkpoint (official: {have})")
    return resolve_official(official), official


def _read_weights(spec: ModelSpec, path: Path, prototxt: str | None) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict; Caffe models are converted on the fly by the family's importer."""
    if path.suffix.lower() != ".caffemodel":
        if prototxt:
            raise SrExportError("--prototxt only goes with Caffe weights (--weights model.caffemodel)")
        return read_state_dict(path)
    if spec.caffe_import is None:
        raise SrExportError(f"{spec.name} has no Caffe importer; Caffe models load into: {_caffe_families()}")
    require_file(path, "checkpoint")
    state, _ = spec.import_caffe(path, Path(prototxt).expanduser().resolve() if prototxt else None)
    return state


def _caffe_families() -> str:
    return ", ".join(sorted(s.name for s in zoo().values() if s.caffe_import is not None)) or "none"


def _official_by_checksum(sha: str | None) -> OfficialWeights | None:
    if sha is None:
        return None
    return next((w for s in zoo().values() for w in s.official_weights if w.sha256 == sha), None)


def _matching_member(spec: ModelSpec, kwargs: Mapping[str, Any]) -> ModelSpec | None:
    """The zoo member of the same family whose architecture kwargs equal ``kwargs``."""
    if all(kwargs.get(k) == v for k, v in spec.kwargs.items()):
        return spec
    for other in zoo().values():
        if other.family == spec.family and other.kwargs and all(kwargs.get(k) == v for k, v in other.kwargs.items()):
            return other
    return None


def _describe_kwargs(kwargs: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else ""


def _load_custom(request: ModelRequest, reference: custom.ModelReference) -> LoadedModel:
    in_channels = request.in_channels or 3
    weights_path = Path(request.weights).expanduser().resolve() if request.weights else None
    if request.weights == "official":
        raise SrExportError("--weights official only works with zoo models; pass a checkpoint path")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        if reference.kind == "torchscript":
            if weights_path:
                raise SrExportError("a TorchScript file already holds its weights; drop --weights")
            module = custom.load_torchscript(Path(reference.location))
        else:
            cls = custom.import_class(reference, request.app_dir)
            module = custom.instantiate(cls, dict(request.kwargs), request.scale)
    sha = None
    if weights_path:
        load_strict(module, read_state_dict(weights_path), what=f"{reference}")
        sha = sha256_of(weights_path)
    module.eval()
    min_size = int(getattr(module, "min_input_size", 1))
    probe = custom.probe_model(module, in_channels, min_size)
    scale = probe.scale
    if request.scale is not None and request.scale != scale:
        raise SrExportError(f"{reference} upscales x{scale} but --scale {request.scale} was asked")
    notes = []
    pad_to = request.pad_to
    if probe.size_multiple > 1 and pad_to is None:
        pad_to = probe.size_multiple
        notes.append(
            f"{reference.class_name or reference.location} only runs on sides that are multiples of "
            f"{pad_to} ({probe.odd_size_failure}); inputs are padded (reflect) to a multiple of {pad_to} "
            f"and outputs cropped back, as with --pad-to {pad_to}"
        )
    name = reference.class_name.lower() if reference.class_name else Path(reference.location).stem
    data_range = request.data_range or float(getattr(module, "data_range", 1.0))
    info = ModelInfo(name=name, scale=scale, in_channels=in_channels, data_range=float(data_range),
                     color="y" if in_channels == 1 else "rgb", min_input_size=min_size)
    resolved = replace(request, model=str(reference), scale=scale, weights=str(weights_path) if weights_path else None,
                       data_range=info.data_range, in_channels=in_channels, pad_to=pad_to)
    return LoadedModel(module, info, resolved, weights_path, sha, notes)
