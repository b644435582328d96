"""Building for a target and proving every file before it is written.

What ``sr-export build`` (and its per-runtime aliases ``onnx``, ``tflite``,
``coreml``, ``trt``), ``sr_export.api.build`` and every sr-bench run share, so
a profile means the same thing everywhere. The steps:

1. the source: a loaded model, or an artifact (its PyTorch reference rebuilt
   from its metadata for the checks);
2. for runtimes that build from ONNX, a proven ONNX export (kept beside the
   result when the runtime keeps its source, as TensorRT does);
3. the runtime's *prepared* graph when it is one a CPU can prove first
   (TensorRT's FP16 or QDQ ONNX), checked and written;
4. the runtime's own artifact, checked and written when this machine can run
   it; where it cannot build it at all (TensorRT without a GPU), the build
   stops with exit status 4 after step 3.

Everything is made in a staging folder beside the output and moved into place
only after its check passes: a failed check leaves nothing behind. INT8 builds
calibrate on one :class:`~sr_export.quantize.calibration_data.CalibrationSet`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.bench.checking import CheckReport, check_against_model, reference_model
from sr_export.core.artifacts import (
    Artifact,
    ArtifactMetadata,
    embed_in_onnx,
    read_metadata,
    sidecar_path,
    write_sidecar,
)
from sr_export.core.errors import CheckFailed, RuntimeUnavailable, SrExportError, WriteFailed
from sr_export.core.formats import ONNX, ONNX_QDQ
from sr_export.core.provenance import check_output, record_written
from sr_export.core.sizes import Size
from sr_export.runtimes.base import Runtime
from sr_export.runtimes.registry import all_formats, runtimes_reading
from sr_export.targets.profiles import TargetProfile

if TYPE_CHECKING:
    from sr_export.export.onnx import ExportOptions
    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet

Say = Callable[[str], Any]
# Writes that fail for want of room: whatever file it was, the user asked for ``output``.
_DISK_FULL = (errno.EFBIG, errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class BuildRequest:
    """What to build: a target profile's runtime, precision and options, for one input size if it needs one."""

    target: TargetProfile
    precision: str
    options: Any  # the runtime's options dataclass
    shape: Size | None = None  # the LR size of fixed-size artifacts (and of a fixed ONNX export)
    calibration: str | None = None  # INT8 recipe; default: the options' own (or "default")
    export: ExportOptions | None = None  # how a model is exported to ONNX first (runtimes that build from ONNX)
    check: bool = True  # prove every file before it is written
    until: str = "artifact"  # "prepared": stop at the graph the runtime compiles (what trtexec takes on a board)
    allow_calibration_overlap: bool = False  # calibrate on evaluation images anyway (flagged in the result)
    force: bool = False  # replace files in the way that sr-export did not write


@dataclass(frozen=True)
class BuildStep:
    artifact: Artifact  # where it was written
    check: CheckReport | None  # None: not checked (--no-check) or not runnable here
    role: str  # "export", "prepared" or "artifact"


@dataclass
class BuildResult:
    artifact: Artifact | None = None  # the last file written (the runtime's own artifact when it was built)
    steps: list[BuildStep] = field(default_factory=list)
    calibration_overlap: list[str] = field(default_factory=list)  # calibration images that are evaluation images

    def step(self, role: str) -> BuildStep | None:
        return next((s for s in self.steps if s.role == role), None)


class BuildCheckFailed(CheckFailed):
    """A built file failed its check; nothing of it was written."""

    def __init__(self, report: CheckReport, role: str, destination: Path, result: BuildResult) -> None:
        super().__init__(f"{report.failure() or 'parity check failed'}; {destination} was not written")
        self.report, self.role, self.destination, self.result = report, role, destination, result


class BuildStopped(RuntimeUnavailable):
    """The runtime is not on this machine: what could be made and proven here was written (``result``)."""

    def __init__(self, cause: RuntimeUnavailable, result: BuildResult) -> None:
        super().__init__(str(cause))
        self.result = result


def calibration_set(request: BuildRequest, runtime: Runtime, info: Any) -> CalibrationSet | None:
    """The one calibration set an INT8 build calibrates on (None for float builds)."""
    if request.precision != "int8":
        return None
    recipe_name = request.calibration or getattr(request.options, "calibration", None)
    if recipe_name is None:
        if runtime.name == "tensorrt":
            return None  # TensorRT builds INT8 from a QDQ ONNX given as the source
        recipe_name = "default"
    from sr_export.quantize.calibration_data import CalibrationSet, check_calibration_images
    from sr_export.quantize.recipes import load_recipe

    recipe = load_recipe(recipe_name)
    check_calibration_images(recipe, info.scale)  # a bad image folder fails before the export, not after it
    return CalibrationSet(recipe, info)


