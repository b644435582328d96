"""The ONNX-graph counter against numbers worked out by hand from the layer shapes.

Models are exported the way sr-export exports them (legacy exporter, dynamic
height and width), so the counter has to resolve shapes itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from sr_export.bench.onnx_count import (
    GraphCount,
    OpCount,
    count_onnx,
    folded_node_indices,
    inferred_shapes,
    resolve_shapes,
    with_fixed_input,
)
from sr_export.core.errors import SrExportError


def export(model: nn.Module, path: Path, channels: int = 3, dynamic_batch: bool = False) -> Path:
    """Export with dynamic H/W exactly like sr_export.export.onnx does (traced at 32x32)."""
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_batch else {2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, channels, 32, 32),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes},
        )
    return path


def row(count: GraphCount, op_type: str) -> OpCount:
    rows = {r.op_type: r for r in count.by_op}
    assert op_type in rows, f"{op_type} missing from {sorted(rows)}"
    return rows[op_type]


def pool_out(size: int, kernel: int, stride: int, pad: int = 0) -> int:
    return (size + 2 * pad - kernel) // stride + 1


# ---------------------------------------------------------------- convolutions


def test_single_conv(tmp_path: Path) -> None:
    path = export(nn.Conv2d(3, 8, 3, padding=1), tmp_path / "conv.onnx")
    count = count_onnx(path, (1, 3, 16, 16))
    assert count.macs == 9 * 3 * 8 * 256
    assert count.params == 8 * 3 * 9 + 8
    assert count.conv_count == 1
    assert count.conv_activations == 8 * 256
    assert count.other_ops == 0 and count.flops == count.macs
    assert count.uncounted == ()
    assert count.by_op == (OpCount("Conv", 1, 9 * 3 * 8 * 256, 0, 8 * 256),)
    assert count.input_shape == (1, 3, 16, 16)


def test_batch_multiplies_the_work(tmp_path: Path) -> None:
    path = export(nn.Conv2d(3, 8, 3, padding=1), tmp_path / "conv.onnx", dynamic_batch=True)
    count = count_onnx(str(path), (2, 3, 16, 16))
    assert count.macs == 2 * 9 * 3 * 8 * 256
    assert count.conv_activations == 2 * 8 * 256
    assert count.params == 8 * 3 * 9 + 8


def test_grouped_conv_and_transposed_conv(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=4),
        nn.ConvTranspose2d(8, 1, 5, stride=2, padding=2, output_padding=1),
    )
    count = count_onnx(export(model, tmp_path / "groups.onnx", channels=4), (1, 4, 16, 16))
    plain = 3 * 3 * 4 * 8 * 16 * 16
    grouped = 3 * 3 * (8 // 4) * 8 * 16 * 16
    # Every one of the 8x16x16 input pixels scatters a 5x5 kernel into 1 output channel.
    transposed = 5 * 5 * 8 * 1 * 16 * 16
    assert row(count, "Conv").macs == plain + grouped
    assert row(count, "ConvTranspose").macs == transposed
    assert count.macs == plain + grouped + transposed
    # The AIM formula, per *output* pixel, is stride**2 = 4 times larger for this layer.
    assert 5 * 5 * 8 * 1 * 32 * 32 == 4 * transposed
    assert count.conv_count == 3
    assert count.conv_activations == 8 * 256 + 8 * 256 + 1 * 32 * 32
    assert row(count, "ConvTranspose").output_elements == 32 * 32
    assert count.params == (8 * 4 * 9 + 8) + (8 * 2 * 9 + 8) + (8 * 1 * 25 + 1)


def test_grouped_transposed_conv(tmp_path: Path) -> None:
    model = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2, bias=False)
    count = count_onnx(export(model, tmp_path / "tgroups.onnx", channels=8), (1, 8, 10, 12))
    assert count.macs == 4 * 4 * 8 * (4 // 2) * 10 * 12
    assert count.conv_activations == 4 * 20 * 24
    assert count.params == 8 * 2 * 4 * 4


# ---------------------------------------------------------------- what module hooks cannot see


class GatedAttention(nn.Module):
    """Functional attention over all pixels plus a squeeze-excite gate: no conv/activation modules."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, channels, 1)
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        b, c, h, w = y.shape
        q = y.flatten(2)  # b, c, hw
        attn = torch.softmax(q.transpose(1, 2) @ q, dim=-1)  # b, hw, hw
        out = (q @ attn).reshape(b, c, h, w)
        gate = torch.sigmoid(self.fc(out.mean(dim=(2, 3))))  # b, c
        return out * gate[:, :, None, None]


