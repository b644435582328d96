"""INT8 TFLite: ai-edge-quantizer with a recipe's calibration, integer I/O as specified, runnable and close to float.

E-RFDN x4 (official weights), the model the issue names, is converted to a
float file once at 32x32 and calibrated once with a tiny recipe whose patches
have that size; every scheme and I/O type is quantised from those. The
command line is run once end to end on the same model and size.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'sr-export[tflite]')")
pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer not installed (pip install 'sr-export[tflite]')")

from sr_export.core.artifacts import Artifact  # noqa: E402
from sr_export.core.errors import SrExportError  # noqa: E402
from sr_export.core.tolerances import INT8_MIN_OUTPUT_PSNR_DB, output_difference  # noqa: E402
from sr_export.quantize.recipes import load_recipe  # noqa: E402
from sr_export.quantize.statistics import cache_folder  # noqa: E402
from sr_export.runtimes.tflite.calibration import load_cached_ranges, save_ranges  # noqa: E402
from sr_export.runtimes.tflite.convert import TfliteOptions, convert_tflite, write_tflite  # noqa: E402
from sr_export.runtimes.tflite.graph import TfliteGraph  # noqa: E402
from sr_export.runtimes.tflite.int8 import (  # noqa: E402
    QuantizedTflite,
    TfliteInt8Options,
    calibrate_model,
    quantize_converted,
)
from sr_export.runtimes.tflite.runner import TfliteRunner, dequantize_from, quantize_for  # noqa: E402

TILE = (32, 32)
# Four 32 px patches: the artifact's own size, so the float file itself is calibrated.
TINY_RECIPE = """
name = "tiny32"
[patches]
size = 32
count = 4
seed = 1
[method]
name = "percentile"
percentile = 99.999
"""


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("recipe") / "tiny32.toml"
    path.write_text(TINY_RECIPE, encoding="utf-8")
    return load_recipe(path)


@pytest.fixture(scope="module")
def erfdn(official_model):
    return official_model("erfdn", 4)


@pytest.fixture(scope="module")
def float_file(erfdn, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """E-RFDN x4 as a float TFLite file at 32x32, NHWC (the reference every INT8 file is measured against)."""
    converted = convert_tflite(erfdn, TfliteOptions(TILE))
    return write_tflite(converted, tmp_path_factory.mktemp("float") / "erfdn_x4_32x32.tflite")


@pytest.fixture(scope="module")
def quantize(erfdn, float_file: Artifact, tiny_recipe, tmp_path_factory: pytest.TempPathFactory):
    """quantize(io=..., scheme=...) -> (QuantizedTflite, Artifact), from one calibration."""
    flatbuffer = float_file.path.read_bytes()

    def convert_at(shape: tuple[int, int]) -> bytes:
        assert shape == TILE, "the tiny recipe's patches have the file's size: no second conversion"
        return flatbuffer

    ranges, shape = calibrate_model(erfdn, convert_at, tiny_recipe, "nhwc")
    folder = tmp_path_factory.mktemp("int8")
    made: dict[tuple[str, str], tuple[QuantizedTflite, Artifact]] = {}

    def get(io: str = "uint8", scheme: str = "sr-float") -> tuple[QuantizedTflite, Artifact]:
        if (io, scheme) not in made:
            quantized = quantize_converted(flatbuffer, ranges, TfliteInt8Options(tiny_recipe, io=io, scheme=scheme),
                                           erfdn.info.data_range, shape)
            path = folder / f"erfdn_{scheme}_{io}.tflite"
            path.write_bytes(quantized.flatbuffer)
            metadata = replace(float_file.metadata, precision="int8", quantization=quantized.details())
            made[(io, scheme)] = (quantized, Artifact(path, metadata))
        return made[(io, scheme)]

    return get


@pytest.fixture(scope="module")
def set5_crops(set5: Path) -> np.ndarray:
    """The centre 32x32 of every Set5 x4 LR image, (5, 3, 32, 32) in E-RFDN's 0..255 range."""
    from sr_export.data.images import list_images, read_image

    crops = []
    for path in list_images(set5 / "LR_bicubic" / "X4"):
        lr = read_image(path)
        top, left = (lr.shape[0] - TILE[0]) // 2, (lr.shape[1] - TILE[1]) // 2
        crops.append(lr[top : top + TILE[0], left : left + TILE[1]].transpose(2, 0, 1).astype(np.float32))
    return np.stack(crops)


