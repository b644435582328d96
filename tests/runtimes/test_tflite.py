"""The TFLite target: litert-torch conversion at fixed sizes, LiteRT runs, parity through the usual tools.

Conversions cost seconds each, so one E-RFDN file (official weights, NHWC,
the layout users ship) is made once per module and then checked, evaluated
and timed by the same commands users run; the user model is converted by the
CLI tests (tests/cli/test_tflite_cli.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'sr-export[tflite]')")

from sr_export.core.artifacts import Artifact  # noqa: E402
from sr_export.core.errors import MissingDependencyError, SrExportError  # noqa: E402
from sr_export.runtimes.open import (
    open_artifact,  # noqa: E402
    open_runner,  # noqa: E402
)
from sr_export.runtimes.pytorch import PyTorchRunner  # noqa: E402
from sr_export.runtimes.registry import get_runtime as get_target
from sr_export.runtimes.registry import runtime_for_file as backend_for_file  # noqa: E402
from sr_export.runtimes.tflite.convert import TfliteOptions  # noqa: E402
from sr_export.runtimes.tflite.runner import TfliteRunner  # noqa: E402

TILE = (64, 64)


@pytest.fixture(scope="module")
def erfdn_tflite(official_model, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """E-RFDN x4 (official) converted by `sr-export tflite` at 64x64, NHWC, parity-checked on the way."""
    from sr_export.cli.export_cli import main

    out = tmp_path_factory.mktemp("tflite") / "erfdn_x4.tflite"
    assert main(["tflite", "--model", "erfdn", "--scale", "4", "--weights", "official", "--shape", "64x64",
                 "-o", str(out)]) == 0
    return open_artifact(out)


def test_the_file_records_its_fixed_size_layout_and_converter(erfdn_tflite: Artifact) -> None:
    meta = erfdn_tflite.metadata
    assert (meta.format, meta.backend, meta.precision, meta.layout) == ("tflite", "tflite", "fp32", "NHWC")
    assert meta.static_hw == TILE and meta.exporter == "litert-torch"
    assert meta.data_range == 255 and meta.weights_sha256
    assert backend_for_file(erfdn_tflite.path) == "tflite"


def test_the_file_takes_nhwc_and_matches_pytorch_at_its_size(erfdn_tflite: Artifact, official_model) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(erfdn_tflite.path))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 64, 64, 3]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, 256, 256, 3]
    batch = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    got = TfliteRunner(erfdn_tflite, threads=1).infer(batch)
    want = PyTorchRunner(official_model("erfdn", 4)).infer(batch)
    psnr = 10 * np.log10(255**2 / np.mean((got.astype(np.float64) - want) ** 2))
    assert psnr > 100


def test_other_sizes_run_tiled_through_open_runner(erfdn_tflite: Artifact) -> None:
    runner = open_runner(erfdn_tflite, threads=1)
    assert "tiles 64x64" in runner.name
    assert runner.infer(np.zeros((1, 3, 70, 90), np.float32)).shape == (1, 3, 280, 360)


def test_the_bare_runner_refuses_other_sizes_in_one_line(erfdn_tflite: Artifact) -> None:
    with pytest.raises(SrExportError, match="does not fit the TFLite model's 1x64x64x3 .NHWC.*open_runner"):
        TfliteRunner(erfdn_tflite).infer(np.zeros((1, 3, 32, 32), np.float32))


def _cli(main, capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sr_export_check_accepts_the_file(capsys, erfdn_tflite: Artifact, tmp_path: Path) -> None:
    from sr_export.cli.export_cli import main

    code, _, err = _cli(main, capsys, "check", erfdn_tflite.path, "--threads", "1", "--json", tmp_path / "parity.json")
    assert code == 0, err
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"]
    assert min(case["psnr_db"] or float("inf") for case in report["cases"] if not case["tiled"]) >= 100


def test_sr_bench_eval_on_set5_through_tflite_matches_the_reference_number(
    capsys, erfdn_tflite: Artifact, set5: Path, tmp_path: Path
) -> None:
    from sr_export.cli.bench_cli import main

    code, _, err = _cli(main, capsys, "eval", "--artifact", erfdn_tflite.path, "--dataset", set5,
                        "--json", tmp_path / "e.json")
    assert code == 0, err
    mean = json.loads((tmp_path / "e.json").read_text())["mean"]
    # Official E-RFDN x4 on Set5 is 32.138 dB Y-PSNR in PyTorch (shared/reference/numbers.md);
    # 64x64 tiles with E-RFDN's receptive-field overlap stay within a few hundredths of it.
    assert mean["psnr_y"] == pytest.approx(32.138, abs=0.05)


def test_sr_bench_speed_times_the_tflite_file(capsys, erfdn_tflite: Artifact) -> None:
    from sr_export.cli.bench_cli import main

    code, out, err = _cli(main, capsys, "speed", "--artifact", erfdn_tflite.path, "--sizes", "64x64",
                          "--warmup", "1", "--runs", "2", "--no-pytorch", "--threads", "1")
    assert code == 0, err
    assert "tflite" in out


def test_options_are_validated() -> None:
    with pytest.raises(SrExportError, match="layout 'nhcw'"):
        TfliteOptions((32, 32), layout="nhcw")
    with pytest.raises(SrExportError, match="full-integer INT8 needs calibration"):
        TfliteOptions((32, 32), precision="int8")


def test_the_target_converts_from_pytorch_not_from_onnx(erfdn_tflite: Artifact) -> None:
    target = get_target("tflite")
    assert target.build(erfdn_tflite, None) is erfdn_tflite  # already built
    as_onnx = Artifact(erfdn_tflite.path.with_suffix(".onnx"), replace(erfdn_tflite.metadata, format="onnx"))
    with pytest.raises(SrExportError, match="converts from PyTorch"):
        target.build(as_onnx, None)
    assert "XNNPACK" in target.describe()["runtime"]


def test_a_missing_runtime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from sr_export.runtimes.tflite import interpreter as tflite

    real_import = builtins.__import__

    def without_litert(name: str, *args, **kwargs):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_litert)
    with pytest.raises(MissingDependencyError, match=r"sr-export\[tflite\]"):
        tflite.interpreter_class()
