"""Built artifacts and the metadata they carry.

Every artifact knows what it is (model, scale, data range, colour, weights
checksum, how to rebuild its PyTorch reference), which format it is in
(:mod:`sr_export.core.formats`), which runtime it was built for and which
runtimes can run it, so that later steps (parity, speed, evaluation) need
nothing but the file. ONNX files hold the metadata in their
``metadata_props``; formats without a metadata slot get a sidecar
``<file>.json``. Metadata written by earlier versions still reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.core.errors import SrExportError
from sr_export.core.formats import ONNX_QDQ, canonical_format
from sr_export.core.model_info import ModelInfo

METADATA_KEY = "sr_export"
# INT8 QDQ details (flavour, recipe, float nodes) that quantisation adds to an ONNX file's metadata_props.
INT8_METADATA_KEY = "sr_export_int8"
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class ArtifactMetadata:
    model: str
    scale: int
    in_channels: int
    data_range: float
    color: str
    min_input_size: int = 1
    request: Mapping[str, Any] = field(default_factory=dict)  # ModelRequest as a dict
    weights_sha256: str | None = None
    random_init: bool = False
    format: str = "onnx"  # a name from sr_export.core.formats (or a runtime plugin's own format)
    backend: str = "onnxruntime"  # the runtime it was built for
    # The runtimes that can run the file, as registered when it was written (empty in old metadata:
    # the registry then says, by format).
    runtimes: tuple[str, ...] = ()
    flavour: str | None = None  # onnx-qdq: who the quantised graph was made for ("onnxruntime", "tensorrt")
    precision: str = "fp32"
    layout: str = "NCHW"
    input_name: str = "input"
    output_name: str = "output"
    input_shape: tuple[int | str, ...] = ()  # strings are dynamic dimensions
    opset: int | None = None
    simplified: bool = False
    exporter: str | None = None  # "dynamo" or "legacy" for graphs sr-export traced
    # LR sizes (H, W) at which a dynamic graph was proven against PyTorch before it was written.
    verified_sizes: tuple[tuple[int, int], ...] = ()
    # The network computes on sides that are multiples of this; when the graph
    # does not pad by itself (pads_in_graph False), runners pad on the host.
    size_multiple: int = 1
    pads_in_graph: bool = False
    # LR pixels of context on each side that measurably change an output pixel,
    # and whether the output depends on the whole image (global pooling): what
    # tiling a fixed-size artifact needs to know.
    receptive_field: int | None = None
    global_context: bool = False
    tile_alignment: int = 1  # fixed-size artifacts: tiles start at multiples of this (window models)
    tool_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    notes: tuple[str, ...] = ()
    # How an INT8 artifact was quantised when the format has no place for it
    # (TFLite: scheme, I/O type and parameters, calibration recipe); empty otherwise.
    quantization: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dynamic(self) -> bool:
        return any(isinstance(d, str) for d in self.input_shape[2:])

    @property
    def static_hw(self) -> tuple[int, int] | None:
        if len(self.input_shape) == 4 and not self.dynamic:
            return int(self.input_shape[2]), int(self.input_shape[3])
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["request"] = dict(self.request)
        data["input_shape"] = list(self.input_shape)
        data["verified_sizes"] = [list(hw) for hw in self.verified_sizes]
        data["notes"] = list(self.notes)
        data["runtimes"] = list(self.runtimes)
        data["quantization"] = dict(self.quantization)
        return data

    @classmethod
    def for_model(cls, model: Any, **fields: Any) -> ArtifactMetadata:
        """Metadata describing ``model`` (a LoadedModel), plus artifact-specific ``fields``."""
        info = model.info
        measured = model.receptive_field
        described: dict[str, Any] = {
            "model": info.name,
            "scale": info.scale,
            "in_channels": info.in_channels,
            "data_range": info.data_range,
            "color": info.color,
            "min_input_size": info.min_input_size,
            "request": model.request.to_dict(),
            "weights_sha256": model.weights_sha256,
            "random_init": model.random_init,
            # sr-export's own padding wrapper (--pad-to) lives inside the module, so inside any graph.
            "size_multiple": model.size_multiple,
            "pads_in_graph": model.size_multiple > 1,
            "receptive_field": measured.radius if measured else None,
            "global_context": measured.global_context if measured else False,
            "tile_alignment": measured.period if measured else 1,
        }
        return cls(**{**described, **fields})

    def model_info(self) -> ModelInfo:
        """How to feed the network this artifact was made from."""
        return ModelInfo(self.model, self.scale, self.in_channels, self.data_range, self.color, self.min_input_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["input_shape"] = tuple(known.get("input_shape", ()))
        known["verified_sizes"] = tuple((int(h), int(w)) for h, w in known.get("verified_sizes", ()))
        known["notes"] = tuple(known.get("notes", ()))
        known["runtimes"] = tuple(known.get("runtimes", ()))
        known["format"] = canonical_format(str(known.get("format", "onnx")), str(known.get("precision", "fp32")))
        return cls(**known)

    def describe_format(self) -> str:
        """'onnx-qdq (tensorrt flavour) for tensorrt; runs in onnxruntime', for tables."""
        flavour = f" ({self.flavour} flavour)" if self.flavour else ""
        runs = f"; runs in {', '.join(self.runtimes)}" if self.runtimes and self.runtimes != (self.backend,) else ""
        return f"{self.format}{flavour} for {self.backend}{runs}"

    def readable_props(self) -> dict[str, str]:
        """Flat key/value pairs for tools (Netron, onnx.load) that show metadata_props."""
        return {
            "model": self.model,
            "scale": str(self.scale),
            "data_range": f"{self.data_range:g}",
            "color": self.color,
            "layout": f"{self.layout} {self.in_channels}-channel",
            "weights_sha256": self.weights_sha256 or "none (random init)",
            "tool": f"sr-export {self.tool_version}",
        }


@dataclass(frozen=True)
class Artifact:
    path: Path
    metadata: ArtifactMetadata
    # What its build reports beyond the metadata (conversion time, rewrites, converter ops); not stored.
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def format(self) -> str:
        return self.metadata.format


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_metadata(path: str | Path) -> ArtifactMetadata | None:
    """The metadata an artifact carries, or None if it carries none (a foreign file)."""
    path = Path(path)
    sidecar = sidecar_path(path)
    if not (path.is_file() or (path.is_dir() and sidecar.is_file())):
        raise SrExportError(f"artifact not found: {path}")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise SrExportError(f"cannot read {path}: not a valid ONNX file ({type(exc).__name__})") from exc
        props = {p.key: p.value for p in proto.metadata_props}
        if METADATA_KEY in props:
            return _with_qdq_flavour(ArtifactMetadata.from_dict(json.loads(props[METADATA_KEY])), props)
    if sidecar.is_file():
        return ArtifactMetadata.from_dict(json.loads(sidecar.read_text(encoding="utf-8")))
    return None


def _with_qdq_flavour(metadata: ArtifactMetadata, props: Mapping[str, str]) -> ArtifactMetadata:
    """Old QDQ files name their flavour only in the INT8 details (and were all stamped for onnxruntime)."""
    if metadata.format != ONNX_QDQ.name or metadata.flavour or INT8_METADATA_KEY not in props:
        return metadata
    flavour = json.loads(props[INT8_METADATA_KEY]).get("flavour")
    return replace(metadata, flavour=flavour, backend=flavour or metadata.backend)


def embed_in_onnx(proto: Any, metadata: ArtifactMetadata) -> None:
    """Store ``metadata`` in an ``onnx.ModelProto`` (replacing earlier sr-export entries)."""
    props = {**metadata.readable_props(), METADATA_KEY: json.dumps(metadata.to_dict())}
    kept = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
