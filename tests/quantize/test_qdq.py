"""INT8 QDQ artifacts of a real network (E-RFDN x4, official weights), run in ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from sr_export.core.errors import SrExportError
from sr_export.core.tolerances import output_difference
from sr_export.data.parity_inputs import builtin_parity_inputs
from sr_export.export.session import cpu_session
from sr_export.quantize.graph import sr_float_nodes
from sr_export.quantize.qdq import INT8_METADATA_KEY, int8_details, load_float_proto, quantize_onnx
from sr_export.quantize.qdq_graph import keep_tensors_float, quantized_activations
from sr_export.quantize.recipes import load_recipe
from sr_export.quantize.statistics import cache_folder
from sr_export.runtimes.open import open_runner


def _consumers(proto: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    return readers


def _producers(proto: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in proto.graph.node for out in node.output}


def test_the_sr_aware_rules_find_first_conv_tail_and_global_residual_by_structure(erfdn_float) -> None:
    reasons = sr_float_nodes(load_float_proto(erfdn_float).graph)
    assert reasons["/fea_conv/Conv"].startswith("first conv")
    assert reasons["/Add"] == "global residual add"
    assert reasons["/upsampler/upsampler.0/Conv"].startswith("last conv")
    assert reasons["/upsampler/upsampler.1/DepthToSpace"].startswith("upsampler")
    assert {"/B1/c1_d/Conv", "/B1/c1_r/Conv", "/B1/Add"} <= set(reasons)
    assert "/B2/c1_d/Conv" not in reasons


@pytest.fixture(scope="module")
def ort_int8(erfdn_float, erfdn_statistics, tiny_recipe_path: Path, tmp_path_factory: pytest.TempPathFactory):
    return quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), output=tmp_path_factory.mktemp("int8"),
                         statistics=erfdn_statistics)


def test_onnxruntime_int8_is_qdq_with_uint8_activations_and_float_sr_layers(ort_int8) -> None:
    proto = onnx.load(str(ort_int8.path))
    assert ort_int8.metadata.precision == "int8" and ort_int8.path.name == "erfdn_x4_int8-tiny.onnx"
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 40 and ops.count("DequantizeLinear") > 40
    inits = {i.name: i for i in proto.graph.initializer}
    zero_points = [inits[n.input[2]] for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    assert {z.data_type for z in zero_points} == {onnx.TensorProto.UINT8}
    producers = _producers(proto)
    for name in ("/fea_conv/Conv", "/upsampler/upsampler.0/Conv"):
        node = next(n for n in proto.graph.node if n.name == name)
        fed_by = {producers[i].op_type for i in node.input if i in producers}
        assert "DequantizeLinear" not in fed_by, name
    # The global residual add sums the body's (dequantised) output with the float shallow features.
    residual = next(n for n in proto.graph.node if n.name == "/Add")
    assert {producers[i].name for i in residual.input} >= {"/fea_conv/Conv"}
    quantized_conv = next(n for n in proto.graph.node if n.name == "/B2/c1_d/Conv")
    assert producers[quantized_conv.input[1]].op_type == "DequantizeLinear"
    assert proto.graph.node[-1].op_type == "Clip"  # output clamped to the data range in float
    details = int8_details(ort_int8.path)
    assert details["flavour"] == "onnxruntime" and "/fea_conv/Conv" in details["float_nodes"]


def test_int8_output_stays_close_to_float_on_natural_images(erfdn_float, ort_int8) -> None:
    (case,) = builtin_parity_inputs(erfdn_float.metadata.model_info(), [(40, 52)], per_size=1)
    want = open_runner(erfdn_float).infer(case.batch)
    got = open_runner(ort_int8).infer(case.batch)
    assert got.shape == want.shape
    assert got.min() >= 0 and got.max() <= 255
    _, _, psnr = output_difference(got, np.clip(want, 0, 255), 255.0)
    assert 35.0 < psnr < 80.0  # close to float, and really quantised


def test_tensorrt_flavour_is_symmetric_int8_without_quantised_bias_and_runs(erfdn_float, erfdn_statistics,
                                                                          tiny_recipe_path: Path, tmp_path: Path) -> None:
    artifact = quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), flavour="tensorrt", output=tmp_path,
                             statistics=erfdn_statistics)
    assert artifact.path.name == "erfdn_x4_int8_trt-tiny.onnx"
    proto = onnx.load(str(artifact.path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = inits[node.input[2]]
            assert zero.dtype == np.int8 and not zero.any(), node.name
    producers = _producers(proto)
    for conv in (n for n in proto.graph.node if n.op_type == "Conv" and len(n.input) > 2):
        assert conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32, conv.name
    weight_dq = producers[next(n for n in proto.graph.node if n.name == "/B2/c1_d/Conv").input[1]]
    assert inits[weight_dq.input[1]].size > 1  # per-channel weight scales
    (case,) = builtin_parity_inputs(erfdn_float.metadata.model_info(), [(32, 32)], per_size=1)
    _, _, psnr = output_difference(open_runner(artifact).infer(case.batch),
                                   np.clip(open_runner(erfdn_float).infer(case.batch), 0, 255), 255.0)
    assert psnr > 33.0


def test_statistics_are_cached_by_weights_and_recipe(erfdn_float, erfdn_statistics, tiny_recipe_path: Path) -> None:
    from sr_export.quantize.qdq import artifact_statistics

    again = artifact_statistics(erfdn_float, load_recipe(tiny_recipe_path))
    assert again.cached and again.key == erfdn_statistics.key and again.ranges == erfdn_statistics.ranges
    assert (cache_folder() / f"{again.key}.json").is_file()
    assert "input" in again.ranges and again.ranges["input"][1] <= 255.0


def test_keep_float_of_an_unknown_name_is_an_error_naming_it(erfdn_float, erfdn_statistics,
                                                          tiny_recipe_path: Path, tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="--keep-float names no node or tensor of this graph: /B9/conv"):
        quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), keep_float=["/B9/conv"], output=tmp_path,
                      statistics=erfdn_statistics)
    assert not list(tmp_path.iterdir())


def test_keep_float_removes_the_nodes_quantisation(erfdn_float, erfdn_statistics, tiny_recipe_path: Path,
                                                  tmp_path: Path) -> None:
    artifact = quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), keep_float=["/B2/c5/Conv"], output=tmp_path,
                             statistics=erfdn_statistics)
    proto = onnx.load(str(artifact.path))
    producers = _producers(proto)
    node = next(n for n in proto.graph.node if n.name == "/B2/c5/Conv")
    inits = {i.name: i for i in proto.graph.initializer}
    # Its weights stay float; its input is whatever its (quantised) producer hands on.
    assert node.input[1] in inits and inits[node.input[1]].data_type == onnx.TensorProto.FLOAT
    assert node.input[1] not in producers
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[INT8_METADATA_KEY])["float_nodes"]["/B2/c5/Conv"] == "kept in float on request"


def test_keep_float_of_a_tensor_removes_only_that_edges_quantisation(erfdn_float, erfdn_statistics,
                                                                     tiny_recipe_path: Path, tmp_path: Path,
                                                                     ort_int8) -> None:
    tensor = "/B1/esa/conv4/Conv_output_0"
    full = onnx.load(str(ort_int8.path))
    assert tensor in quantized_activations(full)
    artifact = quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), keep_float=[tensor], output=tmp_path,
                             statistics=erfdn_statistics)
    proto = onnx.load(str(artifact.path))
    assert quantized_activations(proto) == [t for t in quantized_activations(full) if t != tensor]
    # Its readers now take the float tensor itself; the conv that writes it still has INT8 inputs.
    readers = _consumers(proto)[tensor]
    assert readers and all(r.op_type not in ("QuantizeLinear", "DequantizeLinear") for r in readers)
    writer = _producers(proto)[tensor]
    assert _producers(proto)[writer.input[0]].op_type == "DequantizeLinear"
    assert int8_details(artifact.path)["float_tensors"] == {tensor: "kept in float on request"}
    batch = builtin_parity_inputs(ort_int8.metadata.model_info(), [(40, 52)], per_size=1)[0].batch
    assert open_runner(artifact).infer(batch).shape == open_runner(ort_int8).infer(batch).shape


def test_removing_qdq_pairs_leaves_a_graph_that_runs_and_moves_towards_float(erfdn_float, ort_int8) -> None:
    full = onnx.load(str(ort_int8.path))
    every = quantized_activations(full)
    all_float = keep_tensors_float(full, every, load_float_proto(erfdn_float))
    assert quantized_activations(all_float) == []

    batch = builtin_parity_inputs(ort_int8.metadata.model_info(), [(40, 52)], per_size=1)[0].batch
    reference = open_runner(erfdn_float).infer(batch)
    outputs = {}
    for label, proto in (("int8", full), ("float activations", all_float)):
        session = cpu_session(proto.SerializeToString())
        outputs[label] = session.run(None, {session.get_inputs()[0].name: batch})[0]
    # Only the INT8 weights are left: far closer to float than the full INT8 graph.
    data_range = ort_int8.metadata.data_range
    psnr_int8 = output_difference(outputs["int8"], reference, data_range)[2]
    psnr_weights_only = output_difference(outputs["float activations"], reference, data_range)[2]
    assert psnr_weights_only > psnr_int8 + 6.0


def test_onnxruntime_fuses_every_quantised_conv_and_islands_cost_layout_changes(
        erfdn_float, erfdn_statistics, ort_int8, tiny_recipe_path: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from sr_export.runtimes.onnxruntime.kernels import kernel_report

    sr_aware = kernel_report(ort_int8.path)
    float_convs = {name for name in int8_details(ort_int8.path)["float_nodes"] if name.endswith("/Conv")}
    assert sr_aware.source_convs == 64
    assert set(sr_aware.float_convs) == float_convs and "/fea_conv/Conv" in float_convs
    assert len(sr_aware.integer_convs) == 64 - len(float_convs)
    assert "float convs: /fea_conv/Conv" in sr_aware.summary()

    integer_only = replace(load_recipe(tiny_recipe_path), sr_aware=False)
    everything = kernel_report(quantize_onnx(erfdn_float, integer_only, output=tmp_path,
                                             statistics=erfdn_statistics).path)
    assert len(everything.integer_convs) == 64 and everything.float_convs == ()
    # Every border between ORT's NHWC integer kernels and a float island is a Transpose.
    assert everything.transposes < sr_aware.transposes
    assert everything.to_dict()["op_counts"]["com.microsoft:QLinearConv"] == 64


def test_a_conv_kept_in_float_between_quantised_neighbours_really_runs_in_float(
        erfdn_float, erfdn_statistics, tiny_recipe_path: Path, tmp_path: Path) -> None:
    from sr_export.runtimes.onnxruntime.kernels import kernel_report

    # Left out of the quantiser alone, /B2/c5/Conv reads a DequantizeLinear and feeds a QuantizeLinear, and
    # ONNX Runtime quantises its weights itself; its output is kept float so that it cannot.
    artifact = quantize_onnx(erfdn_float, load_recipe(tiny_recipe_path), keep_float=["/B2/c5/Conv"], output=tmp_path,
                             statistics=erfdn_statistics)
    assert "/B2/c5/Conv" in kernel_report(artifact.path).float_convs
    assert int8_details(artifact.path)["float_conv_outputs"][-2:] == ["/B2/c5/Conv_output_0",
                                                                      "/upsampler/upsampler.0/Conv_output_0"]


def test_float_statistics_keeps_channel_attention_statistics_float_and_nothing_else(
    erfdn_float, tmp_path: Path, tiny_recipe_path: Path
) -> None:
    from dataclasses import replace

    from sr_export.export.onnx import ExportOptions, save_export
    from sr_export.models.loader import ModelRequest, load_model
    from sr_export.quantize.graph import statistic_tensors

    # IMDN's contrast-aware channel attention: mean and deviation per channel, two 1x1 convs, a sigmoid.
    model = load_model(ModelRequest("imdn", scale=2, kwargs={"blocks": 1}))
    float_artifact = save_export(model, ExportOptions(exporter="legacy", timeout=None), tmp_path)
    statistics = statistic_tensors(load_float_proto(float_artifact))
    assert len(statistics) == 6 and all("/cca/" in name for name in statistics)
    recipe = replace(load_recipe(tiny_recipe_path), float_statistics=True)
    plain = quantize_onnx(float_artifact, load_recipe(tiny_recipe_path), output=tmp_path / "plain.onnx")
    kept = quantize_onnx(float_artifact, recipe, output=tmp_path / "kept.onnx")
    quantized = set(quantized_activations(onnx.load(str(plain.path))))
    assert quantized & set(statistics), "the plain file quantises the attention statistics"
    assert set(quantized_activations(onnx.load(str(kept.path)))) == quantized - set(statistics)
    assert set(int8_details(kept.path)["float_tensors"]) == set(statistics)
    assert "per-channel statistics in float" in recipe.summary()
    # A network without channel attention has no such tensor (E-RFDN's attention is spatial).
    assert statistic_tensors(load_float_proto(erfdn_float)) == []