def test_matmul_attention_and_gate(tmp_path: Path) -> None:
    c, h, w = 4, 8, 6
    hw = h * w
    count = count_onnx(export(GatedAttention(c), tmp_path / "attn.onnx"), (1, 3, h, w))
    conv = 3 * c * hw
    matmuls = hw * hw * c + c * hw * hw  # q^T q (K=c), then q attn (K=hw)
    gemm = c * c  # Linear on (1, c); its bias is not a MAC
    assert row(count, "MatMul").calls == 2
    assert row(count, "MatMul").macs == matmuls
    assert row(count, "Gemm").macs == gemm
    assert count.macs == conv + matmuls + gemm
    assert row(count, "Softmax").elementwise == 3 * hw * hw
    assert row(count, "ReduceMean").elementwise == c * hw  # one per input element
    assert row(count, "Sigmoid").elementwise == c
    assert row(count, "Mul").elementwise == c * hw
    assert count.other_ops == 3 * hw * hw + c * hw + c + c * hw
    assert count.flops == count.macs + count.other_ops
    assert count.conv_count == 1
    assert count.params == (3 * c + c) + (c * c + c)
    assert count.uncounted == ()
    # Most work first.
    assert count.by_op[0].op_type == "MatMul"
    work = [r.macs + r.elementwise for r in count.by_op]
    assert work == sorted(work, reverse=True)


# ---------------------------------------------------------------- shapes that only exist at a given size


class SpatialAttention(nn.Module):
    """The ESA pattern: strided conv, max-pool, bilinear resize back to the input's size, sigmoid gate."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.expand = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.max_pool2d(self.reduce(x), kernel_size=7, stride=3)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.expand(y))


@pytest.mark.parametrize("height, width", [(64, 64), (45, 71)])
def test_resize_and_pool_follow_the_input_size(tmp_path: Path, height: int, width: int) -> None:
    count = count_onnx(export(SpatialAttention(), tmp_path / "esa.onnx"), (1, 3, height, width))
    h2, w2 = pool_out(height, 3, 2, 1), pool_out(width, 3, 2, 1)
    hp, wp = pool_out(h2, 7, 3), pool_out(w2, 7, 3)
    assert row(count, "MaxPool").output_elements == 4 * hp * wp
    assert row(count, "MaxPool").elementwise == 7 * 7 * 4 * hp * wp
    assert row(count, "Resize").output_elements == 4 * height * width
    assert row(count, "Resize").elementwise == 4 * (4 * height * width)  # bilinear: 4 per output element
    assert count.macs == 27 * 4 * h2 * w2 + 4 * 3 * height * width
    assert count.conv_activations == 4 * h2 * w2 + 3 * height * width
    # The Shape/Gather/Concat chain that computes the resize target is folded, not counted.
    assert "Shape" not in {r.op_type for r in count.by_op}
    assert count.folded_nodes > 0


def test_two_sizes_give_different_totals(tmp_path: Path) -> None:
    path = export(SpatialAttention(), tmp_path / "esa.onnx")
    square, odd = count_onnx(path, (1, 3, 64, 64)), count_onnx(path, (1, 3, 45, 71))
    assert row(square, "Resize").elementwise == 4 * 4 * 64 * 64
    assert row(odd, "Resize").elementwise == 4 * 4 * 45 * 71
    assert row(square, "MaxPool").elementwise == 49 * 4 * 9 * 9
    assert row(odd, "MaxPool").elementwise == 49 * 4 * 6 * 10
    assert square.params == odd.params == (4 * 3 * 9 + 4) + (3 * 4 + 3)


def test_conv_net_scales_with_area(tmp_path: Path) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 12, 3, padding=1), nn.PixelShuffle(2),
    )
    path = export(model, tmp_path / "net.onnx")
    small, large = count_onnx(path, (1, 3, 24, 20)), count_onnx(path, (1, 3, 48, 60))
    per_pixel_macs = 9 * 3 * 16 + 9 * 16 * 16 + 9 * 16 * 12
    assert small.macs == per_pixel_macs * 24 * 20
    assert large.macs == per_pixel_macs * 48 * 60
    assert large.macs == 6 * small.macs and large.other_ops == 6 * small.other_ops
    assert small.other_ops == 2 * 16 * 24 * 20  # the two ReLUs
    assert small.params == large.params == (9 * 3 * 16 + 16) + (9 * 16 * 16 + 16) + (9 * 16 * 12 + 12)
    assert row(large, "DepthToSpace").output_elements == 3 * 96 * 120
    assert row(large, "DepthToSpace").elementwise == 0


class PaddedWindowAttention(nn.Module):
    """SwinIR-style: reflect-pad to a multiple of the window, attend within 8x8 windows, crop back."""

    def __init__(self, channels: int = 4, window: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.window
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (s - w % s) % s, 0, (s - h % s) % s), mode="reflect")
        y = self.conv(x)
        b, c, hh, ww = y.shape
        t = y.view(b, c, hh // s, s, ww // s, s).permute(0, 2, 4, 3, 5, 1).reshape(-1, s * s, c)
        t = torch.softmax(t @ t.transpose(1, 2), dim=-1) @ t
        y = t.reshape(b, hh // s, ww // s, s, s, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, hh, ww)
        return y[:, :, :h, :w]


def test_shapes_that_shape_inference_cannot_propagate(tmp_path: Path) -> None:
    path = export(PaddedWindowAttention(), tmp_path / "window.onnx")
    fixed = with_fixed_input(onnx.load(str(path)), (1, 3, 45, 71))
    conv_output = next(node.output[0] for node in fixed.graph.node if node.op_type == "Conv")
    # ONNX data propagation stops at Mod, so this test exercises the runtime fallback.
    assert conv_output not in inferred_shapes(fixed)

    count = count_onnx(path, (1, 3, 45, 71))
    hh, ww, windows, c = 48, 72, (48 // 8) * (72 // 8), 4
    assert row(count, "Conv").macs == 27 * c * hh * ww
    assert row(count, "MatMul").macs == 2 * windows * 64 * 64 * c
    assert row(count, "Softmax").elementwise == 3 * windows * 64 * 64
    assert row(count, "Pad").output_elements == 3 * hh * ww
    assert row(count, "Slice").output_elements == c * 45 * ww + c * 45 * 71
    assert count.uncounted == ()


def test_runtime_fallback_only_fetches_the_folded_shape_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading every unresolved activation back would hold them all in memory at once; the
    # fallback first asks the runtime only for the small shape tensors and infers the rest.
    from sr_export.bench import onnx_count

    path = export(PaddedWindowAttention(), tmp_path / "window.onnx")
    requests: list[list[str]] = []
    run_graph = onnx_count._run_graph

    def recording(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, np.ndarray]:
        requests.append(list(names))
        values = run_graph(model, names)
        assert all(value.size <= 8 for value in values.values()), {k: v.shape for k, v in values.items()}
        return values

    monkeypatch.setattr(onnx_count, "_run_graph", recording)
    count = count_onnx(path, (1, 3, 45, 71))
    assert len(requests) == 1
    assert row(count, "Conv").macs == 27 * 4 * 48 * 72


def test_runtime_reads_shapes_when_nothing_is_folded(tmp_path: Path) -> None:
    path = export(PaddedWindowAttention(), tmp_path / "window.onnx")
    fixed = with_fixed_input(onnx.load(str(path)), (1, 3, 45, 71))
    conv_output = next(node.output[0] for node in fixed.graph.node if node.op_type == "Conv")
    assert folded_node_indices(fixed.graph)
    shapes = resolve_shapes(fixed, {conv_output, "output"}, folded=frozenset())
    assert shapes[conv_output] == (1, 4, 48, 72)
    assert shapes["output"] == (1, 4, 45, 71)


# ---------------------------------------------------------------- rules on hand-built graphs


def build(
    nodes: list[onnx.NodeProto],
    input_shape: list[int | str],
    initializers: Sequence[onnx.TensorProto] = (),
    output_rank: int = 4,
) -> onnx.ModelProto:
    """A one-input graph x -> y with dynamic dims where ``input_shape`` names them."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"d{i}" for i in range(output_rank)])],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def const(name: str, values: object, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


