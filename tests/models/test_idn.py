"""IDN's residual path is MATLAB bicubic upscaling, inside the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_export.data.matlab_resize import upscale
from sr_export.models.blocks import MatlabBicubicUpsample


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_in_network_bicubic_equals_matlab_imresize(scale: int) -> None:
    image = np.random.default_rng(scale).random((13, 18))
    expected = upscale(image, scale)
    with torch.inference_mode():
        got = MatlabBicubicUpsample(scale)(torch.from_numpy(image).float()[None, None])[0, 0].numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def test_bicubic_buffer_is_not_a_parameter() -> None:
    assert sum(p.numel() for p in MatlabBicubicUpsample(4).parameters()) == 0


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 2), (2, 7), (5, 3), (17, 10)])
def test_bicubic_matches_matlab_to_float_precision_on_odd_sizes_and_borders(scale: int, shape: tuple[int, int]) -> None:
    # Values near the ends of [0, 1] with sharp edges at the borders: that is where
    # MATLAB's mirrored ('symmetric') padding differs from clamping or reflection.
    rng = np.random.default_rng(sum(shape) * scale)
    image = rng.random(shape)
    image[0, :] = 1.0
    image[:, -1] = 0.0
    expected = upscale(image, scale)
    with torch.inference_mode():
        got = MatlabBicubicUpsample(scale)(torch.from_numpy(image).float()[None, None])[0, 0].double().numpy()
    assert got.shape == expected.shape == (shape[0] * scale, shape[1] * scale)
    # float32 input and taps against MATLAB's float64: the input alone is rounded by ~3e-8.
    assert np.abs(got - expected).max() < 1e-6


def test_bicubic_runs_each_channel_on_its_own() -> None:
    image = np.random.default_rng(0).random((9, 6, 3))
    with torch.inference_mode():
        got = MatlabBicubicUpsample(3, channels=3)(torch.from_numpy(image.transpose(2, 0, 1)).float()[None])[0]
    assert np.abs(got.double().numpy().transpose(1, 2, 0) - upscale(image, 3)).max() < 1e-6


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bicubic_is_convolution_and_depth_to_space_in_onnx(tmp_path) -> None:
    """Ops that ONNX Runtime, TFLite and Core ML all have: no Resize (whose cubic is a = -0.75)."""
    import onnx

    path = tmp_path / "bicubic.onnx"
    torch.onnx.export(MatlabBicubicUpsample(4), (torch.rand(1, 1, 8, 8),), str(path), dynamo=False, opset_version=18,
                      input_names=["x"], dynamic_axes={"x": {2: "h", 3: "w"}})
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Conv" in ops and "Resize" not in ops
    assert ops <= {"Conv", "DepthToSpace", "Reshape", "Transpose", "Slice", "Concat", "Constant", "Shape", "Gather",
                   "Sub", "Add", "Unsqueeze", "Squeeze", "Cast", "Mul", "Div"}


def test_a_checkpoint_carries_its_scale(tmp_path) -> None:
    from sr_export.core.errors import SrExportError
    from sr_export.models.idn import build_idn
    from sr_export.models.loader import ModelRequest, load_model

    path = tmp_path / "idn_x2.pth"
    torch.save(build_idn(scale=2).state_dict(), path)
    assert load_model(ModelRequest("idn", weights=str(path))).info.scale == 2
    with pytest.raises(SrExportError, match="is a x2 checkpoint but --scale 4 was asked"):
        load_model(ModelRequest("idn", scale=4, weights=str(path)))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_official_weights_are_the_authors_caffe_models(official_model, weights_dir, scale: int) -> None:
    model = official_model("idn", scale)
    assert model.weights_path.resolve() == (weights_dir / "idn_caffe" / f"IDN_x{scale}.caffemodel").resolve()
    assert model.info.scale == scale and model.info.color == "y" and model.params == 552_769


def test_an_official_caffemodel_with_a_changed_prototxt_beside_it_is_refused(weights_dir, tmp_path, monkeypatch) -> None:
    import shutil

    from sr_export.core.errors import SrExportError
    from sr_export.models.loader import ModelRequest, load_model

    folder = tmp_path / "weights" / "idn_caffe"
    folder.mkdir(parents=True)
    shutil.copy(weights_dir / "idn_caffe" / "IDN_x3.caffemodel", folder)
    (folder / "IDN_x3_deploy.prototxt").write_text("name: \"not the authors'\"\n")
    monkeypatch.setenv("SR_EXPORT_WEIGHTS_DIR", str(tmp_path / "weights"))
    with pytest.raises(SrExportError, match="IDN_x3_deploy.prototxt of the official idn x3"):
        load_model(ModelRequest("idn", scale=3, weights="official"))


def test_a_downloaded_caffemodel_brings_its_verified_prototxt(weights_dir, tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from sr_export.core.cache import weights_cache_dir as cache_dir
    from sr_export.models.registry import get_spec
    from sr_export.models.weights import resolve_official

    monkeypatch.setenv("SR_EXPORT_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SR_EXPORT_CACHE", str(tmp_path / "cache"))
    official = get_spec("idn").official_for(2)
    source = weights_dir / "idn_caffe"
    offline = replace(
        official,
        url=(source / "IDN_x2.caffemodel").resolve().as_uri(),
        companions=tuple(replace(c, url=(source / c.filename).resolve().as_uri()) for c in official.companions),
    )
    path = resolve_official(offline)
    assert path == cache_dir() / "idn_caffe" / "IDN_x2.caffemodel"
    assert sorted(p.name for p in path.parent.iterdir()) == ["IDN_x2.caffemodel", "IDN_x2_deploy.prototxt"]
    assert (path.parent / "IDN_x2_deploy.prototxt").read_bytes() == (source / "IDN_x2_deploy.prototxt").read_bytes()
