"""Built artifacts and the metadata they carry.

Every artifact knows what it is (model, scale, data range, colour, weights
checksum, how to rebuild its PyTorch reference), which format it is in
(:mod:`sr_export.core.formats`), which runtime it was built for and which
runtimes can run it, so that later steps (parity, speed, evaluation) need
nothing but the file. ONNX files hold the metadata in their
``metadata_props``; formats without a metadata slot get a sidecar
``<file>.json``. Metadata written by earlier versions still reads.

Artifacts are reproducible: the same inputs give the same bytes. So when and
where a build ran (:data:`BUILD_FIELDS`) is never stored in an artifact file:
sidecars and the builds' JSON reports record it (old ONNX files that embed
``created`` still read).
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.core.errors import SrExportError
from sr_export.core.formats import CORE_FORMATS, EMBEDDED_METADATA_KEY, ONNX_QDQ, canonical_format
from sr_export.core.io import content_sha256, write_json_atomic
from sr_export.core.model_info import ModelInfo

METADATA_KEY = EMBEDDED_METADATA_KEY
# INT8 QDQ details (flavour, recipe, float nodes) that quantisation adds to an ONNX file's metadata_props.
INT8_METADATA_KEY = "sr_export_int8"
SIDECAR_SUFFIX = ".json"
# A sidecar also records the artifact's content hash: a file truncated or changed after it was written is
# refused where it is opened, not deep inside a runtime.
CONTENT_HASH_KEY = "content_sha256"
_REQUIRED_FIELDS = ("model", "scale", "in_channels", "data_range", "color")
# What describes one build, not the artifact: it would make two builds of the same inputs differ, so it is
# kept out of artifact files (sidecars and reports carry it).
BUILD_FIELDS = ("created", "host")


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
    # Fixed-size artifacts: stitched tiles measured against the whole-image PyTorch output when the file was
    # proven (checks.parity.tiling_measurement): verdict "exact" or "approximate", worst PSNR and max|diff|.
    tiling: Mapping[str, Any] = field(default_factory=dict)
    tool_version: str = __version__
    # When (UTC, ISO 8601) and on which host the artifact was built (see BUILD_FIELDS); None where unknown.
    created: str | None = None
    host: str | None = None
    notes: tuple[str, ...] = ()
    # How an INT8 artifact was quantised when the format has no place for it
    # (TFLite: scheme, I/O type and parameters, calibration recipe); empty otherwise.
    quantization: Mapping[str, Any] = field(default_factory=dict)
    # What the file needs from the runtime that loads it, computed from the file itself (TFLite: op versions
    # and integer kernels): min_runtime, set_by, and built_for when a build named the device's runtime.
    runtime_requirements: Mapping[str, Any] = field(default_factory=dict)

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
        data["runtime_requirements"] = dict(self.runtime_requirements)
        data["tiling"] = dict(self.tiling)
        for name in BUILD_FIELDS:  # unknown build details are left out, not written as null
            if data[name] is None:
                del data[name]
        return data

    def content_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the build's time and host: what an artifact file itself may hold."""
        return {k: v for k, v in self.to_dict().items() if k not in BUILD_FIELDS}

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
            # Tiles start where the model's own grid does: never finer than the multiple it computes on
            # (found at load, --pad-to) nor than the shift period the probe measured (windows, strides).
            "tile_alignment": math.lcm(measured.period if measured else 1, model.size_multiple),
        }
        return cls(**{**described, **fields})

    def model_info(self) -> ModelInfo:
        """How to feed the network this artifact was made from."""
        return ModelInfo(self.model, self.scale, self.in_channels, self.data_range, self.color, self.min_input_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "the metadata") -> ArtifactMetadata:
        """Metadata from its JSON form; anything malformed is one :class:`SrExportError` naming ``where``."""
        if not isinstance(data, Mapping):
            raise SrExportError(f"{where} is not sr-export metadata (a JSON object was expected, found "
                                f"{type(data).__name__}); re-export the artifact")
        missing = [name for name in _REQUIRED_FIELDS if name not in data]
        if missing:
            raise SrExportError(f"{where} is not sr-export metadata (no {', '.join(missing)}); re-export the artifact, "
                                "or delete it and pass --model to say what the file holds")
        try:
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            known["scale"] = _whole(known["scale"], "scale")
            known["in_channels"] = _whole(known["in_channels"], "in_channels")
            known["data_range"] = float(known["data_range"])
            if not known["data_range"] > 0 or known["data_range"] == float("inf"):
                raise ValueError("data_range must be a positive number")
            known["input_shape"] = tuple(known.get("input_shape") or ())
            known["verified_sizes"] = tuple((int(h), int(w)) for h, w in known.get("verified_sizes") or ())
            known["notes"] = tuple(str(n) for n in known.get("notes") or ())
            known["runtimes"] = tuple(str(r) for r in known.get("runtimes") or ())
            known["request"] = dict(known.get("request") or {})
            known["quantization"] = dict(known.get("quantization") or {})
            known["runtime_requirements"] = dict(known.get("runtime_requirements") or {})
            known["tiling"] = dict(known.get("tiling") or {})
            known["format"] = canonical_format(str(known.get("format", "onnx")), str(known.get("precision", "fp32")))
            return cls(**known)
        except (TypeError, ValueError) as exc:
            raise SrExportError(f"{where} is malformed ({exc}); re-export the artifact") from exc

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


