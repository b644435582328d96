"""Benchmark suites (``benchmarks/suites/*.toml``) and the run behind plain ``sr-bench``.

For every model of a suite: export to ONNX, build for the target, check
parity against PyTorch, profile, time against PyTorch eager side by side, and
evaluate on the suite's images; one row per model.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.bench.history import RunRecord
from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.core.resources import read_toml_resource
from sr_export.core.sizes import parse_chw
from sr_export.export.budget import DEFAULT_EXPORT_TIMEOUT_S
from sr_export.runtimes.options import options_dict
from sr_export.targets.profiles import Checker, TargetProfile


@dataclass(frozen=True)
class SuiteModel:
    model: str
    scale: int | None = None
    weights: str | None = None


@dataclass(frozen=True)
class Suite:
    """Models to run and how to measure them; timing settings left out (None) come from each target profile."""

    name: str
    models: tuple[SuiteModel, ...]
    description: str = ""
    profile_input: tuple[int, int, int] = (3, 256, 256)
    speed_sizes: tuple[tuple[int, int], ...] | None = None
    warmup: int | None = None
    runs: int | None = None
    threads: int | None = None
    dataset: str = "builtin"

    def timing(self, profile: TargetProfile) -> Timing:
        """The sizes, warm-up, runs and threads on ``profile``: the suite's where it sets them, else the profile's."""
        return Timing(
            sizes=self.speed_sizes if self.speed_sizes is not None else profile.input_sizes,
            warmup=self.warmup if self.warmup is not None else profile.warmup,
            runs=self.runs if self.runs is not None else profile.runs,
            threads=self.threads if self.threads is not None else profile.threads,
        )


@dataclass(frozen=True)
class Timing:
    sizes: tuple[tuple[int, int], ...]
    warmup: int
    runs: int
    threads: int | None


_SUITE_KEYS = {"name", "description", "models", "profile", "speed", "eval"}
_MODEL_KEYS = {"model", "scale", "weights"}


def load_suite(name_or_path: str) -> Suite:
    """A suite by name or path, validated like a profile: an unknown key or a bad value names itself and the file."""
    data, path = read_toml_resource(name_or_path, "suites", what="suite")
    check = Checker(f" in {path}")
    check.keys(data, _SUITE_KEYS, "")
    entries = data.get("models")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise SrExportError(f"models in {path} must be a non-empty list of [[models]] tables")
    models = []
    for index, entry in enumerate(entries):
        check.keys(entry, _MODEL_KEYS, f"models[{index}].")
        if "model" not in entry:
            raise SrExportError(f"models[{index}] in {path} names no model")
        scale = check.integer(entry, "scale", f"models[{index}].", 1, default=0) or None
        weights = check.string(entry, "weights", f"models[{index}].", default="") or None
        models.append(SuiteModel(check.string(entry, "model", f"models[{index}].", default=""), scale, weights))
    profile = check.table(data, "profile", {"input"})
    speed = check.table(data, "speed", {"input_sizes", "warmup", "runs", "threads"})
    evaluation = check.table(data, "eval", {"dataset"})
    try:
        profile_input = parse_chw(check.string(profile, "input", "profile.", default="3x256x256"), 3)
    except SrExportError as exc:
        raise SrExportError(f"profile.input in {path}: {exc}") from exc
    sizes = None
    if "input_sizes" in speed:
        sizes = check.sizes(speed, "input_sizes", "speed.")
    return Suite(
        name=check.string(data, "name", "", default=path.stem),
        description=check.string(data, "description", "", default=""),
        models=tuple(models),
        profile_input=profile_input,
        speed_sizes=sizes,
        warmup=check.integer(speed, "warmup", "speed.", 0, default=-1) if "warmup" in speed else None,
        runs=check.integer(speed, "runs", "speed.", 1, default=1) if "runs" in speed else None,
        threads=(check.integer(speed, "threads", "speed.", 0, default=0) or None) if "threads" in speed else None,
        dataset=check.string(evaluation, "dataset", "eval.", default="builtin"),
    )


@dataclass
class SuiteRow:
    model: str
    scale: int
    artifact: str
    params: int
    aim_flops: int | None
    graph_flops: int | None
    parity_passed: bool | None  # None: the artifact cannot run on this machine (checked on the device instead)
    parity_worst_psnr_db: float | None
    speed: dict[str, Any]
    speedup: float | None
    psnr_y: float | None
    ssim_y: float | None
    details: dict[str, Any] = field(default_factory=dict)
    record: RunRecord | None = field(default=None, repr=False)


def target_label(profile: TargetProfile) -> str:
    return f"{profile.backend} ({profile.name})"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import torch

    return {
        "sr_export": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": str(os.cpu_count()),
        "system": platform.platform(),
    }


def device_runtime(profile: TargetProfile) -> str:
    """The runtime the device runner times the profile with; checked (runtime, precision, options, device
    session) before any work is done."""
    runtime = profile.validate()
    if runtime.device_session is None:
        raise SrExportError(f"target '{profile.name}': the device runner cannot time {profile.backend} artifacts; "
                            f"time them where their runtime lives (sr-bench speed --artifact on that machine)")
    return runtime.name


def device_job(profile: TargetProfile, artifacts: Sequence[Artifact], timing: Timing) -> tuple[dict[str, Any],
                                                                                         list[Path]]:
    """What the device runner is sent for ``profile``: the job (session, sizes, counts, the runtime's own
    parameters such as trtexec's command lines) and the files it needs. ``artifacts`` are what was built:
    one per size for fixed-size runtimes."""
    from sr_export.bench.remote import job_document

    runtime = profile.require_backend()
    first = artifacts[0]
    info = first.metadata.model_info()
    plan = [(size, a.path.name) for size, a in zip(timing.sizes, artifacts)] if runtime.fixed_size \
        else [(size, first.path.name) for size in timing.sizes]
    job = job_document(runtime=profile.backend, artifact=first.path.name, precision=profile.precision,
                       sizes=timing.sizes, warmup=timing.warmup, runs=timing.runs, threads=timing.threads,
                       scale=info.scale, in_channels=info.in_channels, data_range=info.data_range,
                       input_name=first.metadata.input_name, plan=plan,
                       session_params=runtime.device_job(first, profile.runtime_options()))
    return job, list(dict.fromkeys(path for a in artifacts for path in artifact_files(a)))


def artifact_files(artifact: Artifact) -> tuple[Path, ...]:
    """The files a runtime needs to open ``artifact``: the file and its format's companions (an OpenVINO IR's
    .bin beside its .xml)."""
    from sr_export.runtimes.registry import all_formats

    fmt = all_formats().get(artifact.metadata.format)
    return fmt.files(artifact.path) if fmt is not None else (artifact.path,)


def tool_git_commit() -> str | None:
    """The sr-export checkout's commit, when it runs from one."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