def _interpreter(artifact: Artifact):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(artifact.path))
    interpreter.allocate_tensors()
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0]


@pytest.mark.filterwarnings("ignore:Warning. Enabling .experimental_preserve_all_tensors.")
def test_percentile_ranges_are_what_onnx_runtime_picks_from_all_patches_at_once(erfdn, float_file, tiny_recipe):
    from ai_edge_litert.interpreter import Interpreter
    from onnxruntime.quantization.calibrate import HistogramCollector

    from sr_export.quantize.calibration_data import make_calibration_set
    from sr_export.runtimes.tflite.calibration import collect_ranges, nhwc_batches

    flatbuffer = float_file.path.read_bytes()
    batches = nhwc_batches(make_calibration_set(tiny_recipe, 4).batches(erfdn.info), "nhwc")
    ranges = collect_ranges(flatbuffer, batches, tiny_recipe)
    # The same activations, given to ONNX Runtime's collector in one call, as its calibrators do.
    graph = TfliteGraph.from_bytes(flatbuffer)
    tensors = {index: graph.tensor_name(index) for index in graph.activation_tensors()[::20]}
    interpreter = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    values: dict[str, list[np.ndarray]] = {name: [] for name in tensors.values()}
    for batch in batches:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
        interpreter.invoke()
        for index, name in tensors.items():
            values[name].append(interpreter.get_tensor(index).copy())
    collector = HistogramCollector("percentile", False, tiny_recipe.num_bins, 255, tiny_recipe.percentile, "same")
    collector.collect(values)
    expected = collector.compute_collection_result()
    assert len(tensors) >= 5
    for name in tensors.values():
        assert ranges.ranges[name] == pytest.approx((float(expected[name][0]), float(expected[name][1])), rel=1e-4)


@pytest.mark.parametrize("scheme", ["sr-float", "full", "sr-int16"])
@pytest.mark.parametrize(
    ("io", "dtype", "scale", "zero_point"),
    [("uint8", np.uint8, 1.0, 0), ("int8", np.int8, 1.0, -128), ("float", np.float32, 0.0, 0)],
)
def test_the_interpreter_reports_the_requested_io_type_and_pixel_quantization(quantize, scheme, io, dtype, scale,
                                                                              zero_point):
    # E-RFDN's data range is 255: integer I/O carries raw pixel values (scale 255/255). The ends
    # differ by scheme (a float first conv, an int8 one, a 16-bit one): the file's I/O does not.
    _, artifact = quantize(io=io, scheme=scheme)
    for details in _interpreter(artifact):
        assert details["dtype"] == dtype
        assert details["quantization"][0] == pytest.approx(scale, rel=1e-6)
        assert details["quantization"][1] == zero_point
    given, wanted = _interpreter(artifact)
    assert list(given["shape"]) == [1, 32, 32, 3] and list(wanted["shape"]) == [1, 128, 128, 3]


def test_integer_io_of_a_zero_to_one_model_spreads_the_range_over_the_type() -> None:
    from sr_export.runtimes.tflite.graph import Quantization

    assert Quantization.for_range("uint8", 1.0) == Quantization(1 / 255, 0)
    assert Quantization.for_range("int8", 1.0) == Quantization(1 / 255, -128)
    assert Quantization.for_range("int16", 1.0) == Quantization(1 / 32767, 0)


def test_full_integer_makes_every_op_int8_and_xnnpack_runs_it(quantize, float_file: Artifact):
    quantized, artifact = quantize(scheme="full")
    # LeakyReLU, which the quantiser leaves as a float island, is folded into int8 too.
    assert quantized.op_precisions == {"int8": quantized.op_precisions["int8"]}
    assert quantized.folded == 29  # E-RFDN's LeakyReLUs
    ops = TfliteGraph.from_bytes(artifact.path.read_bytes()).op_precisions()
    assert "LEAKY_RELU" in ops["int8"] and "CONV_2D" in ops["int8"]
    runner = TfliteRunner(artifact, threads=1)
    assert runner.delegate == "xnnpack"
    assert runner.name == "tflite-xnnpack int8 full (uint8 I/O)"


def _ops_computing_in(artifact: Artifact, dtype: str) -> tuple[TfliteGraph, list]:
    graph = TfliteGraph.from_bytes(artifact.path.read_bytes())
    found = [op for op in graph.ops if graph.op_name(op) not in ("QUANTIZE", "DEQUANTIZE")
             and graph.dtype(op.outputs[0]) == dtype]
    return graph, found