DIRECTORY_SUFFIXES = frozenset(s for f in CORE_FORMATS.values() if f.directory for s in f.suffixes)


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_metadata(path: str | Path) -> ArtifactMetadata | None:
    """The metadata an artifact carries, or None if it carries none (a foreign file).

    Refuses, in one line naming the file, what cannot be an artifact: a missing
    path, a folder that is no folder artifact, a special file, an empty file, an
    ONNX file that does not parse, a sidecar that is not sr-export's metadata,
    and a file whose content no longer matches the hash its sidecar recorded.
    """
    path = Path(path)
    sidecar = sidecar_path(path)
    check_readable_artifact(path)
    check_signature(path)
    if path.suffix.lower() == ".onnx":
        props = _onnx_metadata_props(path)
        if METADATA_KEY in props:
            where = f"{path} (metadata_props '{METADATA_KEY}')"
            metadata = ArtifactMetadata.from_dict(_parse_json(props[METADATA_KEY], where), where)
            return _with_qdq_flavour(metadata, props, path)
    if sidecar.is_file():
        document = _parse_json(_read_text(sidecar), str(sidecar))
        metadata = ArtifactMetadata.from_dict(document, str(sidecar))
        recorded = document.get(CONTENT_HASH_KEY)
        if recorded and recorded != content_sha256(path):
            raise SrExportError(f"{path} changed since sr-export wrote it (its content no longer matches the hash "
                                f"in {sidecar.name}): truncated or damaged? re-export it")
        return metadata
    return None


def check_readable_artifact(path: Path) -> None:
    """One line for a path that cannot be an artifact at all (before any parser or runtime sees it)."""
    if not path.exists():
        raise SrExportError(f"artifact not found: {path}")
    if path.is_dir():
        if not (sidecar_path(path).is_file() or path.suffix.lower() in DIRECTORY_SUFFIXES):
            raise SrExportError(f"{path} is a folder, not an artifact; give the artifact file in it "
                                "(a .onnx, .tflite, .engine file or an .mlpackage folder)")
        return
    if not path.is_file():
        raise SrExportError(f"{path} is not a regular file (a device, pipe or socket); give an artifact file")
    if path.stat().st_size == 0:
        raise SrExportError(f"{path} is empty (0 bytes): nothing to read; re-export it")