@contextmanager
def _released(lock: Any) -> Iterator[None]:
    """Let go of ``lock`` (held by the caller) for the duration; take it back after."""
    if lock is None:
        yield
        return
    lock.release()
    try:
        yield
    finally:
        lock.acquire()


def _sha256(path: Path) -> str:
    from sr_export.core.io import content_sha256

    return content_sha256(path)


@dataclass
class PreparedRun:
    """One model built for one target, proven and evaluated on this machine: everything but the timing."""

    entry: SuiteModel
    profile: TargetProfile
    timing: Timing
    model: Any  # LoadedModel
    complexity: Any  # ModelComplexity
    built: list[Any]  # BuildResult, one per size for fixed-size runtimes
    artifact: Artifact
    artifact_sha256: str
    proof: Any  # the CheckReport the build passed (None: the runtime is not here; the device proves it)
    quality: Any  # EvalReport on the suite's dataset (None without a proof)
    sample: bytes | None

    @property
    def label(self) -> str:
        return f"{self.model.info.name} x{self.model.info.scale}"


def run_model(
    entry: SuiteModel,
    suite: Suite,
    profile: TargetProfile,
    out_dir: Path,
    step: Callable[[str], None],
    *,
    exporter: str = "auto",
    export_timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
    batch: str = "",
    cache: dict[Any, Any] | None = None,
    local_work: Any = None,
) -> SuiteRow:
    """The whole pipeline for one model on one target; ``step`` is told what is happening now.

    The artifact is built exactly as ``sr-export build --target PROFILE`` builds
    it (runtime, precision, options, calibration; one file per size for
    fixed-size formats) and proven against PyTorch; quality is evaluated on
    this machine; timing runs in the device runner with the runtime's own
    device session, on this machine or on the profile's SSH device, so local
    and remote numbers come from the same code. PyTorch eager is timed
    alongside only for local targets, where the ratio means something.
    ``cache`` carries models, exports and checks between the targets of one matrix run.
    ``local_work``: a lock the caller holds for this machine's share of the work; it is let go while the
    device times, so several devices time at once.
    """
    prepared = prepare_run(entry, suite, profile, out_dir, step, exporter=exporter, export_timeout=export_timeout,
                           cache=cache)
    return time_on_device(prepared, suite, step, batch=batch, local_work=local_work)


