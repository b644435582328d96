"""Proving a freshly built artifact against its PyTorch model, with tables on the terminal."""

from __future__ import annotations

from typing import Any


def parity_against_pytorch(artifact: Any, model: Any, console: Any) -> Any:
    from sr_export.checks.parity import run_parity
    from sr_export.cli.tables import parity_table
    from sr_export.data.parity_inputs import artifact_parity_inputs
    from sr_export.runtimes.open import open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner

    inputs = artifact_parity_inputs(model.info, artifact.metadata.static_hw)
    with console.status("checking parity against PyTorch"):
        report = run_parity(
            open_runner(artifact), PyTorchRunner(model), inputs,
            data_range=model.info.data_range, precision=artifact.metadata.precision,
        )
    console.print(parity_table(report))
    return report


def check_int8_against_pytorch(artifact: Any, model: Any, console: Any, report: dict[str, Any]) -> bool:
    """Output PSNR on the parity photos and Y-PSNR drop on the built-in dataset, against PyTorch."""
    from sr_export.checks.parity import run_parity, tolerance_for
    from sr_export.cli.tables import parity_table
    from sr_export.data.parity_inputs import artifact_parity_inputs
    from sr_export.runtimes.open import open_runner
    from sr_export.runtimes.pytorch import PyTorchRunner

    candidate, reference = open_runner(artifact), PyTorchRunner(model)
    inputs = artifact_parity_inputs(model.info, artifact.metadata.static_hw)
    with console.status("checking INT8 outputs against PyTorch"):
        parity = run_parity(candidate, reference, inputs, data_range=model.info.data_range, precision="int8")
    console.print(parity_table(parity))
    report["parity"] = parity.to_dict()
    drop = builtin_dataset_drop(candidate, reference, model.info, tolerance_for("int8").max_psnr_drop_db, console)
    report["dataset_drop"] = drop.to_dict()
    failures = [c.reason for c in parity.cases if not c.passed] + ([drop.reason()] if not drop.passed else [])
    report["failure"] = "; ".join(failures)
    return not failures


def builtin_dataset_drop(candidate: Any, reference: Any, info: Any, max_drop: float | None, console: Any) -> Any:
    from sr_export.bench.quality_drop import dataset_drop
    from sr_export.data.datasets import BUILTIN, load_dataset

    pairs = load_dataset(BUILTIN, info.scale)
    with console.status("measuring the Y-PSNR drop on the built-in images"):
        drop = dataset_drop(candidate, reference, info, pairs, dataset=BUILTIN, max_drop_db=max_drop)
    colour = "green" if drop.passed else "red"
    console.print(f"Y-PSNR on built-in images: reference {drop.reference.mean.psnr_y:.3f} dB, "
                  f"INT8 {drop.candidate.mean.psnr_y:.3f} dB, [{colour}]drop {drop.drop_db:.3f} dB[/{colour}]"
                  + (f" (bound {max_drop:g} dB)" if max_drop is not None else ""))
    return drop