def calibration_overlap(calibration: CalibrationSet | None, request: BuildRequest, scale: int) -> list[str]:
    """Calibration images that are also the images INT8 builds are checked on: refused, or with
    ``allow_calibration_overlap``, returned to be flagged."""
    if calibration is None:
        return []
    from sr_export.data.datasets import BUILTIN
    from sr_export.quantize.calibration_data import check_no_overlap

    return check_no_overlap(calibration.recipe, [BUILTIN], scale, allow=request.allow_calibration_overlap)


def build(
    source: LoadedModel | Artifact,
    request: BuildRequest,
    output: Path,
    *,
    model: LoadedModel | None = None,
    say: Say | None = None,
) -> BuildResult:
    """Build ``source`` for ``request`` into ``output`` (a folder, or the final file's path).

    ``model`` is the PyTorch reference when ``source`` is an artifact made
    elsewhere (default: rebuilt from its metadata). Raises
    :class:`BuildCheckFailed` (exit 1, nothing of that step written) or
    :class:`BuildStopped` (exit 4, the proven steps written).
    """
    from sr_export.models.loader import LoadedModel

    say = say or (lambda _message: None)
    runtime = request.target.require_backend()
    runtime.check_precision(request.precision)
    output = Path(output)
    if isinstance(source, LoadedModel):
        model = source
    elif model is None and (request.check or runtime.consumes == "pytorch"):
        say("rebuilding the PyTorch reference from the artifact's metadata")
        model = reference_model(source.metadata, source.path)
    if not isinstance(source, LoadedModel):
        check_source_format(source, runtime)
    info = model.info if model is not None else source.metadata.model_info()
    calibration = calibration_set(request, runtime, info)
    overlap = calibration_overlap(calibration, request, info.scale)
    folder = output if _is_folder(output, runtime) else output.parent
    shape = request.shape or (request.export.shape if request.export else None)
    check_outputs(planned_outputs(source, runtime, output, folder, shape), force=request.force)
    steps = _Steps(runtime, request, model, say)
    steps.result.calibration_overlap = overlap
    with _staging(folder) as stage:
        steps.stage = stage
        try:
            if runtime.consumes == "pytorch":
                assert model is not None
                say(f"converting {info.name} x{info.scale} for {runtime.name} ({request.precision})")
                built = runtime.from_model(model, stage, precision=request.precision, shape=request.shape,
                                           options=request.options, calibration=calibration)
                steps.prove_and_commit(built, "artifact", output)
                return steps.result
            if isinstance(source, LoadedModel):
                onnx = _export(source, request, stage, say)
                if runtime.keeps_export:  # proven at three sizes as it was exported
                    onnx = steps.commit(onnx, "export", folder, None)
            else:
                onnx = source
            say(f"preparing the {request.precision} graph for {runtime.name}")
            prepared = runtime.prepare(onnx, stage, precision=request.precision, options=request.options,
                                       calibration=calibration)
            if prepared.path != onnx.path:
                prepared = steps.prove_and_commit(prepared, "prepared", folder)
            elif _prepares(runtime) and not isinstance(source, LoadedModel):
                # The file given is already the graph the runtime compiles: proven where it lies, by its
                # outputs (sr-export check judges it on a dataset too).
                prepared = steps.prove_and_commit(prepared, "prepared", prepared.path, dataset_check=False)
            if request.until == "prepared":
                if not steps.result.steps or steps.result.steps[-1].artifact.path != prepared.path:
                    steps.commit(prepared, "prepared", folder, None)  # the export itself, proven as it was made
                return steps.result
            say(f"building for {runtime.name} ({request.precision})")
            built = runtime.build(prepared, stage, precision=request.precision, options=request.options,
                                  calibration=calibration)
            if not steps.result.steps or built.path != steps.result.steps[-1].artifact.path:
                steps.prove_and_commit(built, "artifact", output)
            return steps.result
        except RuntimeUnavailable as exc:
            if not steps.result.steps:
                raise
            raise BuildStopped(exc, steps.result) from exc
        except WriteFailed as exc:  # a staged file: name the one the user asked for
            if Path(str(exc.path)).parent != stage:
                raise
            raise WriteFailed(output, exc.reason) from exc
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            raise WriteFailed(output, exc.strerror or str(exc)) from exc