@pytest.mark.parametrize("mode, per_element", [("nearest", 0), ("linear", 4), ("cubic", 16)])
def test_resize_modes(mode: str, per_element: int) -> None:
    model = build(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode)],
        [1, 2, "h", "w"],
        [const("scales", [1, 1, 2, 3])],
    )
    count = count_onnx(model, (1, 2, 5, 7))
    assert count.other_ops == per_element * 2 * 10 * 21
    assert count.by_op == (OpCount("Resize", 1, 0, per_element * 420, 420),)
    assert count.params == 0  # scales are a setting, not a weight


def test_pooling_reductions_and_elementwise() -> None:
    model = build(
        [
            helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
            helper.make_node("ReduceMax", ["p"], ["r"], keepdims=1, axes=[1]),
            helper.make_node("Max", ["p", "r", "p"], ["m"]),
            helper.make_node("Clip", ["m", "lo", "hi"], ["c"]),
            helper.make_node("Mul", ["c", "half"], ["y"]),
        ],
        [1, 3, "h", "w"],
        [const("lo", 0.0), const("hi", 1.0), const("half", 0.5)],
    )
    count = count_onnx(model, (1, 3, 4, 5))
    n = 3 * 4 * 5
    assert row(count, "AveragePool").elementwise == 9 * n
    assert row(count, "ReduceMax").elementwise == n  # per input element
    assert row(count, "ReduceMax").output_elements == 4 * 5
    assert row(count, "Max").elementwise == 2 * n  # three inputs: two comparisons per element
    assert row(count, "Clip").elementwise == n
    assert row(count, "Mul").elementwise == n
    assert count.macs == 0 and count.other_ops == 9 * n + n + 2 * n + n + n
    assert count.params == 0  # Clip limits and the 0-d literal are not parameters


