"""The authors' IDN Caffe models map onto the zoo idn, and the result computes what Caffe computes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_export.core.errors import SrExportError
from sr_export.data.color import y_channel
from sr_export.data.images import read_image
from sr_export.models.caffe.convert import check_against_caffe, idn_module
from sr_export.models.caffe.idn_import import caffe_key, find_prototxt, import_idn
from sr_export.models.caffe.numpy_forward import forward


@pytest.fixture(scope="module")
def idn_caffe(weights_dir: Path) -> Path:
    return weights_dir / "idn_caffe"


@pytest.fixture(scope="module")
def imported(idn_caffe: Path):
    cache = {}

    def get(scale: int):
        if scale not in cache:
            cache[scale] = import_idn(idn_caffe / f"IDN_x{scale}.caffemodel")
        return cache[scale]

    return get


def test_caffe_layer_names_map_to_module_names() -> None:
    assert caffe_key("conv1") == "conv1"
    assert caffe_key("conv3_1") == "dblocks.0.conv_1"
    assert caffe_key("conv6_6") == "dblocks.3.conv_6"
    assert caffe_key("down2") == "dblocks.1.down"
    assert caffe_key("upsample") == "upsample"
    assert caffe_key("relu_conv1") is None and caffe_key("conv3_7") is None


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_blob_maps_and_the_scale_comes_from_the_deconvolution(imported, idn_caffe: Path, scale: int) -> None:
    result = imported(scale)
    assert result.scale == scale
    assert result.prototxt == (idn_caffe / f"IDN_x{scale}_deploy.prototxt").resolve()
    assert len(result.mapped) == 62  # 31 layers, weight and bias each
    assert result.params == 552_769
    assert next(m for m in result.mapped if m.layer == "upsample" and m.key == "upsample.weight").shape == (64, 1, 17, 17)
    assert int(result.state_dict["scale_factor"]) == scale


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_model_equals_the_caffe_graph_on_the_region_caffe_computes(imported, scale: int) -> None:
    check = check_against_caffe(imported(scale))
    assert check.compared_hw == (13 * scale - scale + 1, 11 * scale - scale + 1)
    assert check.max_abs_diff < 1e-5


def test_on_a_real_image_too_and_the_full_size_output_only_adds_the_top_left_border(imported, set5: Path) -> None:
    scale = 3
    lr = y_channel(read_image(set5 / "HR" / "butterfly.bmp"))[100:130, 60:84].astype(np.float64) / 255.0
    result = imported(scale)
    caffe = forward(result.net, {"data": lr[None, None]})["upsample"][0, 0]
    with torch.inference_mode():
        model = idn_module(result)
        x = torch.from_numpy(lr).float()[None, None]
        residual = (model(x) - model.bicubic(x))[0, 0].double().numpy()
    assert residual.shape == (30 * scale, 24 * scale)
    assert caffe.shape == (30 * scale - scale + 1, 24 * scale - scale + 1)
    np.testing.assert_allclose(residual[scale - 1:, scale - 1:], caffe, atol=1e-5)


def test_the_residual_is_not_symmetric_so_a_flipped_deconvolution_would_show(imported) -> None:
    # Guards the test above: a kernel that equalled its own 180-degree rotation could not
    # tell Caffe's layout from a flipped one.
    kernel = imported(4).state_dict["upsample.weight"]
    assert (kernel - kernel.flip(-1, -2)).abs().max() > 1e-3


def test_the_prototxt_is_found_beside_the_model(idn_caffe: Path) -> None:
    assert find_prototxt(idn_caffe / "IDN_x2.caffemodel") == idn_caffe / "IDN_x2_deploy.prototxt"


def test_a_model_without_its_prototxt_is_refused(idn_caffe: Path, tmp_path: Path) -> None:
    lonely = shutil.copy(idn_caffe / "IDN_x4.caffemodel", tmp_path / "IDN_x4.caffemodel")
    with pytest.raises(SrExportError, match="no deploy prototxt beside .*; pass --prototxt"):
        import_idn(lonely)


def test_the_prototxt_of_another_scale_is_refused(idn_caffe: Path) -> None:
    with pytest.raises(SrExportError, match="describe different networks: upsample"):
        import_idn(idn_caffe / "IDN_x4.caffemodel", idn_caffe / "IDN_x3_deploy.prototxt")


def _edited_prototxt(idn_caffe: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = (idn_caffe / "IDN_x4_deploy.prototxt").read_text()
    assert old in text
    path = tmp_path / "edited.prototxt"
    path.write_text(text.replace(old, new, 1))
    return path


def test_a_relu_slope_the_model_does_not_have_is_reported(idn_caffe: Path, tmp_path: Path) -> None:
    edited = _edited_prototxt(idn_caffe, tmp_path, "negative_slope: 0.05", "negative_slope: 0.2")
    with pytest.raises(SrExportError, match=r"cannot map 1 Caffe layer\(s\) onto idn: relu_conv1 \(ReLU negative_slope 0.2"):
        import_idn(idn_caffe / "IDN_x4.caffemodel", edited)


def test_an_unknown_layer_type_is_reported_by_name(idn_caffe: Path, tmp_path: Path) -> None:
    edited = _edited_prototxt(idn_caffe, tmp_path, 'type: "ReLU"', 'type: "PReLU"')
    with pytest.raises(SrExportError, match=r"relu_conv1 \(type PReLU\)"):
        import_idn(idn_caffe / "IDN_x4.caffemodel", edited)


def test_a_channel_split_elsewhere_is_reported(idn_caffe: Path, tmp_path: Path) -> None:
    edited = _edited_prototxt(idn_caffe, tmp_path, "slice_point: 16", "slice_point: 8")
    with pytest.raises(SrExportError, match=r"slice1 \(Slice at \(8,\)"):
        import_idn(idn_caffe / "IDN_x4.caffemodel", edited)
