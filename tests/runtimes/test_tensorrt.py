"""The TensorRT target: engines, manifests and the runner.

The engine tests need TensorRT and a CUDA device; elsewhere they skip and the
tests of everything before the TensorRT boundary run.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sr_export.core.errors import RuntimeUnavailable, SrExportError
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.registry import RUNTIMES as BACKENDS
from sr_export.runtimes.registry import get_runtime as get_target
from sr_export.runtimes.registry import runtime_for_file as backend_for_file
from sr_export.runtimes.tensorrt.build import engine_path
from sr_export.runtimes.tensorrt.loader import NOT_INSTALLED, import_tensorrt
from sr_export.runtimes.tensorrt.runner import profile_error
from sr_export.runtimes.tensorrt.settings import EngineSettings, shape_profile

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def _cuda_device() -> bool:
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        from cuda.bindings import runtime
    except ImportError:
        return False
    error, count = runtime.cudaGetDeviceCount()
    return int(error) == 0 and count > 0


needs_gpu = pytest.mark.skipif(
    not (HAS_TENSORRT and _cuda_device()),
    reason="no CUDA device / TensorRT runtime here (pip install 'sr-export[tensorrt]' on a machine with an NVIDIA GPU)",
)
SMALL = shape_profile(min=(32, 32), opt=(64, 64), max=(128, 128))


def test_tensorrt_is_a_backend_for_engine_files() -> None:
    assert BACKENDS["tensorrt"].suffixes == (".engine", ".plan") and BACKENDS["tensorrt"].extra == "tensorrt"
    assert backend_for_file(Path("imdn.plan")) == "tensorrt"
    assert get_target("tensorrt").precisions == ("fp32", "fp16", "int8")


def test_engine_names_follow_the_precision(tmp_path: Path) -> None:
    assert engine_path(Path("/m/imdn_x2_fp16.onnx"), None, "fp16") == Path("/m/imdn_x2_fp16.engine")
    assert engine_path(Path("imdn_x2.onnx"), tmp_path, "int8") == tmp_path / "imdn_x2_int8.engine"
    assert engine_path(Path("imdn_x2.onnx"), tmp_path / "x.plan", "fp32") == tmp_path / "x.plan"


def test_shape_outside_the_profile_is_one_clear_line() -> None:
    assert profile_error((64, 64), SMALL, "m.engine") is None
    message = profile_error((256, 64), SMALL, "m.engine")
    assert message is not None and "\n" not in message
    assert message.startswith("input 256x64 is outside m.engine's shape profile 32x32..128x128 (opt 64x64)")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_without_tensorrt_the_build_stops_after_preparing(exported_official, tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable) as raised:
        get_target("tensorrt").build(exported_official("imdn", 2), tmp_path / "m.engine", precision="fp16",
                                     options={"max_shape": "128x128", "min_shape": "32x32"})
    assert str(raised.value) == NOT_INSTALLED and raised.value.exit_code == 4
    assert [p.name for p in tmp_path.iterdir()] == ["imdn_x2_fp16.onnx"]  # the prepared graph, no engine
    with pytest.raises(RuntimeUnavailable):
        import_tensorrt()


# --- needs TensorRT and a CUDA device ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fp16_engine(exported_official, tmp_path_factory: pytest.TempPathFactory):
    if not (HAS_TENSORRT and _cuda_device()):
        pytest.skip("no CUDA device / TensorRT runtime here")
    folder = tmp_path_factory.mktemp("trt")
    settings = EngineSettings(precision="fp16", profile=SMALL, workspace_mb=512, timing_cache=folder / "timing.cache")
    return get_target("tensorrt").build(exported_official("imdn", 2), folder, settings=settings)


@needs_gpu
def test_fp16_engine_matches_pytorch(fp16_engine, official_model) -> None:
    from sr_export.checks.parity import run_parity
    from sr_export.data.parity_inputs import builtin_parity_inputs
    from sr_export.runtimes.pytorch import PyTorchRunner

    model = official_model("imdn", 2)
    inputs = builtin_parity_inputs(model.info, [(64, 64), (45, 71)])
    report = run_parity(open_runner(fp16_engine), PyTorchRunner(model), inputs, data_range=1.0, precision="fp16")
    assert report.passed, report.to_dict()


@needs_gpu
def test_engine_has_manifest_sidecar_and_timing_cache(fp16_engine) -> None:
    manifest = json.loads(Path(f"{fp16_engine.path}.manifest.json").read_text())
    assert manifest["precision"] == "fp16" and manifest["profile"]["max"] == [128, 128]
    assert len(manifest["onnx_sha256"]) == 64 and manifest["platform"]["compute_capability"]
    assert json.loads(Path(f"{fp16_engine.path}.json").read_text())["backend"] == "tensorrt"
    assert (fp16_engine.path.parent / "timing.cache").stat().st_size > 0


@needs_gpu
def test_input_outside_the_profile_is_refused(fp16_engine) -> None:
    import numpy as np

    runner = get_target("tensorrt").load(fp16_engine)
    with pytest.raises(SrExportError, match="outside .* shape profile"):
        runner.infer(np.zeros((1, 3, 256, 256), np.float32))


@needs_gpu
def test_engine_from_another_tensorrt_says_rebuild(fp16_engine, tmp_path: Path) -> None:
    import shutil

    engine = tmp_path / fp16_engine.path.name
    for suffix in ("", ".json", ".manifest.json"):
        shutil.copy(f"{fp16_engine.path}{suffix}", f"{engine}{suffix}")
    manifest_file = Path(f"{engine}.manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["platform"]["tensorrt_version"] = "9.0.0"
    manifest_file.write_text(json.dumps(manifest))
    from sr_export.runtimes.open import open_artifact

    with pytest.raises(SrExportError, match="rebuild it here"):
        get_target("tensorrt").load(open_artifact(engine))


@needs_gpu
def test_int8_engine_from_qdq_matches_pytorch(imdn_qdq, official_model, tmp_path: Path) -> None:
    from sr_export.checks.parity import run_parity
    from sr_export.data.parity_inputs import builtin_parity_inputs
    from sr_export.runtimes.pytorch import PyTorchRunner

    engine = get_target("tensorrt").build(imdn_qdq, tmp_path, settings=EngineSettings(precision="int8", profile=SMALL))
    model = official_model("imdn", 2)
    report = run_parity(open_runner(engine), PyTorchRunner(model), builtin_parity_inputs(model.info, [(64, 64)]),
                        data_range=1.0, precision="int8")
    assert report.passed, report.to_dict()