def prepare_run(
    entry: SuiteModel,
    suite: Suite,
    profile: TargetProfile,
    out_dir: Path,
    step: Callable[[str], None],
    *,
    exporter: str = "auto",
    export_timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
    cache: dict[Any, Any] | None = None,
) -> PreparedRun:
    """:func:`run_model` up to the timing: load, export and profile (once per model in ``cache``), build as the
    profile says, prove, evaluate on the suite's dataset (once per artifact)."""
    from sr_export.bench.build import BuildRequest, BuildStopped, build
    from sr_export.bench.evaluate import evaluate
    from sr_export.bench.sample import render_sample
    from sr_export.data.datasets import load_dataset
    from sr_export.runtimes.open import open_runner

    device_runtime(profile)
    runtime = profile.require_backend()
    options = profile.runtime_options()
    timing = suite.timing(profile)
    cache = cache if cache is not None else {}
    label = f"{entry.model} x{entry.scale or '?'}"
    load_and_export(entry, suite, out_dir, step, exporter=exporter, export_timeout=export_timeout, cache=cache)
    model, onnx_artifact, complexity = cache[entry]
    info = model.info
    label = f"{info.name} x{info.scale}"

    # What the device runs: the runtime's artifact, one per size for fixed-size formats, or (trtexec)
    # the prepared graph the board builds its engine from.
    shapes = list(timing.sizes) if runtime.fixed_size else [None]
    built = []
    for shape in shapes:
        request = BuildRequest(profile, profile.precision, options, shape=shape,
                               until=runtime.device_session.takes if runtime.device_session else "artifact")
        where = f" at {shape[0]}x{shape[1]}" if shape else ""
        step(f"{label}: building for {profile.backend} {profile.precision}{where}")
        source = model if runtime.consumes == "pytorch" else onnx_artifact
        key = ("built", profile.backend, profile.precision, repr(options), shape, entry)
        if key not in cache:
            try:
                cache[key] = build(source, request, out_dir, model=model, say=lambda text: step(f"{label}: {text}"))
            except BuildStopped as stopped:  # the runtime is not here; the device builds from what was proven
                cache[key] = stopped.result
        built.append(cache[key])
    artifact = built[0].artifact
    assert artifact is not None
    proof = next((s.check for s in reversed(built[0].steps) if s.check is not None), None)
    artifact_sha = _sha256(artifact.path)

    # Outputs do not depend on threads or on where the artifact is timed: evaluate each artifact once.
    checked_key = ("checked", artifact_sha, suite.dataset)
    if checked_key not in cache:
        quality = sample = None
        if proof is not None:
            with open_runner(artifact, threads=timing.threads) as runner:
                step(f"{label}: evaluating on {suite.dataset}")
                quality = evaluate(runner, info, load_dataset(suite.dataset, info.scale), dataset=suite.dataset)
                sample = render_sample(runner, info)
        cache[checked_key] = (quality, sample)
    quality, sample = cache[checked_key]
    return PreparedRun(entry, profile, timing, model, complexity, built, artifact, artifact_sha, proof, quality,
                       sample)


def load_and_export(entry: SuiteModel, suite: Suite, out_dir: Path, step: Callable[[str], None], *,
                    exporter: str = "auto", export_timeout: float | None = DEFAULT_EXPORT_TIMEOUT_S,
                    cache: dict[Any, Any]) -> tuple[Any, Artifact, Any]:
    """The model, its ONNX export and its complexity profile, made once per model into ``cache``."""
    from sr_export.bench.profile import profile_model
    from sr_export.export.onnx import ExportOptions, save_export
    from sr_export.models.loader import ModelRequest, load_model

    label = f"{entry.model} x{entry.scale or '?'}"
    if entry not in cache:  # a model is loaded, exported and profiled once for all targets
        step(f"{label}: loading")
        model = load_model(ModelRequest(entry.model, scale=entry.scale, weights=entry.weights))
        step(f"{model.info.name} x{model.info.scale}: exporting to ONNX")
        named = f"{model.info.name} x{model.info.scale}"
        onnx_artifact = save_export(model, ExportOptions(exporter=exporter, timeout=export_timeout), out_dir,
                                    say=lambda text: step(f"{named}: {text}"))
        step(f"{model.info.name} x{model.info.scale}: profiling")
        complexity = profile_model(model, (1, model.info.in_channels, *suite.profile_input[1:]),
                                   onnx_model=onnx_artifact.path)
        cache[entry] = (model, onnx_artifact, complexity)
    return cache[entry]


