"""Benchmark suites (``benchmarks/suites/*.toml``) and the run behind plain ``sr-bench``.

For every model of a suite: export to ONNX, build for the target, check
parity against PyTorch, profile, time against PyTorch eager side by side, and
evaluate on the suite's images; one row per model.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.bench.history import RunRecord
from sr_export.core.errors import SrExportError
from sr_export.core.resources import read_toml_resource
from sr_export.core.sizes import parse_size
from sr_export.targets.profiles import TargetProfile


@dataclass(frozen=True)
class SuiteModel:
    model: str
    scale: int | None = None
    weights: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    models: tuple[SuiteModel, ...]
    description: str = ""
    profile_input: tuple[int, int, int] = (3, 256, 256)
    speed_sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    warmup: int = 1
    runs: int = 3
    dataset: str = "builtin"


def load_suite(name_or_path: str) -> Suite:
    data, path = read_toml_resource(name_or_path, "suites", what="suite")
    try:
        models = tuple(SuiteModel(**entry) for entry in data["models"])
    except (KeyError, TypeError) as exc:
        raise SrExportError(f"cannot read suite {path}: {type(exc).__name__}: {exc}") from exc
    speed, evaluation = data.get("speed", {}), data.get("eval", {})
    channels, height, width = (int(v) for v in data.get("profile", {}).get("input", "3x256x256").split("x"))
    return Suite(
        name=data.get("name", path.stem),
        description=data.get("description", ""),
        models=models,
        profile_input=(channels, height, width),
        speed_sizes=tuple(parse_size(s) for s in speed.get("input_sizes", ["256x256"])),
        warmup=int(speed.get("warmup", 1)),
        runs=int(speed.get("runs", 3)),
        dataset=str(evaluation.get("dataset", "builtin")),
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
    """Which runtime the device runner uses for the profile; checked before any work is done."""
    if profile.backend == "tensorrt" and profile.access.is_remote:
        return "trtexec"  # the board builds the engine from the ONNX file; nothing TensorRT is needed here
    profile.require_backend()
    from sr_export.runtimes.registry import get_target

    target = get_target(profile.backend)
    if profile.precision not in target.precisions:
        raise SrExportError(f"target '{profile.name}': the {profile.backend} backend of this installation builds "
                            f"{', '.join(target.precisions)}, not {profile.precision}")
    if profile.backend == "tensorrt":
        return "trtexec"
    if profile.backend not in ("onnxruntime", "tflite"):
        raise SrExportError(f"target '{profile.name}': the device runner cannot time {profile.backend} artifacts; "
                            f"time them where their runtime lives (sr-bench speed --artifact on that machine)")
    return profile.backend


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


def _sha256(path: Path) -> str:
    from sr_export.core.io import content_sha256

    return content_sha256(path)


def run_model(
    entry: SuiteModel,
    suite: Suite,
    profile: TargetProfile,
    out_dir: Path,
    step: Callable[[str], None],
    *,
    exporter: str = "auto",
    batch: str = "",
    cache: dict[Any, Any] | None = None,
) -> SuiteRow:
    """The whole pipeline for one model on one target; ``step`` is told what is happening now.

    Export, build and quality checks run on this machine; timing runs in the
    device runner, on this machine or on the profile's SSH device, so local and
    remote numbers come from the same code. PyTorch eager is timed alongside
    only for local targets, where the ratio means something. ``cache`` carries
    exports and checks between the targets of one matrix run.
    """
    import datetime

    import onnx

    from sr_export.bench.evaluate import evaluate
    from sr_export.bench.profile import profile_model
    from sr_export.bench.remote import job_document, run_on_device
    from sr_export.bench.sample import render_sample
    from sr_export.bench.speed import measure
    from sr_export.checks.parity import run_parity
    from sr_export.core.artifacts import Artifact
    from sr_export.core.io import atomic_path
    from sr_export.data.datasets import load_dataset
    from sr_export.data.parity_inputs import builtin_parity_inputs
    from sr_export.export.onnx import ExportOptions, default_filename, export_onnx
    from sr_export.models.loader import ModelRequest, load_model
    from sr_export.runtimes.open import open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner
    from sr_export.runtimes.registry import get_target

    runtime = device_runtime(profile)
    cache = cache if cache is not None else {}
    label = f"{entry.model} x{entry.scale or '?'}"
    if entry not in cache:  # a model is loaded, exported and profiled once for all targets
        step(f"{label}: loading")
        model = load_model(ModelRequest(entry.model, scale=entry.scale, weights=entry.weights))
        step(f"{model.info.name} x{model.info.scale}: exporting to ONNX")
        exported = export_onnx(model, ExportOptions(exporter=exporter))
        onnx_path = out_dir / default_filename(model)
        with atomic_path(onnx_path) as tmp:
            onnx.save(exported.proto, str(tmp))
        step(f"{model.info.name} x{model.info.scale}: profiling")
        complexity = profile_model(model, (1, model.info.in_channels, *suite.profile_input[1:]),
                                   onnx_model=exported.proto)
        cache[entry] = (model, exported, Artifact(onnx_path, exported.metadata), complexity)
    model, exported, onnx_artifact, complexity = cache[entry]
    info = model.info
    label = f"{info.name} x{info.scale}"
    runner = None
    if runtime == "trtexec":
        artifact = onnx_artifact
    else:
        step(f"{label}: building for {profile.backend} {profile.precision}")
        target = get_target(profile.backend)
        if profile.backend == "onnxruntime":
            artifact = target.build(onnx_artifact, out_dir, precision=profile.precision, options=profile.options)
        else:
            artifact = target.from_model(model, out_dir, precision=profile.precision, options=profile.options)
        runner = open_runner(artifact, threads=profile.threads)
    reference = PyTorchRunner(model, profile.threads)
    artifact_sha = _sha256(artifact.path)

    # Outputs do not depend on threads or on where the artifact is timed: check each artifact once.
    checked_key = ("checked", artifact_sha, suite.dataset)
    if runner is not None and checked_key not in cache:
        step(f"{label}: parity")
        parity = run_parity(runner, reference, builtin_parity_inputs(info), data_range=info.data_range,
                            precision=artifact.metadata.precision)
        step(f"{label}: evaluating on {suite.dataset}")
        quality = evaluate(runner, info, load_dataset(suite.dataset, info.scale), dataset=suite.dataset)
        cache[checked_key] = (parity, quality, render_sample(runner, info))
    parity, quality, sample = cache.get(checked_key, (None, None, None))

    where = profile.access.host if profile.access.is_remote else "this machine"
    job = job_document(runtime=runtime, artifact=artifact.path.name, precision=profile.precision,
                       sizes=suite.speed_sizes, warmup=suite.warmup, runs=suite.runs, threads=profile.threads,
                       scale=info.scale, in_channels=info.in_channels, data_range=info.data_range,
                       input_name=exported.proto.graph.input[0].name)
    result = run_on_device(profile.access, artifact.path, job, timeout=profile.timeout_s,
                           progress=lambda text: step(f"{label} on {where}: {text}"))

    first_size = suite.speed_sizes[0]
    target_ms = result["sizes"][0]["inference"]["median_ms"]
    speed: dict[str, Any] = {target_label(profile): {"median_ms": target_ms, **result["sizes"][0]}}
    speedup = None
    if not profile.access.is_remote:
        step(f"{label}: timing PyTorch eager for comparison")
        eager = measure({"pytorch": reference}, info, [first_size], warmup=min(suite.warmup, 1), runs=suite.runs,
                        threads=profile.threads)
        speed["pytorch"] = eager.timings[0].to_dict()
        speedup = speed["pytorch"]["median_ms"] / target_ms

    aim = complexity.aim
    record = RunRecord(
        model=info.name, scale=info.scale, artifact_name=artifact.path.name, artifact_sha256=artifact_sha,
        target=profile.name, backend=profile.backend, precision=profile.precision, tool_version=__version__,
        device={**result["device"], "access": profile.access.to_dict(), "power": profile.access.power,
                "notes": profile.notes},
        conditions={**result["conditions"], "timed_by": "device_runner.py", "where": where,
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
            "parity": parity.to_dict() if parity else None,
            "profile": complexity.to_dict(),
            "device_run": result,
            "eval": quality.to_dict() if quality else None,
        },
        record=record,
    )
