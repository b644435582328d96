"""sr-export as functions: the pipeline a notebook or another tool calls, and the command line is built on.

    from sr_export import api

    model = api.load_model("imdn", scale=2, weights="official")
    onnx_file = api.export_onnx(model, "imdn_x2.onnx")            # proven against PyTorch, then written
    built = api.build(onnx_file, "cpu", "build/")                 # a profile, a profile path or a runtime name
    report = api.check(built)                                     # .passed, .worst_psnr_db
    quality = api.evaluate(built, "../shared/datasets/Set5")      # .psnr_y, .ssim_y
    timing = api.speed([model, built], ["256x256"])               # side by side, one process

Every function takes what the previous one returns (or a path). Errors are
:class:`~sr_export.core.errors.SrExportError` with a one-line message;
``exit_code`` says how the command line reports them. Nothing here imports
PyTorch until a PyTorch model is actually loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.sizes import Size, as_size

if TYPE_CHECKING:
    from sr_export.bench.build import BuildResult
    from sr_export.bench.checking import CheckReport
    from sr_export.bench.evaluate import EvalReport
    from sr_export.bench.speed import SpeedReport
    from sr_export.bench.suite import SuiteRow
    from sr_export.bench.tune import TuneResult
    from sr_export.export.onnx import ExportOptions
    from sr_export.models.loader import LoadedModel
    from sr_export.runtimes.base import Runner
    from sr_export.targets.profiles import TargetProfile

Say = Callable[[str], Any]

__all__ = ["load_model", "export_onnx", "build", "open_artifact", "open_runner", "check", "evaluate", "speed",
           "bench", "load_target", "runtimes"]


def load_model(model: str, *, scale: int | None = None, weights: str | Path | None = None, **options: Any) -> LoadedModel:
    """A zoo name (``imdn``), ``path/file.py:Class``, ``package.module:Class`` or a TorchScript file, with its weights.

    ``options``: ``kwargs`` (constructor arguments), ``data_range`` (1 or
    255), ``in_channels``, ``pad_to``, ``prototxt`` (Caffe weights) and
    ``app_dir`` (the folder ``package.module:Class`` is imported from first;
    default: the current folder).
    """
    from sr_export.core.model_info import ModelRequest
    from sr_export.models.loader import load_model as load

    known = set(ModelRequest.__dataclass_fields__) - {"model", "scale", "weights"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SrExportError(f"unknown load_model option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return load(ModelRequest(model, scale=scale, weights=str(weights) if weights is not None else None, **options))


def open_artifact(path: str | Path, model: LoadedModel | None = None) -> Artifact:
    """An artifact and its metadata (``model`` describes a file made by another tool)."""
    from sr_export.runtimes.open import open_artifact as opened

    return opened(path, model)


def _artifact(subject: Artifact | str | Path) -> Artifact:
    return subject if isinstance(subject, Artifact) else open_artifact(subject)


def _model(subject: LoadedModel | str) -> LoadedModel:
    return load_model(subject) if isinstance(subject, str) else subject


def export_onnx(model: LoadedModel | str, output: str | Path, *, check: bool = True, say: Say | None = None,
                **options: Any) -> Artifact:
    """The model as an ONNX file at ``output`` (a file or a folder): traced, proven at three sizes, simplified,
    and checked against PyTorch before it is written.

    ``options`` are :class:`~sr_export.export.onnx.ExportOptions` fields:
    ``opset``, ``shape`` (a fixed LR size; default dynamic), ``simplify``,
    ``exporter`` (auto, dynamo, legacy), ``timeout`` (seconds each exporter
    attempt may take, default 300; ``None``: no limit, in this process).
    """
    export = _export_options(options)
    return build(_model(model), "onnxruntime", output, precision="fp32", check=check, say=say, export=export,
                 shape=export.shape)


def _export_options(options: Mapping[str, Any]) -> ExportOptions:
    from sr_export.export.onnx import ExportOptions

    known = set(ExportOptions.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise SrExportError(f"unknown export option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(options)
    if values.get("shape") is not None:
        values["shape"] = as_size(values["shape"])
    return ExportOptions(**values)


def load_target(target: str | Path) -> TargetProfile:
    """A target profile by name or path, or a runtime's defaults by its name."""
    from sr_export.targets.profiles import load_target as loaded

    return loaded(target)