def _convs_and_others(graph: TfliteGraph, ops: list) -> tuple[set[str], set[str]]:
    """Output names of the convs among ``ops``, and the op types of the rest."""
    convs = {graph.output_name(op) for op in ops if graph.op_name(op) == "CONV_2D"}
    return convs, {graph.op_name(op) for op in ops if graph.op_name(op) != "CONV_2D"}


# Cheap ops that follow a higher-precision op and may stay in its precision (the quantiser's choice).
ELEMENTWISE = {"LEAKY_RELU", "ADD", "RESHAPE", "TRANSPOSE"}


def _sensitive_convs(float_file: Artifact, sensitive) -> set[str]:
    graph = TfliteGraph.from_bytes(float_file.path.read_bytes())
    return {graph.output_name(op) for op in graph.ops if graph.op_name(op) == "CONV_2D"} & set(sensitive)


def test_sr_float_keeps_the_sr_sensitive_convs_float_and_every_other_conv_int8(quantize, float_file):
    quantized, artifact = quantize(scheme="sr-float")
    reasons = set(quantized.sensitive_ops.values())
    assert {"first conv (sees raw pixels)", "reads the shallow features", "last conv (CONV_2D)"} <= reasons
    assert set(quantized.op_precisions) == {"float32", "int8"}
    graph, floats = _ops_computing_in(artifact, "float32")
    convs, others = _convs_and_others(graph, floats)
    # E-RFDN: fea_conv, block 1's c1_d and c1_r (they read its output) and the upsampler conv.
    assert convs == _sensitive_convs(float_file, quantized.sensitive_ops) and len(convs) == 4
    assert others <= ELEMENTWISE


def test_sr_int16_is_integer_only_with_16_bit_sensitive_convs(quantize, float_file):
    quantized, artifact = quantize(scheme="sr-int16")
    assert set(quantized.op_precisions) == {"int16", "int8"}
    graph, sixteen = _ops_computing_in(artifact, "int16")
    convs, others = _convs_and_others(graph, sixteen)
    assert convs == _sensitive_convs(float_file, quantized.sensitive_ops) and others <= ELEMENTWISE
    # The uint8 input reaches the 16-bit first conv through an exact uint8 -> int8 hop, then int8 -> int16.
    assert [graph.op_name(op) for op in graph.ops[:3]] == ["QUANTIZE", "QUANTIZE", "CONV_2D"]
    assert TfliteRunner(artifact, threads=1).infer(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 3, 128, 128)


def _output_psnr(artifact: Artifact, float_file: Artifact, batch: np.ndarray) -> float:
    got = TfliteRunner(artifact, threads=1).infer(batch)
    want = np.clip(TfliteRunner(float_file, threads=1).infer(batch), 0, 255)
    return output_difference(got, want, 255.0)[2]


@pytest.mark.parametrize("io", ["uint8", "int8", "float"])
def test_every_io_type_gives_the_same_pixels_through_the_runner(quantize, float_file, set5_crops, io):
    # The runner quantises float batches with the input tensor's own parameters and dequantises the
    # output, so all three files compute the same integer graph: identical pixels after rounding.
    _, artifact = quantize(io=io, scheme="full")
    _, reference = quantize(io="uint8", scheme="full")
    got = TfliteRunner(artifact, threads=1).infer(set5_crops)
    want = TfliteRunner(reference, threads=1).infer(set5_crops)
    assert got.dtype == np.float32 and got.shape == (5, 3, 128, 128)
    np.testing.assert_allclose(np.clip(np.rint(got), 0, 255), want, atol=1.0)


def test_int8_outputs_stay_close_to_float_and_sr_float_is_the_closer(quantize, float_file, set5_crops):
    full = _output_psnr(quantize(scheme="full")[1], float_file, set5_crops)
    sr_float = _output_psnr(quantize(scheme="sr-float")[1], float_file, set5_crops)
    assert full >= INT8_MIN_OUTPUT_PSNR_DB
    # Measured: ~41 dB full, ~43 dB sr-float on these crops.
    assert sr_float >= full + 1.0