def planned_outputs(source: LoadedModel | Artifact, runtime: Runtime, output: Path, folder: Path,
                    request_shape: tuple[int, int] | None = None) -> list[Path]:
    """The paths a build will write that are known before it starts (the final file, and the ONNX export a
    runtime keeps), so that one in the way is refused before any work."""
    from sr_export.models.loader import LoadedModel

    planned = [folder] if folder == output else [folder, output, sidecar_path(output)]
    if isinstance(source, LoadedModel) and runtime.consumes == "onnx" and runtime.keeps_export:
        from sr_export.export.onnx import default_filename

        planned.append(folder / default_filename(source, request_shape))
    return planned


def check_outputs(paths: list[Path], *, force: bool) -> None:
    """Refuse what must not be replaced (see :func:`check_output`); a folder to write into must be one."""
    formats = all_formats()
    folder_suffixes = {s for f in formats.values() if f.directory for s in f.suffixes}
    for index, path in enumerate(paths):
        if index == 0:  # the folder the outputs go into
            if path.exists() and not path.is_dir():
                raise SrExportError(f"cannot write into {path}: it is a file, not a folder; give a folder or a "
                                    "file name with the format's suffix (-o)")
            continue
        check_output(path, force=force, folder=path.suffix.lower() in folder_suffixes)


def check_source_format(source: Artifact, runtime: Runtime) -> None:
    """An artifact given to build from must be in the format the runtime builds from (before any work)."""
    if runtime.consumes == "onnx" and source.metadata.format not in (ONNX.name, ONNX_QDQ.name):
        raise SrExportError(f"{runtime.name} builds from ONNX, and {source.path} is a {source.metadata.format} file; "
                            "build from its model (--model) or from its ONNX export (sr-export onnx)")


@dataclass
class _Steps:
    """The steps of one build so far, and how each is proven and moved into place."""

    runtime: Runtime
    request: BuildRequest
    model: LoadedModel | None
    say: Say
    stage: Path | None = None
    result: BuildResult = field(default_factory=BuildResult)

    def prove_and_commit(self, artifact: Artifact, role: str, output: Path, *, dataset_check: bool = True) -> Artifact:
        """Check ``artifact`` where a runtime that reads it is installed, then move (or copy) it to ``output``."""
        report = None
        if self.request.check and self.model is not None:
            runner_runtime = runnable_here(artifact.metadata)
            if runner_runtime is not None:
                own = runner_runtime == self.runtime.name
                report = check_against_model(artifact, self.model, runtime=runner_runtime,
                                             runtime_sizes=self.runtime.check_sizes(artifact) if own else None,
                                             dataset_check=dataset_check and (self.runtime.dataset_check or not own),
                                             say=self.say)
                if not report.passed:
                    raise BuildCheckFailed(report, role, _destination(artifact, output), self.result)
        return self.commit(artifact, role, output, report)

    def commit(self, artifact: Artifact, role: str, output: Path, report: CheckReport | None) -> Artifact:
        """Put the artifact's files in place (a file given as the source and already there stays untouched);
        what is written records the runtime it was built for and the runtimes that can run it."""
        destination = _destination(artifact, output)
        if destination.resolve() == artifact.path.resolve():
            committed = artifact
        else:
            assert self.stage is not None
            if artifact.path.parent != self.stage:  # a source elsewhere: copied in, so it is never changed
                for source in _files_of(artifact.path):
                    _copy(source, self.stage / source.name)
                artifact = Artifact(self.stage / artifact.path.name, artifact.metadata, artifact.details)
            metadata = self.stamped(artifact.metadata, role, report)
            if metadata != artifact.metadata:
                _write_metadata(artifact.path, metadata)
            destination.parent.mkdir(parents=True, exist_ok=True)
            for source in _files_of(artifact.path):
                _replace(source, _renamed(source, artifact.path, destination), force=self.request.force)
            committed = Artifact(destination, metadata, artifact.details)
        self.result.steps.append(BuildStep(committed, report, role))
        self.result.artifact = committed
        return committed

    def stamped(self, metadata: ArtifactMetadata, role: str, report: CheckReport | None = None) -> ArtifactMetadata:
        """The metadata written with the file: who builds and runs it, and (fixed-size files) how exact tiling
        measured when it was proven."""
        from sr_export.checks.parity import tiling_measurement

        readers = runtimes_reading(metadata.format)
        backend = self.runtime.name if role == "artifact" and self.runtime.name in readers else metadata.backend
        tiling = tiling_measurement(report.parity) if report is not None else {}
        return replace(metadata, backend=backend, runtimes=tuple(readers), tiling=tiling or metadata.tiling)


