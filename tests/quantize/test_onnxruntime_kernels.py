"""What `sr-export onnx --int8` writes for ONNX Runtime: the rewrites recorded, checked, and worth their speed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx

from sr_export.quantize.onnxruntime_kernels import for_onnxruntime, rewritten_for_onnxruntime
from sr_export.quantize.qdq import int8_details, load_float_proto, plan_float_nodes, quantize_onnx
from sr_export.quantize.qdq_graph import quantized_proto
from sr_export.quantize.recipes import load_recipe


def _conv_out_channels(proto: onnx.ModelProto) -> set[int]:
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producers = {out: n for n in proto.graph.node for out in n.output}
    weights = [producers[n.input[1]].input[0] if n.input[1] in producers else n.input[1]
               for n in proto.graph.node if n.op_type == "Conv"]
    return {inits[w].shape[0] for w in weights}


def test_an_onnxruntime_int8_build_records_the_widening_and_a_tensorrt_one_has_none(
        erfdn_float, erfdn_statistics, tiny_recipe_path: Path, tmp_path: Path) -> None:
    recipe = load_recipe(tiny_recipe_path)
    ort_file = quantize_onnx(erfdn_float, recipe, output=tmp_path / "ort.onnx", statistics=erfdn_statistics)
    trt_file = quantize_onnx(erfdn_float, recipe, flavour="tensorrt", output=tmp_path / "trt.onnx",
                             statistics=erfdn_statistics)
    widened = int8_details(ort_file.path)["onnxruntime_kernels"]["channel_padding"]["widened"]
    assert len(widened) == 39 and {tuple(v) for v in widened.values()} == {(25, 28), (50, 52)}
    assert any("39 convs widened" in note for note in ort_file.metadata.notes)
    assert "onnxruntime_kernels" not in int8_details(trt_file.path)
    # TensorRT's flavour keeps the model's own channel counts.
    assert _conv_out_channels(onnx.load(str(trt_file.path))) >= {25, 50}
    assert not _conv_out_channels(onnx.load(str(ort_file.path))) & {25, 50}


def test_int8_erfdn_runs_at_least_1_6x_faster_than_fp32_side_by_side(erfdn_float, erfdn_statistics,
                                                                       tiny_recipe_path: Path) -> None:
    """The loose CI bound of the INT8 speed promise (`benchmarks/int8_set5.py` carries the real figures).

    The SR-aware graph (`default`'s float layers), widened as `sr-export onnx --int8` writes it, against the
    FP32 export, interleaved in one process on one thread so that the other test worker disturbs both alike.
    """
    import onnxruntime as ort

    proto = load_float_proto(erfdn_float)
    recipe = load_recipe(tiny_recipe_path)
    quantized = quantized_proto(proto, erfdn_statistics, recipe, exclude=plan_float_nodes(proto, recipe).names())
    widened = for_onnxruntime(quantized)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sessions = {name: ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
                for name, graph in (("fp32", proto), ("int8", widened))}
    feed = {"input": np.random.default_rng(0).random((1, 3, 160, 160), dtype=np.float32)}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for run in range(6):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, {session.get_inputs()[0].name: feed["input"]})
            if run:  # the first run of each is warm-up
                times[name].append(time.perf_counter() - start)
    ratio = float(np.median(times["fp32"]) / np.median(times["int8"]))
    assert ratio >= 1.6, f"INT8 only {ratio:.2f}x FP32 (fp32 {times['fp32']}, int8 {times['int8']})"


def test_a_rewrite_that_moves_the_output_away_from_float_is_refused_and_the_graph_kept(
        erfdn_float, erfdn_statistics, tiny_recipe_path: Path, monkeypatch) -> None:
    from onnx import numpy_helper

    import sr_export.quantize.onnxruntime_kernels as kernels
    from sr_export.quantize.channel_padding import pad_channels

    float_proto = load_float_proto(erfdn_float)
    proto = quantized_proto(float_proto, erfdn_statistics, load_recipe(tiny_recipe_path))
    batch = np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32)
    applied = rewritten_for_onnxruntime(proto, batch, float_proto, 1.0)
    assert applied.proto is not proto and applied.padding.widened and not applied.refused

    def broken(graph):  # a widening that gets one conv's weights wrong: the check must catch it
        widened, padding = pad_channels(graph)
        weight = next(i for i in widened.graph.initializer if i.name.endswith("c1_r.weight_quantized"))
        weight.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(weight), weight.name))
        return widened, padding

    monkeypatch.setattr(kernels, "pad_channels", broken)
    kept = rewritten_for_onnxruntime(proto, batch, float_proto, 1.0)
    assert kept.proto is proto and "PSNR to float fell" in kept.refused
    assert kept.notes() == [f"not rewritten for ONNX Runtime's integer kernels: {kept.refused}"]