def test_the_output_is_clamped_to_the_pixel_range_even_with_float_io(quantize, float_file):
    # The output range is fixed to [0, data_range], not calibrated: on a saturated
    # checkerboard the float model overshoots; the INT8 file's float output is the clamp.
    batch = np.full((1, 3, 32, 32), 255.0, np.float32)
    batch[:, :, ::2, ::2] = 0.0
    overshoot = TfliteRunner(float_file, threads=1).infer(batch)
    assert overshoot.min() < -1.0 or overshoot.max() > 256.0
    got = TfliteRunner(quantize(io="float", scheme="full")[1], threads=1).infer(batch)
    assert got.min() >= 0.0 and got.max() <= 255.0


def test_quantize_for_and_dequantize_from_use_the_tensor_parameters() -> None:
    uint8 = {"dtype": np.uint8, "quantization": (1.0, 0)}
    np.testing.assert_array_equal(quantize_for(np.array([0.0, 127.4, 254.6, 300.0, -5.0]), uint8), [0, 127, 255, 255, 0])
    int8 = {"dtype": np.int8, "quantization": (1 / 255, -128)}
    np.testing.assert_array_equal(quantize_for(np.array([0.0, 1.0]), int8), [-128, 127])
    np.testing.assert_allclose(dequantize_from(np.array([-128, 127], np.int8), int8), [0.0, 1.0], atol=1e-6)
    floats = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert dequantize_from(np.array([1.5], np.float32), floats).tolist() == [1.5]


def test_full_integer_without_a_named_recipe_fine_tunes_and_every_other_scheme_calibrates() -> None:
    import argparse

    from sr_export.cli import tflite_cli

    parser = argparse.ArgumentParser()
    tflite_cli.add_arguments(parser)

    def recipe(*flags: str) -> str:
        args = parser.parse_args(["--model", "imdn", "--scale", "2", "--int8", *flags])
        return tflite_cli._int8_options(args).recipe.name

    assert recipe("--int8-scheme", "full") == "qat-full"
    assert load_recipe("qat-full").finetune.steps == 960
    assert recipe("--int8-scheme", "full", "--calib", "default") == "default"
    assert recipe() == recipe("--int8-scheme", "sr-float") == recipe("--int8-scheme", "sr-int16") == "default"


def test_options_refuse_what_the_tflite_target_cannot_do(tiny_recipe) -> None:
    with pytest.raises(SrExportError, match="needs calibration"):
        TfliteOptions(TILE, precision="int8")
    with pytest.raises(SrExportError, match="apply to int8 files, not fp16"):
        TfliteOptions(TILE, precision="fp16", int8=TfliteInt8Options(tiny_recipe))
    with pytest.raises(SrExportError, match="I/O type 'int4'"):
        TfliteInt8Options(tiny_recipe, io="int4")
    with pytest.raises(SrExportError, match="keep_float / auto_keep_float"):
        TfliteInt8Options(load_recipe("mixed"))
    # A recipe without SR-aware precision (the naive baseline) asks for full integer.
    assert TfliteInt8Options(load_recipe("naive")).resolved_scheme == "full"
    assert TfliteInt8Options(load_recipe("default")).resolved_scheme == "sr-float"


def test_a_file_xnnpack_cannot_prepare_runs_on_the_builtin_kernels(quantize, tmp_path: Path, set5_crops):
    # A conv whose requantisation scale (input x weight / output scale) is beyond XNNPACK's
    # 256 fails XNNPACK's preparation, as IMDN's dead attention conv did before its range was opened.
    _, artifact = quantize(scheme="full")
    graph = TfliteGraph.from_bytes(artifact.path.read_bytes())
    conv = [op for op in graph.ops if graph.op_name(op) == "CONV_2D"][3]
    graph.tensor(conv.outputs[0]).quantization.scale = [1e-7]
    hostile = Artifact(tmp_path / "hostile.tflite", artifact.metadata)
    hostile.path.write_bytes(graph.to_bytes())
    runner = TfliteRunner(hostile, threads=1)
    assert runner.delegate == "builtin" and "XNNPACK" in runner.fallback_reason
    assert runner.name.startswith("tflite-builtin int8 full")
    assert runner.infer(set5_crops[:1]).shape == (1, 3, 128, 128)