def build(
    source: LoadedModel | Artifact | str | Path,
    target: str | Path,
    output: str | Path,
    *,
    precision: str | None = None,
    calibration: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    shape: Size | str | None = None,
    check: bool = True,
    export: ExportOptions | None = None,
    force: bool = False,
    say: Say | None = None,
) -> Artifact:
    """``source`` built for ``target`` into ``output`` (a folder, or the file to write); returns the artifact written.

    ``target`` is a profile name (``cpu``, ``trt-int8``), a profile path or a
    runtime name (``onnxruntime``, ``tflite``); ``precision``, ``options``
    (over the profile's ``[options]``), ``calibration`` (an INT8 recipe) and
    ``shape`` (the LR size of fixed-size formats; default the profile's
    first size) refine it. Only what passes its check is written: a failed
    check raises :class:`~sr_export.core.errors.CheckFailed`; a runtime that
    is not on this machine raises :class:`~sr_export.core.errors.RuntimeUnavailable`
    after writing what could be proven here (its ``result.artifact``). A file
    in the way that sr-export did not write is replaced only with ``force``.
    """
    return build_steps(source, target, output, precision=precision, calibration=calibration, options=options,
                       shape=shape, check=check, export=export, force=force, say=say).artifact


def build_steps(
    source: LoadedModel | Artifact | str | Path,
    target: str | Path | TargetProfile,
    output: str | Path,
    *,
    precision: str | None = None,
    calibration: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    shape: Size | str | None = None,
    check: bool = True,
    export: ExportOptions | None = None,
    model: LoadedModel | None = None,
    allow_calibration_overlap: bool = False,
    force: bool = False,
    say: Say | None = None,
) -> BuildResult:
    """:func:`build`, returning every file written with the check it passed (what the command line reports)."""
    from sr_export.bench.build import BuildRequest
    from sr_export.bench.build import build as run_build
    from sr_export.models.loader import LoadedModel
    from sr_export.targets.profiles import TargetProfile

    profile = target if isinstance(target, TargetProfile) else load_target(target)
    profile = replace(profile, options={**profile.options, **dict(options or {})},
                      precision=precision or profile.precision)
    runtime = profile.validate()
    size = as_size(shape) if shape is not None else None
    if size is None and runtime.fixed_size:
        size = profile.input_sizes[0]
    request = BuildRequest(profile, profile.precision, profile.runtime_options(), shape=size,
                           calibration=str(calibration) if calibration is not None else None, export=export,
                           check=check, allow_calibration_overlap=allow_calibration_overlap, force=force)
    if not isinstance(source, (LoadedModel, Artifact)):
        source = open_artifact(source, model)
    return run_build(source, request, Path(output), model=model, say=say)


def open_runner(artifact: Artifact | str | Path, *, runtime: str | None = None, threads: int | None = None,
                tile_overlap: int | None = None, python: str | Path | None = None) -> Runner:
    """An opened runner (a context manager) for any artifact at any input size: ``runner.infer(nchw) -> nchw``.

    ``runtime`` picks among the runtimes that read the artifact's format
    (default: the one it was built for); ``python`` runs it with that Python environment's runtime.
    """
    from sr_export.runtimes.open import open_runner as opened

    return opened(_artifact(artifact), runtime=runtime, threads=threads, tile_overlap=tile_overlap,
                  python=Path(python) if python is not None else None)


def check(
    artifact: Artifact | str | Path,
    *,
    against: Artifact | str | Path | LoadedModel | None = None,
    images: str | Path | None = None,
    sizes: Sequence[Size | str] | None = None,
    precision: str | None = None,
    runtime: str | None = None,
    threads: int | None = None,
    tile_overlap: int | None = None,
    progress: Callable[[], Any] | None = None,
    runtime_python: str | Path | None = None,
) -> CheckReport:
    """Parity of ``artifact`` against its PyTorch model (rebuilt from its metadata, weights verified), or against
    another artifact; INT8 artifacts are judged on the built-in images' Y-PSNR drop as well. ``runtime_python``
    runs the artifact with that Python environment's runtime (a board's older one) instead of this one's."""
    from sr_export.bench.checking import check_inputs, check_runner, pytorch_runner, reference_model
    from sr_export.models.loader import LoadedModel

    artifact = _artifact(artifact)
    meta = artifact.metadata
    if against is None or isinstance(against, LoadedModel):
        model = against if against is not None else reference_model(meta, artifact.path)
        reference: Any = pytorch_runner(model, threads)
        info = model.info
    else:
        reference = open_runner(against, threads=threads, tile_overlap=tile_overlap)
        info = meta.model_info()
    with open_runner(artifact, runtime=runtime, threads=threads, tile_overlap=tile_overlap,
                     python=runtime_python) as candidate:
        inputs = check_inputs(artifact, info, candidate, images=Path(images) if images is not None else None,
                              sizes=[as_size(s) for s in sizes] if sizes is not None else None)
        return check_runner(artifact, candidate, reference, info, inputs, precision=precision, progress=progress)


