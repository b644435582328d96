"""Benchmark suites (``benchmarks/suites/*.toml``) and the run behind plain ``sr-bench``.

For every model of a suite: export to ONNX, build for the target, check
parity against PyTorch, profile, time against PyTorch eager side by side, and
evaluate on the suite's images; one row per model.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export import __version__
from sr_export.errors import SrExportError
from sr_export.resources import list_resources
from sr_export.targets.profiles import TargetProfile, parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


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
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        suites = list_resources("suites")
        if name_or_path not in suites:
            raise SrExportError(f"unknown suite '{name_or_path}'; known: {', '.join(sorted(suites)) or 'none'}")
        path = suites[name_or_path]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        models = tuple(SuiteModel(**entry) for entry in data["models"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
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
    parity_passed: bool
    parity_worst_psnr_db: float
    speed: dict[str, Any]
    speedup: float
    psnr_y: float
    ssim_y: float
    details: dict[str, Any] = field(default_factory=dict)


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


def run_model(
    entry: SuiteModel,
    suite: Suite,
    profile: TargetProfile,
    out_dir: Path,
    step: Callable[[str], None],
) -> SuiteRow:
    """The whole pipeline for one model; ``step`` is told what is happening now."""
    import onnx

    from sr_export.artifacts import Artifact
    from sr_export.bench.evaluate import evaluate
    from sr_export.bench.profile import profile_model
    from sr_export.bench.speed import measure
    from sr_export.checks.inputs import builtin_parity_inputs
    from sr_export.checks.parity import run_parity
    from sr_export.data.datasets import load_dataset
    from sr_export.export.onnx import ExportOptions, default_filename, export_onnx
    from sr_export.io import atomic_path
    from sr_export.models.loader import ModelRequest, load_model
    from sr_export.targets import get_target
    from sr_export.targets.pytorch import PyTorchRunner

    label = f"{entry.model} x{entry.scale or '?'}"
    step(f"{label}: loading")
    model = load_model(ModelRequest(entry.model, scale=entry.scale, weights=entry.weights))
    info = model.info
    step(f"{label}: exporting to ONNX")
    exported = export_onnx(model, ExportOptions())
    onnx_path = out_dir / default_filename(model)
    with atomic_path(onnx_path) as tmp:
        onnx.save(exported.proto, str(tmp))
    target = get_target(profile.backend)
    artifact = target.build(Artifact(onnx_path, exported.metadata), out_dir, precision=profile.precision)
    runner = target.load(artifact, threads=profile.threads)
    reference = PyTorchRunner(model, profile.threads)

    step(f"{label}: parity")
    parity = run_parity(runner, reference, builtin_parity_inputs(info), data_range=info.data_range,
                        precision=artifact.metadata.precision)
    step(f"{label}: profiling")
    complexity = profile_model(model, (1, info.in_channels, *suite.profile_input[1:]),
                               onnx_model=exported.proto)
    step(f"{label}: timing")
    speed = measure({"pytorch": reference, target_label(profile): runner}, info, suite.speed_sizes,
                    warmup=suite.warmup, runs=suite.runs, threads=profile.threads)
    step(f"{label}: evaluating on {suite.dataset}")
    quality = evaluate(runner, info, load_dataset(suite.dataset, info.scale), dataset=suite.dataset)
    first_size = suite.speed_sizes[0]
    return SuiteRow(
        model=info.name,
        scale=info.scale,
        artifact=str(artifact.path),
        params=model.params,
        aim_flops=complexity.aim.flops if complexity.aim else None,
        graph_flops=complexity.graph.flops if complexity.graph else None,
        parity_passed=parity.passed,
        parity_worst_psnr_db=parity.worst_psnr_db,
        speed={t.runner: t.to_dict() for t in speed.timings if t.input_hw == first_size},
        speedup=speed.speedup(target_label(profile), "pytorch", first_size),
        psnr_y=quality.mean.psnr_y,
        ssim_y=quality.mean.ssim_y,
        details={
            "parity": parity.to_dict(),
            "profile": complexity.to_dict(),
            "speed": speed.to_dict(),
            "eval": quality.to_dict(),
        },
    )
