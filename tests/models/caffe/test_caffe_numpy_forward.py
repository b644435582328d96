"""The NumPy Caffe forward pass is a trustworthy reference: checked by hand, then against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.caffe.net import CaffeLayer, CaffeNet, ConvSettings
from sr_export.models.caffe.numpy_forward import convolution, deconvolution, forward


def _layer(kind: str, settings: ConvSettings) -> CaffeLayer:
    return CaffeLayer(name="l", type=kind, bottoms=("x",), tops=("y",), conv=settings)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deconvolution_output_size_and_alignment_follow_caffe(scale: int) -> None:
    # One input pixel at (i, j) scatters the kernel to rows scale*i - 8 ... scale*i + 8
    # of an output that is scale*h - scale + 1 tall (17x17 kernel, pad 8).
    h, w, i, j = 5, 4, 2, 1
    x = np.zeros((1, 1, h, w))
    x[0, 0, i, j] = 1.0
    kernel = np.arange(17 * 17, dtype=np.float64).reshape(1, 1, 17, 17)
    out = deconvolution(x, kernel, None, _layer("Deconvolution", ConvSettings(1, (17, 17), (scale, scale), (8, 8))))
    assert out.shape == (1, 1, scale * h - scale + 1, scale * w - scale + 1)
    for r in range(out.shape[2]):
        for c in range(out.shape[3]):
            ki, kj = r - scale * i + 8, c - scale * j + 8
            inside = 0 <= ki < 17 and 0 <= kj < 17
            assert out[0, 0, r, c] == (kernel[0, 0, ki, kj] if inside else 0.0)


def test_deconvolution_weights_are_in_by_out() -> None:
    # Two input channels, three outputs: blob (2, 3, 1, 1) multiplies like a 2x3 matrix.
    x = np.array([1.0, 10.0]).reshape(1, 2, 1, 1)
    weight = np.arange(6, dtype=np.float64).reshape(2, 3, 1, 1)
    out = deconvolution(x, weight, np.array([0.5, 0.5, 0.5]), _layer("Deconvolution", ConvSettings(3, (1, 1))))
    assert out.reshape(-1).tolist() == [30.5, 41.5, 52.5]


def test_convolution_by_hand() -> None:
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    weight = np.zeros((1, 1, 3, 3))
    weight[0, 0, 0, 0] = 1.0  # picks the top-left neighbour (zero outside)
    out = convolution(x, weight, np.array([2.0]), _layer("Convolution", ConvSettings(1, (3, 3), pad=(1, 1))))
    assert out[0, 0].tolist() == [[2, 2, 2, 2], [2, 2, 3, 4], [2, 6, 7, 8], [2, 10, 11, 12]]


@pytest.mark.parametrize(("stride", "pad", "groups"), [(1, 1, 1), (1, 1, 4), (2, 0, 2)])
def test_convolution_equals_pytorch_conv2d(stride: int, pad: int, groups: int) -> None:
    rng = np.random.default_rng(stride + pad + groups)
    x, weight, bias = rng.normal(size=(1, 8, 9, 7)), rng.normal(size=(12, 8 // groups, 3, 3)), rng.normal(size=12)
    ours = convolution(x, weight, bias, _layer("Convolution", ConvSettings(12, (3, 3), (stride, stride), (pad, pad),
                                                                          group=groups)))
    theirs = torch.nn.functional.conv2d(*(torch.from_numpy(a) for a in (x, weight, bias)), stride=stride,
                                        padding=pad, groups=groups)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-10)


@pytest.mark.parametrize(("scale", "groups"), [(2, 1), (3, 1), (4, 2)])
def test_caffe_deconvolution_is_pytorch_conv_transpose_with_the_same_blob(scale: int, groups: int) -> None:
    rng = np.random.default_rng(scale)
    x, weight, bias = rng.normal(size=(1, 4, 6, 5)), rng.normal(size=(4, 3, 17, 17)), rng.normal(size=3 * groups)
    ours = deconvolution(x, weight, bias, _layer("Deconvolution", ConvSettings(3 * groups, (17, 17), (scale, scale),
                                                                              (8, 8), group=groups)))
    theirs = torch.nn.functional.conv_transpose2d(*(torch.from_numpy(a) for a in (x, weight, bias)), stride=scale,
                                                  padding=8, groups=groups)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-10)


def test_the_graph_runs_by_blob_names() -> None:
    # Split -> Slice -> ReLU(slope) on one part -> Concat -> Eltwise sum with the input.
    layers = (
        CaffeLayer("split", "Split", ("data",), ("a", "b")),
        CaffeLayer("slice", "Slice", ("a",), ("s1", "s2"), slice_points=(1,)),
        CaffeLayer("relu", "ReLU", ("s2",), ("s2",), negative_slope=0.5),
        CaffeLayer("concat", "Concat", ("s1", "s2"), ("c",)),
        CaffeLayer("sum", "Eltwise", ("c", "b"), ("out",)),
    )
    x = np.array([-1.0, -2.0, 3.0]).reshape(1, 3, 1, 1)
    out = forward(CaffeNet("n", ("data",), layers), {"data": x})["out"]
    assert out.reshape(-1).tolist() == [-2.0, -3.0, 6.0]


def test_an_unsupported_layer_is_named() -> None:
    net = CaffeNet("n", ("data",), (CaffeLayer("pool", "Pooling", ("data",), ("p",)),))
    with pytest.raises(SrExportError, match="'pool' has type Pooling"):
        forward(net, {"data": np.zeros((1, 1, 2, 2))})