def evaluate(
    subject: Artifact | str | Path | LoadedModel,
    dataset: str | Path = "builtin",
    *,
    protocol: str = "auto",
    runtime: str | None = None,
    threads: int | None = None,
    tile_overlap: int | None = None,
    progress: Callable[[], Any] | None = None,
) -> EvalReport:
    """PSNR and SSIM (Y and RGB) on a dataset folder (``HR/``, optional ``LR_bicubic/X{s}/``) or ``builtin``.

    ``protocol``: ``standard``, ``idn`` (the IDN authors' MATLAB test) or
    ``auto`` (idn for Y-channel models). The report's ``psnr_y`` / ``ssim_y``
    are the means over the dataset.
    """
    from sr_export.bench.evaluate import evaluate as evaluate_standard
    from sr_export.data.datasets import load_dataset
    from sr_export.models.loader import LoadedModel

    if protocol not in ("auto", "standard", "idn"):
        raise SrExportError(f"protocol must be auto, standard or idn, not '{protocol}'")
    if isinstance(subject, LoadedModel):
        from sr_export.runtimes.pytorch import PyTorchRunner

        runner: Runner = PyTorchRunner(subject, threads)
        info = subject.info
    else:
        artifact = _artifact(subject)
        runner = open_runner(artifact, runtime=runtime, threads=threads, tile_overlap=tile_overlap)
        info = artifact.metadata.model_info()
    pairs = load_dataset(str(dataset), info.scale)
    chosen = protocol if protocol != "auto" else ("idn" if info.color == "y" else "standard")
    with runner:
        if chosen == "idn":
            from sr_export.bench.idn_protocol import evaluate_luma

            return evaluate_luma(runner, info, pairs, dataset=str(dataset), progress=progress)  # type: ignore[return-value]
        return evaluate_standard(runner, info, pairs, dataset=str(dataset), progress=progress)


def speed(
    subjects: Iterable[Artifact | str | Path | LoadedModel | Runner] | Mapping[str, Any],
    sizes: Sequence[Size | str] = ((256, 256),),
    *,
    warmup: int | None = None,
    runs: int | None = None,
    threads: int | None = None,
    runtime: str | None = None,
    tile_overlap: int | None = None,
    progress: Callable[[], Any] | None = None,
) -> SpeedReport:
    """Latency of every subject at every LR size, runs interleaved in this process (compare the ratios).

    Subjects are artifacts (or paths), loaded models (PyTorch eager) or
    runners; a mapping gives them labels. ``warmup`` and ``runs`` default to
    the ``cpu`` profile's.
    """
    from sr_export.bench.speed import measure
    from sr_export.models.loader import LoadedModel
    from sr_export.runtimes.base import Runner
    from sr_export.runtimes.pytorch import PyTorchRunner

    default = load_target("cpu")
    items = list(subjects.items()) if isinstance(subjects, Mapping) else [(None, s) for s in subjects]
    if not items:
        raise SrExportError("nothing to time: give a model, an artifact or a runner")
    runners: dict[str, Runner] = {}
    info = None
    for label, subject in items:
        if isinstance(subject, LoadedModel):
            runner: Runner = PyTorchRunner(subject, threads)
            name, info = label or "pytorch", info or subject.info
        elif isinstance(subject, Runner):
            runner, name = subject, label or subject.name
        else:
            artifact = _artifact(subject)
            runner = open_runner(artifact, runtime=runtime, threads=threads, tile_overlap=tile_overlap)
            name, info = label or f"{runtime or artifact.metadata.backend}:{artifact.path.name}", info or \
                artifact.metadata.model_info()
        runners[name] = runner
    if info is None:
        raise SrExportError("runners alone do not say what model they run; add the model or an artifact")
    count = default.runs if runs is None else runs
    if count < 1:
        raise SrExportError("runs must be at least 1")
    return measure(runners, info, [as_size(s) for s in sizes], warmup=default.warmup if warmup is None else warmup,
                   runs=count, threads=threads, progress=progress)