def check_signature(path: Path) -> None:
    """A file with a core format's suffix must carry that format's signature (a truncated or renamed file
    is refused here, in one line, not by the runtime's parser)."""
    fmt = next((f for f in CORE_FORMATS.values() if path.suffix.lower() in f.suffixes), None)
    if fmt is None or fmt.looks_like(path):
        return
    if fmt.directory:
        raise SrExportError(f"{path} is not a {fmt.description} (no {fmt.marker_file} in it); re-export it")
    found = sniff_format(path)
    seems = f" (it looks like a {found} file)" if found else ""
    raise SrExportError(f"{path} is not a {fmt.description}{seems}: damaged or misnamed; re-export it")


def _onnx_metadata_props(path: Path) -> dict[str, str]:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError, or RuntimeError, or OSError
        found = sniff_format(path)
        seems = f"; it looks like a {found} file" if found and found != "onnx" else ""
        raise SrExportError(f"cannot read {path}: not a valid ONNX file ({type(exc).__name__}){seems}") from exc
    if not proto.graph.node and not proto.graph.input:
        raise SrExportError(f"cannot read {path}: not a valid ONNX file (it holds no graph); re-export it")
    return {p.key: p.value for p in proto.metadata_props}


def sniff_format(path: Path) -> str | None:
    """What a file's first bytes say it is (for messages about files with the wrong suffix)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:4] == b"PK\x03\x04":
        return "zip (a PyTorch checkpoint?)"
    if head[:1] in (b"{", b"["):
        return "JSON"
    if head[:6] == b"SQLite":
        return "SQLite"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff":
        return "image"
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SrExportError(f"{path} is not text (not UTF-8 JSON): not sr-export metadata; re-export the artifact, "
                            "or delete it and pass --model to say what the file holds") from exc


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SrExportError(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}); re-export the artifact, "
                            "or delete it and pass --model to say what the file holds") from exc


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or int(value) != float(value) \
            or int(value) < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _with_qdq_flavour(metadata: ArtifactMetadata, props: Mapping[str, str], path: Path) -> ArtifactMetadata:
    """Old QDQ files name their flavour only in the INT8 details (and were all stamped for onnxruntime)."""
    if metadata.format != ONNX_QDQ.name or metadata.flavour or INT8_METADATA_KEY not in props:
        return metadata
    details = _parse_json(props[INT8_METADATA_KEY], f"{path} (metadata_props '{INT8_METADATA_KEY}')")
    flavour = details.get("flavour") if isinstance(details, dict) else None
    return replace(metadata, flavour=flavour, backend=flavour or metadata.backend)


def build_stamp(metadata: ArtifactMetadata) -> ArtifactMetadata:
    """``metadata`` of an artifact being built now, here (replacing any time and host it inherited)."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return replace(metadata, created=created, host=platform.node() or None)


def sidecar_document(metadata: ArtifactMetadata, content: Path) -> dict[str, Any]:
    """What a sidecar holds: the metadata with its build's time and host (now and here when ``metadata``
    does not say), and the hash of the artifact's content as written (``content`` may be the staged file
    that is about to be renamed onto the artifact's path)."""
    stamped = metadata if metadata.created else build_stamp(metadata)
    return {**stamped.to_dict(), CONTENT_HASH_KEY: content_sha256(content)}


def write_sidecar(path: Path, metadata: ArtifactMetadata, content: Path | None = None) -> Path:
    """Write ``path``'s sidecar (atomically), hashing ``content`` (default: ``path`` itself)."""
    return write_json_atomic(sidecar_path(path), sidecar_document(metadata, content or path))


def embed_in_onnx(proto: Any, metadata: ArtifactMetadata) -> None:
    """Store ``metadata`` in an ``onnx.ModelProto`` (replacing earlier sr-export entries), without the
    build's time and host: the file's bytes depend only on what it was built from."""
    props = {**metadata.readable_props(), METADATA_KEY: json.dumps(metadata.content_dict())}
    kept = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
