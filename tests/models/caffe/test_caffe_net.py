"""Caffe files read without Caffe: the authors' prototxt and caffemodel, and the old V1 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_export.core.errors import SrExportError
from sr_export.models.caffe.net import ConvSettings, read_net, with_weights
from sr_export.models.caffe.schema import message_classes


@pytest.fixture(scope="module")
def idn_caffe(weights_dir: Path) -> Path:
    return weights_dir / "idn_caffe"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_deploy_prototxt_reads_with_its_deconvolution_stride(idn_caffe: Path, scale: int) -> None:
    # The x2 file has classic-Mac CR line endings; the text parser must not care.
    net = read_net(idn_caffe / f"IDN_x{scale}_deploy.prototxt")
    assert net.name == f"IDN_x{scale}"
    assert net.inputs == ("data", "label")
    assert net.layer("upsample").conv == ConvSettings(num_output=1, kernel=(17, 17), stride=(scale, scale), pad=(8, 8))
    assert net.layer("conv3_2").conv.group == 4
    assert net.layer("relu_conv1").negative_slope == pytest.approx(0.05)
    assert net.layer("slice1").slice_points == (16,) and net.layer("slice1").axis == 1
    assert net.layer("sum1").eltwise_op == "SUM"
    assert not net.weighted_layers  # a deploy graph has no blobs


def test_the_caffemodel_holds_the_training_graph_and_every_blob(idn_caffe: Path) -> None:
    net = read_net(idn_caffe / "IDN_x4.caffemodel")
    assert {"HDF5Data", "Python", "EuclideanLoss"} <= {layer.type for layer in net.layers}
    assert len(net.weighted_layers) == 31
    assert sum(blob.size for layer in net.weighted_layers for blob in layer.blobs) == 552_769
    # Deconvolution blobs are (in, out/group, kh, kw): 64 channels in, one out.
    assert net.layer("upsample").blobs[0].shape == (64, 1, 17, 17)
    assert net.layer("conv3_2").blobs[0].shape == (32, 48 // 4, 3, 3)
    assert all(blob.dtype == np.float32 and np.isfinite(blob).all() for layer in net.weighted_layers
               for blob in layer.blobs)


def test_weights_go_onto_the_deploy_graph_by_layer_name(idn_caffe: Path) -> None:
    graph = read_net(idn_caffe / "IDN_x3_deploy.prototxt")
    net, extra = with_weights(graph, read_net(idn_caffe / "IDN_x3.caffemodel"))
    assert extra == ()
    assert [layer.name for layer in net.weighted_layers][:3] == ["conv1", "conv2", "conv3_1"]
    assert [layer.name for layer in net.layers] == [layer.name for layer in graph.layers]


def test_a_v1_layers_model_reads_too(tmp_path: Path) -> None:
    classes = message_classes()
    message = classes["NetParameter"](name="old", input=["data"])
    layer = message.layers.add(name="conv", type=classes["V1LayerParameter"].CONVOLUTION, bottom=["data"], top=["c"])
    layer.convolution_param.num_output = 2
    layer.convolution_param.kernel_size.append(3)
    blob = layer.blobs.add(num=2, channels=1, height=3, width=3)  # pre-2015 4-D shape fields
    blob.data.extend(np.arange(18, dtype=np.float32))
    relu = message.layers.add(name="relu", type=classes["V1LayerParameter"].RELU, bottom=["c"], top=["c"])
    relu.relu_param.negative_slope = 0.1
    path = tmp_path / "old.caffemodel"
    path.write_bytes(message.SerializeToString())

    net = read_net(path)
    assert [(layer.name, layer.type) for layer in net.layers] == [("conv", "Convolution"), ("relu", "ReLU")]
    assert net.layer("conv").blobs[0].shape == (2, 1, 3, 3)
    assert net.layer("conv").blobs[0][1, 0, 2, 2] == 17
    assert net.layer("conv").conv.kernel == (3, 3) and net.layer("conv").conv.group == 1
    assert net.layer("relu").negative_slope == pytest.approx(0.1)


def test_a_truncated_caffemodel_is_refused_in_one_line(idn_caffe: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "IDN_x4.caffemodel"
    damaged.write_bytes((idn_caffe / "IDN_x4.caffemodel").read_bytes()[:100_000])
    with pytest.raises(SrExportError, match="not a Caffe model"):
        read_net(damaged)


def test_a_prototxt_with_a_syntax_error_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "net.prototxt"
    broken.write_text('name: "x"\nlayer { name: "a" type: "ReLU" \n')
    with pytest.raises(SrExportError, match="is not a Caffe prototxt"):
        read_net(broken)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="Caffe file not found"):
        read_net(tmp_path / "nope.caffemodel")
