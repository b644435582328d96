"""The whole check of an artifact: parity against a reference, and for INT8 the Y-PSNR it loses on a dataset.

What ``sr-export check``, every build (which writes only what passes it) and
``sr_export.api.check`` run. The reference is the PyTorch model (rebuilt from
the artifact's metadata when not given, its weights verified by sha256) or
another artifact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.bench.quality_drop import DatasetDrop, dataset_drop
from sr_export.checks.parity import ParityReport, run_parity
from sr_export.core.artifacts import Artifact, ArtifactMetadata
from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo, ModelRequest
from sr_export.core.sizes import Size
from sr_export.core.tolerances import tolerance_for
from sr_export.data.parity_inputs import (
    DEFAULT_SIZES,
    ParityInput,
    artifact_parity_inputs,
    builtin_parity_inputs,
    folder_parity_inputs,
)
from sr_export.runtimes.base import Inferring, Runner
from sr_export.runtimes.open import open_runner

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel

Say = Callable[[str], Any]


@dataclass(frozen=True)
class CheckReport:
    artifact: Path
    parity: ParityReport
    dataset_drop: DatasetDrop | None = None  # INT8 only

    @property
    def passed(self) -> bool:
        return self.parity.passed and (self.dataset_drop is None or self.dataset_drop.passed)

    @property
    def worst_psnr_db(self) -> float:
        return self.parity.worst_psnr_db

    def failure(self) -> str:
        """Why it failed, in a clause ('' when it passed)."""
        reasons = list(dict.fromkeys(c.reason for c in self.parity.cases if not c.passed))
        if self.dataset_drop is not None and not self.dataset_drop.passed:
            reasons.append(self.dataset_drop.reason())
        return "; ".join(reasons)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"artifact": str(self.artifact), **self.parity.to_dict()}
        if self.dataset_drop is not None:
            data["dataset_drop"] = self.dataset_drop.to_dict()
        # "passed" is the verdict a CI job reads: an INT8 file within parity but over its drop bound failed.
        data["parity_passed"] = self.parity.passed
        data["passed"] = self.passed
        return data


def reference_model(metadata: ArtifactMetadata, path: Path | str = "the artifact") -> LoadedModel:
    """The PyTorch model an artifact was made from, rebuilt from its metadata; its weights must be the same file."""
    from sr_export.models.loader import load_model

    name = Path(path).name
    if not metadata.request:
        raise SrExportError(f"{name} records no model to rebuild; pass --model (and --weights) for the PyTorch "
                            "reference")
    model = load_model(ModelRequest.from_dict(metadata.request))
    if metadata.weights_sha256 and model.weights_sha256 != metadata.weights_sha256:
        raise SrExportError(f"the checkpoint {model.weights_path} changed since {name} was made (sha256 differs); "
                            "pass --model/--weights for the reference")
    return model


def pytorch_runner(model: LoadedModel, threads: int | None = None) -> Runner:
    from sr_export.runtimes.pytorch import PyTorchRunner

    return PyTorchRunner(model, threads)


def check_inputs(
    artifact: Artifact,
    info: ModelInfo,
    candidate: Inferring,
    *,
    images: Path | None = None,
    sizes: Sequence[Size] | None = None,
    runtime_sizes: Sequence[Size] | None = None,
) -> list[ParityInput]:
    """What an artifact is checked on: the user's images, or built-in photos at sizes it takes.

    ``runtime_sizes`` are the sizes its runtime says the artifact should be
    checked at (a Core ML program's own sizes); a runner with bounded sizes
    (a TensorRT profile) gets the usual sizes moved inside its bounds.
    """
    static = artifact.metadata.static_hw
    if images is not None:
        return folder_parity_inputs(info, images, static)
    if sizes is None and runtime_sizes:
        return builtin_parity_inputs(info, list(runtime_sizes), 1)
    bounds = getattr(candidate, "size_bounds", None)
    if sizes is None and static is None and bounds is not None:
        low, high = bounds
        sizes = sorted({tuple(min(max(v, lo), hi) for v, lo, hi in zip(hw, low, high)) for hw in DEFAULT_SIZES})
    return artifact_parity_inputs(info, static, sizes)


def check_runner(
    artifact: Artifact,
    candidate: Inferring,
    reference: Inferring,
    info: ModelInfo,
    inputs: Sequence[ParityInput],
    *,
    precision: str | None = None,
    dataset_check: bool = True,
    say: Say | None = None,
    progress: Callable[[], Any] | None = None,
) -> CheckReport:
    """Parity of ``candidate`` against ``reference`` on ``inputs``; for INT8 (with ``dataset_check``) also the
    built-in images' Y-PSNR drop."""
    say = say or (lambda _message: None)
    precision = precision or artifact.metadata.precision
    say(f"checking {artifact.path.name} against {reference.name}")
    parity = run_parity(candidate, reference, inputs, data_range=info.data_range, precision=precision,
                        progress=progress)
    drop = None
    tolerance = tolerance_for(precision)
    if tolerance.max_psnr_drop_db is not None and dataset_check:
        from sr_export.data.datasets import BUILTIN, load_dataset

        say("measuring the Y-PSNR drop on the built-in images")
        drop = dataset_drop(candidate, reference, info, load_dataset(BUILTIN, info.scale), dataset=BUILTIN,
                            max_drop_db=tolerance.max_psnr_drop_db)
    return CheckReport(artifact.path, parity, drop)


def check_against_model(
    artifact: Artifact,
    model: LoadedModel,
    *,
    runtime: str | None = None,
    threads: int | None = None,
    runtime_sizes: Sequence[Size] | None = None,
    dataset_check: bool = True,
    say: Say | None = None,
) -> CheckReport:
    """A freshly built artifact against the model it was built from (what every build step runs)."""
    with open_runner(artifact, runtime=runtime, threads=threads) as candidate:
        inputs = check_inputs(artifact, model.info, candidate, runtime_sizes=runtime_sizes)
        return check_runner(artifact, candidate, pytorch_runner(model, threads), model.info, inputs,
                            dataset_check=dataset_check, say=say)