def test_sr_export_tflite_int8_writes_a_file_checked_by_int8_bounds(sr_export_cli, float_file, tiny_recipe,
                                                                    tmp_path: Path):
    out = tmp_path / "erfdn.tflite"
    code, err = sr_export_cli("tflite", "--model", "erfdn", "--weights", "official", "--shape", "32x32", "--int8",
                              "--calib", tiny_recipe.source, "--int8-io", "int8", "-o", out,
                              "--json", tmp_path / "report.json")
    assert code == 0, err
    report = json.loads((tmp_path / "report.json").read_text())
    parity = report["parity"]
    # INT8 bounds: output PSNR and the built-in images' Y-PSNR drop, not FP32's 80 dB.
    assert parity["precision"] == "int8" and parity["passed"]
    assert parity["tolerance"]["min_psnr_db"] == INT8_MIN_OUTPUT_PSNR_DB
    assert report["dataset_drop"]["passed"] and report["delegate"] == "xnnpack"
    meta = json.loads((tmp_path / "erfdn.tflite.json").read_text())
    assert meta["precision"] == "int8"
    quantization = meta["quantization"]
    assert (quantization["io"], quantization["scheme"], quantization["recipe"]["name"]) == ("int8", "sr-float", "tiny32")
    assert quantization["io_quantization"]["input"] == {"dtype": "int8", "scale": 1.0, "zero_point": -128}
    assert "wrote" in err
    # The calibration is cached by weights + recipe + layout + converter: a second file skips it.
    assert list(cache_folder().glob("*-tflite.json"))


QAT_RECIPE = """
[patches]
size = 24
count = 4
[method]
name = "percentile"
[finetune]
steps = 3
batch = 2
patch_size = 16
"""


def test_a_fine_tuning_recipe_tunes_the_weights_the_file_is_converted_from(sr_export_cli, tmp_path: Path):
    recipe = tmp_path / "tinyqat.toml"
    recipe.write_text(QAT_RECIPE)
    out = tmp_path / "imdn.tflite"
    code, err = sr_export_cli("tflite", "--model", "imdn", "--scale", "2", "--weights", "official", "--shape",
                              "36x64", "--int8", "--calib", recipe, "-o", out)
    assert code == 0, err
    meta = json.loads((tmp_path / "imdn.tflite.json").read_text())
    tuned = meta["quantization"]["finetuned"]
    # Judged against the checkpoint it was tuned from; the student kept sr-float's float layers.
    assert tuned["from_checkpoint"] == meta["weights_sha256"] and tuned["sr_aware"] is True
    assert tuned["steps"] == 3 and tuned["loss_before"] != tuned["loss_after"]
    assert any(note.startswith("weights fine-tuned for INT8") for note in meta["notes"])


def test_calibration_ranges_round_trip_through_the_cache_and_a_damaged_entry_is_ignored(erfdn, float_file,
                                                                                        tiny_recipe):
    ranges, shape = calibrate_model(erfdn, lambda _shape: float_file.path.read_bytes(), tiny_recipe, "nhwc")
    key = {"model": "erfdn", "recipe": tiny_recipe.statistics_key(), "test": "round-trip"}
    assert load_cached_ranges(key) is None
    save_ranges(key, ranges, shape)
    again, again_shape = load_cached_ranges(key)
    assert again == ranges and again_shape == shape
    assert load_cached_ranges({**key, "recipe": "other"}) is None
    entries = set(cache_folder().glob("*-tflite.json"))
    save_ranges({**key, "test": "damaged"}, ranges, shape)
    (damaged,) = set(cache_folder().glob("*-tflite.json")) - entries
    damaged.write_text("{not json", encoding="utf-8")
    assert load_cached_ranges({**key, "test": "damaged"}) is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--int8", "--fp16"], "--int8 and --fp16 exclude each other"),
        (["--int8-io", "uint8"], "--int8-io only apply with --int8"),
        (["--calib", "default", "--int8-scheme", "full"], "--calib, --int8-scheme only apply with --int8"),
        (["--int8", "--calib", "no-such-recipe"], "unknown calibration recipe 'no-such-recipe'"),
        (["--int8", "--calib", "mixed"], "keep_float / auto_keep_float"),
    ],
)
def test_bad_int8_combinations_fail_in_one_line_before_converting(sr_export_cli, tmp_path: Path, flags, message):
    code, err = sr_export_cli("tflite", "--model", "erfdn", "--shape", "32x32", *flags, "-o", tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and not list(tmp_path.iterdir())


@pytest.fixture
def sr_export_cli(capsys: pytest.CaptureFixture[str]):
    from sr_export.cli.export_cli import main

    def run(*args: object) -> tuple[int, str]:
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run
