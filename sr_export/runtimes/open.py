"""Opening artifacts: the metadata they carry (or that is given or measured for foreign files), and a runner for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sr_export.core.artifacts import Artifact, ArtifactMetadata, read_metadata
from sr_export.core.errors import SrExportError, first_line
from sr_export.core.formats import ONNX, ONNX_QDQ, format_for_suffix
from sr_export.export.session import cpu_session
from sr_export.runtimes.base import Runner
from sr_export.runtimes.registry import all_formats, runtime_for_artifact, runtime_for_file


def open_runner(
    artifact: Artifact | str | Path,
    *,
    runtime: str | None = None,
    threads: int | None = None,
    tile_overlap: int | None = None,
    python: Path | None = None,
) -> Runner:
    """An opened runner for any artifact that takes any input size (a context manager that closes it).

    ``runtime`` picks who runs it among the runtimes that read its format
    (default: the one it was built for, else the format's first reader).
    Fixed-size artifacts are run tile by tile (``tile_overlap`` LR pixels of
    context per side; default from the artifact's receptive field), and
    artifacts that need sides in multiples of N get padded inputs; see
    :mod:`sr_export.runtimes.tiling`. ``python``: run it with that Python environment's runtime
    (:mod:`sr_export.runtimes.elsewhere`), e.g. a board's older one.
    """
    from sr_export.runtimes.tiling import adapt_runner

    if not isinstance(artifact, Artifact):
        artifact = open_artifact(artifact)
    chosen = runtime_for_artifact(artifact.metadata, runtime)
    try:
        if python is not None:
            from sr_export.runtimes.elsewhere import ElsewhereRunner

            runner: Runner = ElsewhereRunner(artifact, chosen, python, threads)
        else:
            runner = chosen.load(artifact, threads=threads)
    except (SrExportError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # the runtime's own parser refused the file
        raise SrExportError(f"{chosen.name} cannot load {artifact.path}: {first_line(exc)}; re-export it") from exc
    return adapt_runner(runner, artifact.metadata, tile_overlap=tile_overlap)


def open_artifact(
    path: str | Path,
    described: Any = None,
    *,
    measure: bool = False,
    data_range: float | None = None,
    in_channels: int | None = None,
) -> Artifact:
    """An artifact with its metadata.

    For files made by other tools, ``described`` (a LoadedModel) supplies the
    metadata; failing that, with ``measure``, an ONNX file's channels and scale
    are read off the graph and one run (the data range is the caller's guess).
    """
    path = Path(path)
    metadata = read_metadata(path)
    if metadata is None:
        if described is not None:
            metadata = _foreign_metadata(path, described)
        elif measure and path.suffix.lower() == ".onnx":
            metadata = _measured_onnx_metadata(path, data_range or 1.0, in_channels)
        else:
            raise SrExportError(
                f"{path} carries no sr-export metadata; pass --model (and --weights, --scale) to say what it holds"
            )
    return Artifact(path, metadata)


def _measured_onnx_metadata(path: Path, data_range: float, in_channels: int | None) -> ArtifactMetadata:
    import numpy as np
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    dims = [d.dim_value if d.dim_value > 0 else (d.dim_param or "?") for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise SrExportError(f"{path} takes a {len(dims)}-d input; an SR model takes NCHW images")
    channels = dims[1] if isinstance(dims[1], int) else (in_channels or 3)
    height, width = (d if isinstance(d, int) else 32 for d in dims[2:])
    try:
        session = cpu_session(path)
        probe = np.zeros((1, channels, height, width), np.float32)
        output = session.run(None, {session.get_inputs()[0].name: probe})[0]
    except Exception as exc:
        raise SrExportError(f"cannot run {path} to measure it ({type(exc).__name__}); pass --model to describe it") from exc
    scale = output.shape[2] // height
    if output.ndim != 4 or output.shape[2] != scale * height or output.shape[3] != scale * width:
        raise SrExportError(f"{path} maps {height}x{width} to {tuple(output.shape)}: not an integer upscaling")
    return ArtifactMetadata(
        model=path.stem,
        scale=scale,
        in_channels=channels,
        data_range=float(data_range),
        color="y" if channels == 1 else "rgb",
        format=onnx_format(proto),
        precision="int8" if onnx_format(proto) == ONNX_QDQ.name else "fp32",
        backend=runtime_for_file(path),
        input_shape=tuple(dims),
        notes=(f"made by another tool; scale measured, data range [0,{data_range:g}] assumed (see --data-range)",),
    )


def _foreign_metadata(path: Path, model: Any) -> ArtifactMetadata:
    backend = runtime_for_file(path)
    input_shape: tuple[int | str, ...] = ()
    file_format = format_for_suffix(path, all_formats()).name
    if path.suffix.lower() == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        input_shape = tuple(d.dim_param or (d.dim_value if d.dim_value > 0 else "?") for d in dims)
        file_format = onnx_format(proto)
    return ArtifactMetadata.for_model(
        model,
        format=file_format,
        precision="int8" if file_format == ONNX_QDQ.name else "fp32",
        backend=backend,
        input_shape=input_shape,
        notes=("made by another tool; metadata given on the command line",),
    )


def onnx_format(proto: Any) -> str:
    """onnx-qdq when the graph holds QuantizeLinear/DequantizeLinear pairs, else onnx."""
    quantised = any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in proto.graph.node)
    return ONNX_QDQ.name if quantised else ONNX.name