def time_on_device(prepared: PreparedRun, suite: Suite, step: Callable[[str], None], *, batch: str = "",
                   local_work: Any = None, eager: bool = True) -> SuiteRow:
    """Time a prepared run with the device runner (this machine or the profile's SSH device); the row and the
    history record. ``eager``: also time PyTorch eager beside a local target (the row's speedup)."""
    import datetime

    from sr_export.bench.remote import run_on_device
    from sr_export.bench.speed import measure
    from sr_export.runtimes.pytorch import PyTorchRunner

    profile, timing, model, complexity = prepared.profile, prepared.timing, prepared.model, prepared.complexity
    artifact, artifact_sha, proof = prepared.artifact, prepared.artifact_sha256, prepared.proof
    quality, sample, built, info, label = prepared.quality, prepared.sample, prepared.built, model.info, prepared.label
    options = profile.runtime_options()
    parity = proof.parity if proof is not None else None

    where = profile.access.host if profile.access.is_remote else "this machine"
    job, files = device_job(profile, [b.artifact for b in built], timing)
    started = _now()
    with _released(local_work):
        result = run_on_device(profile.access, files, job, timeout=profile.timeout_s,
                               progress=lambda text: step(f"{label} on {where}: {text}"))
    finished = _now()

    first_size = timing.sizes[0]
    target_ms = result["sizes"][0]["inference"]["median_ms"]
    speed: dict[str, Any] = {target_label(profile): {"median_ms": target_ms, **result["sizes"][0]}}
    speedup = None
    if eager and not profile.access.is_remote:
        step(f"{label}: timing PyTorch eager for comparison")
        eager = measure({"pytorch": PyTorchRunner(model, timing.threads)}, info, [first_size],
                        warmup=min(timing.warmup, 1), runs=timing.runs, threads=timing.threads)
        speed["pytorch"] = eager.timings[0].to_dict()
        speedup = speed["pytorch"]["median_ms"] / target_ms

    aim = complexity.aim
    record = RunRecord(
        model=info.name, scale=info.scale, artifact_name=artifact.path.name, artifact_sha256=artifact_sha,
        target=profile.name, backend=profile.backend, precision=profile.precision, tool_version=__version__,
        device={**result["device"], "access": profile.access.to_dict(), "power": profile.access.power,
                "notes": profile.notes},
        conditions={**result["conditions"], "timed_by": "device_runner.py", "where": where,
                    "artifacts": [f.name for f in files], "options": options_dict(options),
                    "device_run": {"started": started, "finished": finished, "clock": "this machine, UTC"},
                    "quality_measured_on": "this machine, same artifact" if quality else None,
                    "end_to_end": "uint8 frame -> float batch -> infer -> clamp, round, uint8 frame"},
        sizes=result["sizes"], weights_sha256=model.weights_sha256, git_commit=tool_git_commit(),
        params=model.params, aim_flops=aim.flops if aim else None,
        activations=aim.activations if aim else None,
        convs=aim.conv_count if aim else None,
        dataset=suite.dataset if quality else None,
        psnr_y=quality.mean.psnr_y if quality else None, ssim_y=quality.mean.ssim_y if quality else None,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), batch=batch,
        sample_png=sample,
    )
    return SuiteRow(
        model=info.name,
        scale=info.scale,
        artifact=str(artifact.path),
        params=model.params,
        aim_flops=aim.flops if aim else None,
        graph_flops=complexity.graph.flops if complexity.graph else None,
        parity_passed=parity.passed if parity else None,
        parity_worst_psnr_db=parity.worst_psnr_db if parity else None,
        speed=speed,
        speedup=speedup,
        psnr_y=record.psnr_y,
        ssim_y=record.ssim_y,
        details={
            "parity": proof.to_dict() if proof else None,
            "profile": complexity.to_dict(),
            "device_run": result,
            "eval": quality.to_dict() if quality else None,
        },
        record=record,
    )
