"""The FP32 and INT8 ONNX files on the oldest ONNX Runtime sr-export supports (1.18, pyproject's floor), and on
the oldest their metadata names (1.15: what loads IR version 8, which sr-export writes instead of onnx's 10).

The oldest release lives in a side environment with numpy < 2 (as boards
that ship it do) and runs the files through sr-export's device runner; its
output is judged against this environment's ONNX Runtime by the precision's
bound (INT8: the PSNR between the two runtimes, reported, and the INT8 bound
against PyTorch on 1.18 itself).
"""

from __future__ import annotations

import numpy as np
import pytest

from sr_export.core.tolerances import INT8_MIN_OUTPUT_PSNR_DB, output_difference, tolerance_for
from sr_export.runtimes.elsewhere import ElsewhereRunner
from sr_export.runtimes.open import open_runner
from sr_export.runtimes.registry import get_runtime

# INT8 outputs of two ONNX Runtime releases may differ by integer rounding; this is the least PSNR between them.
INT8_BETWEEN_RUNTIMES_DB = 40.0


def _inputs(model) -> np.ndarray:
    """Two 48x40 LR inputs in the model's range (smooth gradients with noise, as a photo crop is)."""
    rng = np.random.default_rng(3)
    rows = np.linspace(0, 1, 48, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, 40, dtype=np.float32)[None, :]
    base = 0.5 + 0.3 * np.sin(7 * rows) * np.cos(5 * cols)
    batch = np.clip(base[None, None] + 0.05 * rng.standard_normal((2, 3, 48, 40), dtype=np.float32), 0, 1)
    return (batch * model.info.data_range).astype(np.float32)


@pytest.mark.parametrize("release", ["1.18", "1.15"])
@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_imdn_onnx_files_run_on_the_oldest_onnxruntime_as_on_this_one(kind, release, exported_official, imdn_qdq,
                                                                      official_model, request):
    import torch

    python = request.getfixturevalue("oldest_onnxruntime_python" if release == "1.18" else "onnxruntime_115_python")
    artifact = exported_official("imdn", 2) if kind == "fp32" else imdn_qdq
    model = official_model("imdn", 2)
    batch = _inputs(model)
    with open_runner(artifact) as runner:
        new = runner.infer(batch)
    with ElsewhereRunner(artifact, get_runtime("onnxruntime"), python) as runner:
        assert f"onnxruntime {release}." in runner.name
        old = runner.infer(batch)
    peak = model.info.data_range
    max_abs, _, between = output_difference(old, new, peak)
    print(f"{kind}: PSNR between onnxruntime {release} and this one: {between:.2f} dB")
    if kind == "fp32":
        bound = tolerance_for("fp32")
        assert between >= bound.min_psnr_db and max_abs <= bound.max_abs_error * peak, (between, max_abs)
        return
    assert between >= INT8_BETWEEN_RUNTIMES_DB, f"{between:.1f} dB between onnxruntime {release} and this one"
    with torch.no_grad():
        reference = model.module.eval()(torch.from_numpy(batch)).numpy()
    _, _, psnr = output_difference(old, reference, peak)
    assert psnr >= INT8_MIN_OUTPUT_PSNR_DB, f"onnxruntime {release}: {psnr:.1f} dB against PyTorch"


def test_the_files_carry_the_lowest_ir_version_and_name_the_runtime_they_need(exported_official, imdn_qdq):
    import onnx

    for artifact in (exported_official("imdn", 2), imdn_qdq):
        proto = onnx.load(str(artifact.path), load_external_data=False)
        assert proto.ir_version == 8  # opset 18's IR version, not onnx's newest (10, which ONNX Runtime < 1.18 refuses)


def test_sr_bench_stops_before_copying_a_file_the_boards_onnxruntime_is_too_old_for(exported_official,
                                                                                   onnxruntime_115_python,
                                                                                   ssh_server, tmp_path):
    """A board with ONNX Runtime 1.15 (as an older JetPack ships) is asked first; an IR-10 file is not copied."""
    import dataclasses

    import onnx

    from sr_export.bench.remote import DeviceError, job_document, run_on_device
    from sr_export.core.artifacts import embed_in_onnx, read_metadata
    from sr_export.export.onnx_versions import requirements
    from sr_export.targets.profiles import DeviceAccess

    fitted = exported_official("imdn", 2)
    proto = onnx.load(str(fitted.path), load_external_data=False)
    proto.ir_version = 10  # what onnx stamps on a graph saved as it is (a file from another tool, say)
    embed_in_onnx(proto, dataclasses.replace(read_metadata(fitted.path), runtime_requirements=requirements(proto)))
    too_new = tmp_path / "imdn_x2_ir10.onnx"
    onnx.save(proto, str(too_new))
    device = tmp_path / "board"
    device.mkdir()
    access = DeviceAccess(kind="ssh", host=ssh_server.alias, ssh_config=ssh_server.config, workdir=str(device),
                          python=str(onnxruntime_115_python), connect_timeout_s=5)

    def job(name: str) -> dict:
        return job_document(runtime="onnxruntime", artifact=name, precision="fp32", sizes=[(24, 20)], warmup=0,
                            runs=1, threads=1, scale=2, in_channels=3, data_range=1.0)

    with pytest.raises(DeviceError, match=r"needs onnxruntime 1\.18 or newer \(IR version 10, opset 18\); "
                                          r"the device has onnxruntime 1\.15"):
        run_on_device(access, too_new, job(too_new.name), timeout=120)
    assert not list(device.iterdir())  # nothing was copied
    result = run_on_device(access, fitted.path, job(fitted.path.name), timeout=120)
    assert result["ok"] and result["device"]["runtime"].startswith("onnxruntime 1.15")