def test_einsum_and_prelu_weights() -> None:
    model = build(
        [
            helper.make_node("PRelu", ["x", "slope"], ["a"]),
            helper.make_node("Reshape", ["a", "shape"], ["t"]),
            helper.make_node("Einsum", ["t", "t"], ["y"], equation="bci,bcj->bij"),
        ],
        [1, 4, 3, 5],
        [const("slope", [[[0.1]], [[0.2]], [[0.3]], [[0.4]]]), const("shape", [1, 4, 15], np.int64)],
        output_rank=3,
    )
    count = count_onnx(model, (1, 4, 3, 5))
    assert row(count, "Einsum").macs == 1 * 4 * 15 * 15
    assert row(count, "Einsum").output_elements == 15 * 15
    assert row(count, "PRelu").elementwise == 60
    assert row(count, "Reshape").elementwise == 0 and row(count, "Reshape").calls == 1
    assert count.params == 4  # the slopes; the int64 reshape target is not a parameter


def test_gemm_with_transposed_operands() -> None:
    # y = x^T w^T + b with x: K x M = 5 x 3, w: N x K = 4 x 5, so y: 3 x 4 and K = 5.
    model = build(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transA=1, transB=1)],
        ["k", 3],
        [const("w", np.ones((4, 5))), const("b", np.zeros(4))],
        output_rank=2,
    )
    count = count_onnx(model, (5, 3))
    assert count.macs == 3 * 4 * 5
    assert count.params == 4 * 5 + 4
    assert count.conv_count == 0 and count.conv_activations == 0


def test_unknown_ops_are_listed_not_guessed() -> None:
    model = build(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("CumSum", ["r", "axis"], ["y"])],
        [1, 2, "h", "w"],
        [const("axis", 3, np.int64)],
    )
    count = count_onnx(model, (1, 2, 3, 4))
    assert count.uncounted == ("CumSum",)
    assert row(count, "CumSum") == OpCount("CumSum", 1, 0, 0, 24)
    assert count.other_ops == 24  # only the Relu
    assert count.to_dict()["uncounted"] == ["CumSum"]


def test_to_dict() -> None:
    model = build([helper.make_node("Sigmoid", ["x"], ["y"])], [1, 1, "h", "w"])
    data = count_onnx(model, (1, 1, 2, 3)).to_dict()
    assert data["input_shape"] == [1, 1, 2, 3]
    assert data["flops"] == data["macs"] + data["other_ops"] == 6
    assert data["by_op"] == [
        {"op_type": "Sigmoid", "calls": 1, "macs": 0, "elementwise": 6, "output_elements": 6}
    ]


# ---------------------------------------------------------------- errors a user can act on


def test_input_shape_must_fit(tmp_path: Path) -> None:
    path = export(nn.Conv2d(3, 8, 3, padding=1), tmp_path / "conv.onnx")
    with pytest.raises(SrExportError, match="3x16x16 does not fit .* which is 1x3xheightxwidth"):
        count_onnx(path, (3, 16, 16))
    with pytest.raises(SrExportError, match="which is 1x3xheightxwidth"):
        count_onnx(path, (1, 4, 16, 16))
    with pytest.raises(SrExportError, match="which is 1x3xheightxwidth"):
        count_onnx(path, (2, 3, 16, 16))  # the batch is fixed in this export


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="not found"):
        count_onnx(tmp_path / "nope.onnx", (1, 3, 8, 8))


def test_a_graph_that_cannot_run_at_that_size_fails_clearly(tmp_path: Path) -> None:
    # Reflect-padding 3 pixels up to 8 needs more than 3 pixels; the runtime fallback reports that.
    path = export(PaddedWindowAttention(), tmp_path / "window.onnx")
    with pytest.raises(SrExportError, match="ONNX Runtime failed.*Pad"):
        count_onnx(path, (1, 3, 3, 3))


def test_an_input_too_small_for_the_pooling_is_refused(tmp_path: Path) -> None:
    # 4x4 -> strided conv 2x2 -> a 7x7 max-pool has nothing to pool; shape inference says 0x0.
    path = export(SpatialAttention(), tmp_path / "esa.onnx")
    with pytest.raises(SrExportError, match="too small.*MaxPool"):
        count_onnx(path, (1, 3, 4, 4))
