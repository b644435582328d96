"""The numpy Core ML reference executor: each kernel against PyTorch, FP16 rounding, loud failures.

Kernels are checked against the PyTorch op they stand for (the semantics
Core ML's converter maps them from); whole programs are built with
coremltools' MIL builder and saved, so the executor reads real packages.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_export.runtimes.coreml import reference as ref

RNG = np.random.default_rng(7)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(got: np.ndarray, want: torch.Tensor) -> None:
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("stride", "dilation", "groups", "padding"), [(1, 1, 1, 1), (2, 1, 1, 0), (1, 2, 4, 2), (2, 1, 8, 1)])
def test_conv_matches_torch(stride: int, dilation: int, groups: int, padding: int) -> None:
    x, w, b = rand(2, 8, 11, 13), rand(16, 8 // groups, 3, 3), rand(16)
    got = ref.conv(x, w, b, strides=[stride, stride], pad_type="custom", pad=[padding] * 4,
                   dilations=[dilation, dilation], groups=groups)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, padding, dilation, groups)
    close(got, want)


def test_conv_same_padding_matches_torch() -> None:
    x, w = rand(1, 3, 9, 10), rand(4, 3, 5, 5)
    close(ref.conv(x, w, pad_type="same"), F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same"))


@pytest.mark.parametrize(("stride", "padding", "output_padding", "groups"), [(2, 0, 0, 1), (3, 6, 2, 1), (4, 5, 0, 2)])
def test_conv_transpose_matches_torch(stride: int, padding: int, output_padding: int, groups: int) -> None:
    x, w, b = rand(1, 4, 6, 7), rand(4, 6 // groups if groups > 1 else 6, 9, 9), rand(6 if groups == 1 else 6)
    want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, padding,
                              output_padding, groups)
    got = ref.conv_transpose(x, w, b, pad=[padding] * 4, pad_type="custom", strides=[stride, stride], groups=groups,
                             output_shape=list(want.shape))
    close(got, want)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_matches_torch(ceil_mode: bool) -> None:
    x = rand(1, 2, 20, 17)
    got = ref.max_pool(x, [7, 7], [3, 3], "valid", ceil_mode=ceil_mode)
    close(got, F.max_pool2d(torch.from_numpy(x), 7, 3, ceil_mode=ceil_mode))


def test_avg_pool_excludes_padding_like_torch() -> None:
    x = rand(1, 2, 9, 9)
    got = ref.avg_pool(x, [3, 3], [2, 2], "custom", [1, 1, 1, 1], exclude_padding_from_average=True)
    close(got, F.avg_pool2d(torch.from_numpy(x), 3, 2, 1, count_include_pad=False))


@pytest.mark.parametrize(("source", "target"), [((3, 3), (32, 32)), ((5, 4), (17, 23)), ((8, 8), (4, 6))])
def test_bilinear_resize_matches_interpolate(source: tuple[int, int], target: tuple[int, int]) -> None:
    x = rand(1, 3, *source)
    want = F.interpolate(torch.from_numpy(x), size=target, mode="bilinear", align_corners=False)
    close(ref.resize_bilinear(x, target[0], target[1], "UNALIGN_CORNERS"), want)
    aligned = F.interpolate(torch.from_numpy(x), size=target, mode="bilinear", align_corners=True)
    close(ref.resize_bilinear(x, target[0], target[1], "STRICT_ALIGN_CORNERS"), aligned)


def test_upsample_bilinear_with_integer_scale_matches_interpolate() -> None:
    x = rand(1, 2, 5, 6)
    want = F.interpolate(torch.from_numpy(x), scale_factor=3, mode="bilinear", align_corners=False)
    close(ref.upsample_bilinear(x, 3, 3, align_corners=False), want)


def test_pixel_shuffle_and_depth_to_space_orders() -> None:
    x = rand(1, 18, 4, 5)
    close(ref.pixel_shuffle(x, 3), F.pixel_shuffle(torch.from_numpy(x), 3))
    close(ref.pixel_unshuffle(ref.pixel_shuffle(x, 3), 3), torch.from_numpy(x))
    # DCR: depth_to_space undoes space_to_depth, and differs from pixel shuffle's CRD order.
    np.testing.assert_array_equal(ref.depth_to_space(ref.space_to_depth(x[:, :2, :4, :4], 2), 2), x[:, :2, :4, :4])
    assert not np.array_equal(ref.depth_to_space(x, 3), ref.pixel_shuffle(x, 3))


def test_slices_splits_and_reductions() -> None:
    x = rand(1, 6, 8, 9)
    np.testing.assert_array_equal(ref.slice_by_index(x, [0, 0, 1, 0], [1, 6, 7, 9], [1, 1, 2, 1]), x[:, :, 1:7:2])
    np.testing.assert_array_equal(ref.slice_by_size(x, [0, 2, 0, 0], [-1, 3, -1, -1]), x[:, 2:5])
    first, second = ref.split(x, axis=1, split_sizes=[2, 4])
    np.testing.assert_array_equal(second, x[:, 2:])
    close(ref.KERNELS["reduce_mean"](x, axes=[2, 3], keep_dims=True), torch.from_numpy(x).mean((2, 3), keepdim=True))


def test_constexpr_dequantisation() -> None:
    data = np.array([[-128, 0, 127], [10, 20, 30]], np.int8)
    scale = np.array([0.5, 2.0], np.float32)
    got = ref.constexpr_affine_dequantize(data, np.zeros(2, np.int8), scale, 0)
    np.testing.assert_array_equal(got, data.astype(np.float32) * scale[:, None])
    blockwise = ref.constexpr_blockwise_shift_scale(data, scale.reshape(2, 1))
    np.testing.assert_array_equal(blockwise, got)


# --- whole programs ------------------------------------------------------------


@pytest.fixture(scope="module")
def mil() -> tuple:
    from sr_export.runtimes.coreml.quiet import import_coremltools

    ct = import_coremltools()
    from coremltools.converters.mil import Builder as mb

    return ct, mb


def save_program(ct, program, folder, precision: str) -> ref.MilProgram:
    from sr_export.runtimes.coreml.quiet import quiet_converter as _quiet_converter

    with _quiet_converter():
        model = ct.convert(program, convert_to="mlprogram", skip_model_load=True,
                           compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
                           minimum_deployment_target=ct.target.iOS17)
        model.save(str(folder / "p.mlpackage"))
    return ref.MilProgram.from_package(folder / "p.mlpackage")


def test_fp16_programs_round_where_the_program_casts(mil, tmp_path) -> None:
    ct, mb = mil

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, 2, 4))], opset_version=ct.target.iOS17)
    def program(x):
        return mb.mul(x=x, y=np.float32(3.0), name="out")

    fp16 = save_program(ct, program, tmp_path, "fp16")
    x = np.array([[[[1.0001, 2049.0, 0.1, -3.3333], [1e-5, 7.0, 20000.0, 1.0]]]], np.float32)
    name = fp16.outputs[0]
    got = fp16.run({fp16.inputs and next(iter(fp16.inputs)): x})[name]
    want = (x.astype(np.float16).astype(np.float32) * 3).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(got, np.float32), want)
    assert "cast" in fp16.op_types()
    assert not np.array_equal(np.asarray(got, np.float32), x * 3)  # FP16 really happened


def test_unsupported_ops_fail_loudly_with_their_name(mil, tmp_path) -> None:
    ct, mb = mil

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 4, 4))], opset_version=ct.target.iOS17)
    def program(x):
        return mb.cumsum(x=x, axis=1, name="running_total")

    executor = save_program(ct, program, tmp_path, "fp32")
    with pytest.raises(ref.UnsupportedOp, match=r"op 'cumsum' \(node 'running_total'\)"):
        executor.run({next(iter(executor.inputs)): rand(1, 3, 4, 4)})


def test_unimplemented_options_fail_loudly(mil, tmp_path) -> None:
    ct, mb = mil

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 4, 4))], opset_version=ct.target.iOS17)
    def program(x):
        return mb.resize_bilinear(x=x, target_size_height=8, target_size_width=8, sampling_mode="OFFSET_CORNERS",
                                  name="odd_resize")

    executor = save_program(ct, program, tmp_path, "fp32")
    with pytest.raises(ref.UnsupportedOp, match="resize_bilinear.*odd_resize.*OFFSET_CORNERS"):
        executor.run({next(iter(executor.inputs)): rand(1, 3, 4, 4)})