def _prepares(runtime: Runtime) -> bool:
    """Whether the runtime compiles a graph of its own preparing (TensorRT), not the export itself."""
    return type(runtime).prepare is not Runtime.prepare


def _is_folder(output: Path, runtime: Runtime) -> bool:
    """Whether ``output`` names a folder (not a file with one of the runtime's formats' suffixes)."""
    formats = all_formats()
    suffixes = {s for name in runtime.writes if name in formats for s in formats[name].suffixes}
    return output.suffix.lower() not in suffixes


def _export(model: LoadedModel, request: BuildRequest, stage: Path, say: Say) -> Artifact:
    from sr_export.export.onnx import ExportOptions, save_export

    options = request.export or ExportOptions()
    if request.shape is not None and options.shape is None:
        options = replace(options, shape=request.shape)
    exporters = "dynamo, then legacy" if options.exporter == "auto" else options.exporter
    say(f"exporting {model.info.name} x{model.info.scale} to ONNX ({exporters}; opset {options.opset})")
    return save_export(model, options, stage, say=say)


def runnable_here(metadata: ArtifactMetadata) -> str | None:
    """The runtime that runs this artifact on this machine (its own when installed, else another reader), if any."""
    from sr_export.runtimes.registry import get_runtime

    for name in dict.fromkeys([metadata.backend, *metadata.runtimes, *runtimes_reading(metadata.format)]):
        try:
            runtime = get_runtime(name)
        except SrExportError:
            continue
        if metadata.format in runtime.reads and not runtime.missing_packages():
            return name
    return None


def _destination(artifact: Artifact, output: Path) -> Path:
    return output if output.suffix.lower() == artifact.path.suffix.lower() else output / artifact.path.name


def _write_metadata(path: Path, metadata: ArtifactMetadata) -> None:
    if path.suffix.lower() == ".onnx" and read_metadata(path) is not None and not sidecar_path(path).is_file():
        import onnx

        proto = onnx.load(str(path))
        embed_in_onnx(proto, metadata)
        onnx.save(proto, str(path))
    else:
        write_sidecar(path, metadata)


def _files_of(path: Path) -> list[Path]:
    """The artifact and what belongs to it under its name (sidecar, TensorRT manifest, a format's companions)."""
    formats = all_formats()
    companions = [path.with_suffix(s) for f in formats.values() if path.suffix.lower() in f.suffixes
                  for s in f.companions]
    belonging = [path.with_name(path.name + suffix) for suffix in (".json", ".manifest.json")] + companions
    return [*(p for p in belonging if p.exists()), path]  # the artifact itself last: it appears once all is in place


def _renamed(file: Path, artifact: Path, destination: Path) -> Path:
    """Where one of ``artifact``'s files goes when the artifact goes to ``destination``: a sidecar
    (``<name>.json``) follows the whole name, a companion (``<stem>.bin``) the stem."""
    if file.name.startswith(artifact.name):
        return destination.parent / (destination.name + file.name[len(artifact.name):])
    return destination.parent / (destination.stem + file.name[len(artifact.stem):])


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


def _replace(source: Path, target: Path, *, force: bool = False) -> None:
    """Move a staged file or folder onto ``target`` by one rename (a folder in the way is swapped out first);
    what is in the way must be sr-export's, or ``force`` given (:func:`check_output`)."""
    check_output(target, force=force, folder=source.is_dir())
    if source.is_dir():
        old = target.parent / f".{target.name}.{secrets.token_hex(4)}.old"
        if target.exists():
            os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)
    record_written(target)


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[Path]:
    """A hidden folder beside the outputs (same file system, so moving out of it is a rename), always removed."""
    stage = folder / f".sr-export-build.{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
    except OSError as exc:  # e.g. a read-only or virtual file system (/proc): a folder nothing can be written to
        raise SrExportError(f"cannot write into {folder}: {exc.strerror or exc}; give -o a folder you can "
                            "write to") from exc
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
