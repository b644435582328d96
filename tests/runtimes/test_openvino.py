"""OpenVINO IRs: built from the proven ONNX export, dynamic in height and width, proven against PyTorch.

FP32 is held to 80 dB against PyTorch for every zoo model at every scale it
has, at a square, an odd and a not-multiple-of-8 size; BF16 to its own bound
where the CPU has native BF16 (tests that need BF16 skip elsewhere, saying so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sr_export.core.artifacts import Artifact
from sr_export.core.tolerances import output_difference, tolerance_for
from sr_export.models.loader import ModelRequest, load_model
from sr_export.models.registry import zoo

ov = pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'sr-export[openvino]')")

from sr_export.runtimes.openvino import OpenVinoRuntime  # noqa: E402
from sr_export.runtimes.openvino.device import bf16_refusal, cpu_flags  # noqa: E402

ZOO_CASES = [(name, scale) for name, spec in zoo().items() for scale in spec.scales]
# Square, odd, not a multiple of 8 (small, so the whole zoo stays cheap).
SIZES = ((24, 24), (31, 37), (40, 26))


def native_bf16() -> str | None:
    """Why BF16 cannot be tested here (None: it can)."""
    core = ov.Core()
    return bf16_refusal(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"),
                        core.get_property("CPU", "FULL_DEVICE_NAME"), cpu_flags())


def exported(model, folder: Path) -> Artifact:
    from sr_export.export.onnx import ExportOptions, save_export

    # The legacy exporter in-process, not simplified: a proven dynamic export in 3 s instead of 12 (OpenVINO
    # folds constants itself; the default build converts the simplified graph, tested below).
    return save_export(model, ExportOptions(exporter="legacy", timeout=None, simplify=False), folder)


def worst_psnr(artifact: Artifact, model, sizes=SIZES) -> float:
    runner = OpenVinoRuntime().load(artifact, threads=1)
    worst = np.inf
    rng = np.random.default_rng(0)
    for height, width in sizes:
        size_h, size_w = max(height, model.info.min_input_size), max(width, model.info.min_input_size)
        batch = rng.random((1, model.info.in_channels, size_h, size_w), dtype=np.float32) * model.info.data_range
        with torch.inference_mode():
            reference = model.module(torch.from_numpy(batch)).numpy()
        output = runner.infer(batch)
        assert output.shape == reference.shape
        worst = min(worst, output_difference(output, reference, model.info.data_range)[2])
    runner.deactivate()
    return worst


@pytest.mark.parametrize(("name", "scale"), ZOO_CASES)
def test_fp32_ir_matches_pytorch_at_80_db_for_every_zoo_model(name: str, scale: int, tmp_path: Path) -> None:
    # One block of each architecture, random weights: the same ops, shape math and upsampler as the zoo model at
    # that scale, at a fraction of the export time (full depth with official weights: the IMDN x2 IR below).
    model = load_model(ModelRequest(name, scale=scale, kwargs={"blocks": 1}))
    built = OpenVinoRuntime().build(exported(model, tmp_path), tmp_path)
    assert built.metadata.input_shape[2:] == ("height", "width")
    assert worst_psnr(built, model) >= tolerance_for("fp32").min_psnr_db


@pytest.fixture(scope="module")
def imdn_ir(exported_official, tmp_path_factory: pytest.TempPathFactory):
    """IMDN x2 (official weights) built for openvino-cpu, as `sr-export build` builds it: the BuildResult."""
    from sr_export import api

    return api.build_steps(exported_official("imdn", 2), "openvino-cpu", tmp_path_factory.mktemp("ir"))


def test_the_ir_is_one_artifact_with_its_metadata_proven_at_three_sizes(imdn_ir) -> None:
    from sr_export.runtimes.openvino import CHECK_SIZES

    built = imdn_ir.artifact
    assert built.path.suffix == ".xml" and built.path.with_suffix(".bin").is_file()
    assert built.path.with_name(built.path.name + ".json").is_file()
    meta = built.metadata
    assert (meta.format, meta.backend, meta.runtimes, meta.precision) == ("openvino-ir", "openvino", ("openvino",),
                                                                        "fp32")
    assert meta.verified_sizes == CHECK_SIZES and meta.dynamic
    (step,) = imdn_ir.steps
    assert step.check.worst_psnr_db >= 80 and sorted(tuple(c.input_shape[2:]) for c in step.check.parity.cases) == sorted(CHECK_SIZES)
    # Nothing but the IR and its sidecar beside it (no staging folder, no ONNX copy).
    assert sorted(p.name for p in built.path.parent.iterdir()) == ["imdn_x2.bin", "imdn_x2.xml", "imdn_x2.xml.json"]


def test_bf16_is_judged_by_its_own_bound_and_really_computes_in_bf16(exported_official, tmp_path: Path) -> None:
    reason = native_bf16()
    if reason:
        pytest.skip(f"no native BF16 on this CPU: {reason}")
    from sr_export import api

    built = api.build_steps(exported_official("erfdn", 4), "openvino-bf16", tmp_path)
    assert built.artifact.path.name == "erfdn_x4_bf16.xml" and built.artifact.metadata.precision == "bf16"
    check = built.steps[-1].check
    assert check.passed and check.parity.tolerance == tolerance_for("bf16")
    # Above BF16's bound, below FP32's: the hint took effect (OpenVINO did not quietly run FP32).
    assert tolerance_for("bf16").min_psnr_db <= check.worst_psnr_db < tolerance_for("fp32").min_psnr_db


def test_bf16_without_native_support_is_refused_naming_the_cpu_flag() -> None:
    refusal = bf16_refusal(["FP32", "INT8", "BIN"], "Intel(R) Core(TM) i7-8700", {"avx2", "fma"})
    assert "avx512_bf16" in refusal and "amx_bf16" in refusal and "i7-8700" in refusal
    assert bf16_refusal(["BF16", "FP32"], "AMD EPYC", {"avx512_bf16"}) is None


def test_build_check_eval_and_speed_run_the_ir(imdn_ir, tmp_path: Path, sr_export, sr_bench, set5: Path,
                                               exported_official) -> None:
    import json

    built = sr_export("build", "--target", "openvino-cpu", "--from", exported_official("imdn", 2).path,
                      "-o", tmp_path / "net.xml", "--json")
    assert built.code == 0, built.err
    assert (tmp_path / "net.bin").is_file() and json.loads(built.out)["artifact"] == str(tmp_path / "net.xml")
    checked = sr_export("check", tmp_path / "net.xml", "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["candidate"].startswith("openvino-cpu fp32")
    scores = sr_bench("eval", "--artifact", imdn_ir.artifact.path, "--dataset", set5, "--json")
    assert scores.code == 0, scores.err
    assert json.loads(scores.out)["mean"]["psnr_y"] > 37.5  # IMDN x2 on Set5: 38.0 dB
    timed = sr_bench("--target", "openvino-cpu", "speed", "--artifact", imdn_ir.artifact.path, "--sizes", "33x47",
                     "--runs", "2", "--warmup", "1", "--no-pytorch", "--json")
    assert timed.code == 0, timed.err
    assert [t["runner"] for t in json.loads(timed.out)["timings"]] == ["openvino:imdn_x2.xml"]


# --- sr-bench --target: the device runner's OpenVINO session, here and over SSH -------------------------------

ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"


def openvino_profile(folder: Path, server=None) -> Path:
    import json
    import sys

    path = folder / "ov.toml"
    device = "" if server is None else (
        f"[device]\nkind = \"ssh\"\nhost = {json.dumps(server.alias)}\nssh_config = {json.dumps(str(server.config))}\n"
        f"workdir = {json.dumps(str(folder / 'board'))}\npython = {json.dumps(sys.executable)}\nconnect_timeout_s = 5\n")
    path.write_text('name = "ov-board"\nbackend = "openvino"\nprecision = "fp32"\n'
                    '[bench]\ninput_sizes = ["20x28"]\nwarmup = 1\nruns = 2\ntimeout_s = 120\n'
                    '[options]\nstreams = 1\nperformance_hint = "LATENCY"\n' + device)
    return path


@pytest.mark.parametrize("where", ["here", "ssh"])
def test_sr_bench_times_the_ir_with_the_openvino_session(where: str, request, sr_bench, tmp_path: Path) -> None:
    import json

    server = request.getfixturevalue("ssh_server") if where == "ssh" else None
    result = sr_bench("--target", openvino_profile(tmp_path, server), "--models", f"{ESPCN}:ESPCN", "--scale", "3",
                      "--exporter", "legacy", "-o", tmp_path / "out", "--no-history")
    assert result.code == 0, result.err
    (report,) = (tmp_path / "out").glob("matrix-ov-board-*.json")
    row = json.loads(report.read_text())["rows"][0]
    run = row["details"]["device_run"]
    core = ov.Core()
    assert run["device"]["runtime"] == f"openvino {ov.__version__}"
    assert run["device"]["device_name"] == core.get_property("CPU", "FULL_DEVICE_NAME")
    assert run["conditions"]["runtime"] == "openvino" and row["parity_passed"] is True
    assert run["sizes"][0]["output_hw"] == [60, 84]
    if server is not None:
        assert not any((tmp_path / "board").glob("run-*"))  # the run's folder on the board is gone


# --- bad inputs: one line, exit status 2, nothing left on disk --------------------------------------------------


def test_a_device_that_is_not_present_names_those_that_are(exported_official, sr_export, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sr_export("build", "--target", "openvino-cpu", "--from", exported_official("imdn", 2).path,
                       "--option", "device=NPU", "-o", out)
    assert result.code == 2
    present = ", ".join(ov.Core().available_devices)
    assert result.error().endswith(f"OpenVINO device NPU is not present here; devices present: {present}")
    assert not [p for p in out.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("option", "message"), [
    ("device=gpu 0", "options.device is 'gpu 0'; an OpenVINO device name"),
    ("streams=0", "options.streams is 0"),
    ("performance_hint=FAST", "is 'FAST'; choose one of: LATENCY, THROUGHPUT, CUMULATIVE_THROUGHPUT"),
])
def test_bad_options_are_refused_before_any_work(option: str, message: str, sr_export, tmp_path: Path) -> None:
    result = sr_export("build", "--target", "openvino-cpu", "--model", "imdn", "--scale", "2", "--option", option,
                       "-o", tmp_path / "out")
    assert result.code == 2 and message in result.error()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["missing", "truncated", "replaced"])
def test_an_ir_whose_bin_is_missing_or_damaged_is_one_line(damage: str, imdn_ir, sr_export, sr_bench,
                                                           tmp_path: Path) -> None:
    import shutil

    source = imdn_ir.artifact.path
    for path in (source, source.with_suffix(".bin"), source.with_name(source.name + ".json")):
        shutil.copyfile(path, tmp_path / path.name)
    xml, weights = tmp_path / source.name, tmp_path / source.with_suffix(".bin").name
    data = weights.read_bytes()
    if damage == "missing":
        weights.unlink()
    elif damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    else:
        weights.write_bytes(bytes(reversed(data)))
    expected = {"missing": "is missing: an OpenVINO IR is the .xml and the .bin beside it",
                "truncated": f"is {len(data) // 2} bytes, and its .xml was written with {len(data)}: truncated",
                "replaced": "changed since sr-export wrote it"}[damage]
    before = sorted(p.name for p in tmp_path.iterdir())
    for result in (sr_export("check", xml), sr_bench("eval", "--artifact", xml, "--dataset", "builtin")):
        assert result.code == 2 and expected in result.error()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_without_the_extra_the_build_says_what_to_install(exported_official, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['openvino'] = None\n"  # as if openvino were not installed
            "from sr_export.cli.export_cli import main\n"
            f"sys.exit(main(['build', '--target', 'openvino-cpu', '--from', {str(exported_official('imdn', 2).path)!r},"
            f" '-o', {str(tmp_path / 'out')!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert "'openvino' is not installed" in errors[0] and "pip install 'sr-export[openvino]'" in errors[0]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_help_and_the_base_commands_do_not_import_openvino() -> None:
    import subprocess
    import sys

    code = ("import sys\n"
            "from sr_export.cli import export_cli, bench_cli\n"
            "export_cli.build_parser().format_help(); bench_cli.build_parser().format_help()\n"
            "from sr_export import api; api.runtimes()\n"
            "heavy = [m for m in ('openvino', 'nncf') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- INT8: NNCF accuracy control under the recipe's max_drop ---------------------------------------------------

TINY_ACCURACY_RECIPE = """name = "tiny-accuracy"
[patches]
size = 24
count = 8
holdout = 4
[precision]
max_drop = 0.05
"""


def test_int8_keeps_operations_float_until_the_held_out_drop_is_within_max_drop(exported_official,
                                                                                  tmp_path: Path) -> None:
    from sr_export import api

    recipe = tmp_path / "tiny-accuracy.toml"
    recipe.write_text(TINY_ACCURACY_RECIPE)
    # Not checked on the built-in photos: ranges from eight 24 px patches do not carry to 64 px images (IMDN x2
    # lost 3.8 dB there; with the shipped recipe's 64 px patches it loses nothing, see benchmarks/). This test
    # holds the mechanics: the budget on the held-out patches, the report of what stayed float.
    result = api.build_steps(exported_official("imdn", 2), "openvino-int8", tmp_path / "out", calibration=recipe,
                             check=False)
    built = result.artifact
    assert built.path.name == "imdn_x2_int8-tiny-accuracy.xml" and built.metadata.precision == "int8"
    quantization = built.metadata.quantization
    assert quantization["recipe"] == "tiny-accuracy" and quantization["max_drop_db"] == 0.05
    assert (quantization["calibration_patches"], quantization["held_out_patches"]) == (8, 4)
    assert quantization["held_out_drop_db"] <= 0.05 + 1e-9
    assert quantization["quantized_operations"] > 0
    assert all(row["operation"] and row["why"] for row in quantization["float_operations"])
    with api.open_runner(built) as runner:
        assert runner.name == "openvino-cpu int8"
        batch = np.random.default_rng(0).random((1, 3, 24, 31), dtype=np.float32)
        assert runner.infer(batch).shape == (1, 3, 48, 62)


def test_int8_without_an_accuracy_budget_is_one_line(exported_official, sr_export, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sr_export("build", "--target", "openvino-int8", "--from", exported_official("imdn", 2).path,
                       "--calib", "default", "-o", out)
    assert result.code == 2
    assert "calibration recipe default has no precision.max_drop" in result.error()
    assert not [p for p in out.rglob("*") if p.is_file()]


# --- bring-your-own models that export dynamically build for OpenVINO too ---------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BYO = ["espcn.py:ESPCN", "fsrcnn.py:FSRCNN", "attention_shuffle.py:AttentionShuffleNet",
       "mobile_user_net.py:MobileUserNet", "published.py:PaddedUNetSR", "published.py:ChannelSplitAttentionSR",
       "published.py:AnchorPlainSR", "published.py:UnpaddedUNetSR"]


@pytest.mark.parametrize("reference", BYO)
def test_bring_your_own_models_build_for_openvino_at_fp32_parity(reference: str, tmp_path: Path) -> None:
    model = load_model(ModelRequest(f"{FIXTURES / reference}", scale=2))
    built = OpenVinoRuntime().build(exported(model, tmp_path), tmp_path)
    assert built.metadata.dynamic
    assert worst_psnr(built, model) >= tolerance_for("fp32").min_psnr_db


def test_the_same_export_gives_the_same_ir_bytes_even_in_one_process(exported_official, tmp_path: Path) -> None:
    import hashlib

    source = exported_official("imdn", 2)
    digests = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        built = OpenVinoRuntime().build(source, folder)
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in (built.path, built.path.with_suffix(".bin"))])
    assert digests[0] == digests[1]