def bench(
    models: Sequence[str] | None = None,
    *,
    suite: str | Path = "default",
    targets: Sequence[str | Path] = ("cpu",),
    output: str | Path = "sr-bench-out",
    scale: int | None = None,
    weights: str | None = None,
    dataset: str | None = None,
    sizes: Sequence[Size | str] | None = None,
    warmup: int | None = None,
    runs: int | None = None,
    exporter: str = "auto",
    say: Say | None = None,
) -> dict[str, list[SuiteRow]]:
    """A benchmark suite (or ``models``) on target profiles, as ``sr-bench`` runs it: built exactly as each
    profile says, proven, evaluated and timed. Returns the rows per target; stores nothing in the history."""
    from sr_export.bench.suite import Suite, SuiteModel, load_suite, run_model

    say = say or (lambda _message: None)
    profiles = [load_target(t) for t in targets]
    if models:
        plan = Suite(name="matrix", models=tuple(SuiteModel(m, scale, weights) for m in models),
                     dataset=dataset or "builtin")
    else:
        plan = load_suite(str(suite))
        plan = replace(plan, dataset=dataset or plan.dataset)
    plan = replace(plan, speed_sizes=tuple(as_size(s) for s in sizes) if sizes else plan.speed_sizes,
                   warmup=plan.warmup if warmup is None else warmup, runs=plan.runs if runs is None else runs)
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    cache: dict[Any, Any] = {}
    rows: dict[str, list[SuiteRow]] = {}
    for profile in profiles:
        for entry in plan.models:
            rows.setdefault(profile.name, []).append(
                run_model(entry, plan, profile, folder, say, exporter=exporter, cache=cache))
    return rows


def tune(
    model: str,
    target: str | Path = "cpu",
    output: str | Path = "sr-bench-tune",
    *,
    weights: str | None = None,
    scale: int | None = None,
    max_drop: float = 0.10,
    dataset: str = "builtin",
    sizes: Sequence[Size | str] | None = None,
    warmup: int | None = None,
    runs: int | None = None,
    candidates: Sequence[str | Path] | None = None,
    recipes: Sequence[str] | None = None,
    tiles: Sequence[Size | str] | None = None,
    history: str | Path | None = None,
    store: bool = True,
    say: Say | None = None,
    on_start: Callable[[int], Any] | None = None,
    advance: Callable[[], Any] | None = None,
) -> TuneResult:
    """The fastest artifact for ``target``'s device within ``max_drop`` dB of the FP32 model's Y-PSNR on
    ``dataset``, found by building, proving, evaluating and timing every candidate (every shipped profile for
    that device, or ``candidates``; INT8 ones once per recipe in ``recipes``, default the profile's own, ``default``
    and ``mixed``; fixed-size ones once per tile in
    ``tiles``). Returns the table (``outcomes``, with the Pareto front marked) and ``choice``; the timed
    candidates are stored in the history unless ``store`` is false. Copy the choice with
    :func:`sr_export.bench.tune.copy_choice`."""
    from sr_export.bench.tune import candidates_for
    from sr_export.bench.tune import tune as search

    anchor = load_target(target)
    profiles = [load_target(c) for c in candidates] if candidates else None
    chosen = candidates_for(anchor, profiles=profiles, recipes=tuple(recipes) if recipes is not None else None,
                            tiles=[as_size(t) for t in tiles or ()])
    return search(model, anchor, Path(output), weights=weights, scale=scale, max_drop=max_drop, dataset=dataset,
                  sizes=[as_size(s) for s in sizes] if sizes else None, warmup=warmup, runs=runs, candidates=chosen,
                  history=Path(history) if history is not None else None, store=store, say=say, on_start=on_start,
                  advance=advance)


def runtimes() -> list[dict[str, Any]]:
    """Every registered runtime: what it consumes, reads and writes, its precisions, options, extra and status."""
    from sr_export.runtimes.registry import describe_registry

    return describe_registry()
