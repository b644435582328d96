"""Any model in, a graph that is right at every size out — or one line that says why not.

The models are written in ``tests/fixtures`` the way published efficient-SR
code writes them: Swin-style window attention, a multi-scale body that needs
sides in multiples of 16, channel-split attention, a plain conv net.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WINDOW = f"{FIXTURES / 'window_attention.py'}:WindowSR"
PLAIN_INT_WINDOW = f"{FIXTURES / 'window_attention.py'}:PlainIntWindowSR"
PUBLISHED = ("PaddedUNetSR", "ChannelSplitAttentionSR", "AnchorPlainSR")
REQUIRED_SIZES = [[64, 64], [45, 71], [100, 37]]


def _report(result) -> dict:
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_window_attention_with_symbolic_padding_exports_dynamic_and_right_at_every_size(
    tmp_path: Path, sr_export
) -> None:
    out = tmp_path / "window.onnx"
    report = _report(sr_export("onnx", "--model", WINDOW, "--scale", "4", "-o", out, "--json", "-"))
    metadata = report["metadata"]
    assert metadata["input_shape"] == ["batch", 3, "height", "width"]
    assert metadata["exporter"] in ("dynamo", "legacy")
    assert metadata["verified_sizes"] == REQUIRED_SIZES
    check = _report(sr_export("check", out, "--sizes", "64x64,45x71,100x37", "--json", "-"))
    assert sorted({tuple(c["input_shape"][2:]) for c in check["cases"]}) == [(45, 71), (64, 64), (100, 37)]
    assert min(c["psnr_db"] for c in check["cases"]) >= 80


def test_window_attention_with_python_int_sizes_is_refused_with_one_line_and_nothing_written(
    tmp_path: Path, sr_export
) -> None:
    out = tmp_path / "window.onnx"
    result = sr_export("onnx", "--model", PLAIN_INT_WINDOW, "--scale", "4", "-o", out)
    assert result.code == 1
    line = result.error()
    assert "no exporter produced a graph that is right at every size" in line
    assert "turns sizes into Python numbers" in line and "wrong at 45x71" in line
    assert "--shape HxW" in line and "--pad-to N" in line
    assert "[E:onnxruntime" not in result.err and "onnxruntime_src" not in result.err
    assert list(tmp_path.iterdir()) == []


def test_window_attention_with_python_int_sizes_exports_at_a_fixed_size_and_runs_any_size_tiled(
    tmp_path: Path, sr_export
) -> None:
    out = tmp_path / "window_64.onnx"
    report = _report(sr_export("onnx", "--model", PLAIN_INT_WINDOW, "--scale", "4", "--shape", "64x64",
                               "-o", out, "--json", "-"))
    assert report["metadata"]["input_shape"] == [1, 3, 64, 64]
    # Windows are anchored at the top-left corner: tiles must start on the window grid.
    assert report["metadata"]["tile_alignment"] == 8
    check = _report(sr_export("check", out, "--sizes", "64x64,45x71,100x71,141x103", "--json", "-"))
    assert check["passed"]
    psnr = {tuple(c["input_shape"][2:]): c["psnr_db"] for c in check["cases"] if c["tiled"]}
    assert set(psnr) == {(45, 71), (100, 71), (141, 103)}
    # Images of at least one tile: aligned tiles with the receptive field as overlap
    # reproduce the whole-image output.
    assert psnr[(100, 71)] >= 80 and psnr[(141, 103)] >= 80
    # A side shorter than a tile is padded up to it, and the network sees reflected
    # pixels where it would have seen its own zero padding: close, not exact.
    assert psnr[(45, 71)] >= 40


@pytest.fixture(scope="module")
def published_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Each published-style model's weights saved as .pth and as .safetensors."""
    import importlib.util

    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location("published_models", FIXTURES / "published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("published")
    paths: dict[str, dict[str, Path]] = {}
    torch.manual_seed(0)
    for name in PUBLISHED:
        state = getattr(module, name)(scale=4).state_dict()
        pth, st = folder / f"{name}.pth", folder / f"{name}.safetensors"
        torch.save({"params": state}, pth)
        save_file({k: v.contiguous() for k, v in state.items()}, str(st))
        paths[name] = {"pth": pth, "safetensors": st}
    return paths


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
@pytest.mark.parametrize("name", PUBLISHED)
def test_published_style_models_export_dynamic_from_either_checkpoint_format(
    name: str, fmt: str, published_checkpoints, tmp_path: Path, sr_export
) -> None:
    weights = published_checkpoints[name][fmt]
    out = tmp_path / f"{name}.onnx"
    report = _report(sr_export("onnx", "--model", f"{FIXTURES / 'published.py'}:{name}", "--weights", weights,
                               "-o", out, "--json", "-"))
    metadata = report["metadata"]
    assert metadata["scale"] == 4 and not metadata["random_init"]
    assert metadata["input_shape"] == ["batch", 3, "height", "width"]
    assert metadata["verified_sizes"] == REQUIRED_SIZES
    assert report["parity"]["passed"]


def test_the_same_weights_give_the_same_graph_from_pth_and_safetensors(published_checkpoints) -> None:
    from sr_export.models.loader import ModelRequest, load_model

    model = f"{FIXTURES / 'published.py'}:AnchorPlainSR"
    paths = published_checkpoints["AnchorPlainSR"]
    modules = [load_model(ModelRequest(model, weights=str(paths[f]))).module for f in ("pth", "safetensors")]
    for (key, a), (_, b) in zip(modules[0].state_dict().items(), modules[1].state_dict().items()):
        assert torch.equal(a, b), key


def test_a_model_that_needs_multiples_of_16_is_detected_and_padded_inside_the_graph(tmp_path: Path, sr_export) -> None:
    out = tmp_path / "unet.onnx"
    result = sr_export("onnx", "--model", f"{FIXTURES / 'published.py'}:UnpaddedUNetSR", "--exporter", "legacy",
                       "-o", out, "--json", "-")
    report = _report(result)
    assert "needs inputs in multiples of 16" in result.err.replace("\n", " ") or "multiple of 16" in result.err
    metadata = report["metadata"]
    assert metadata["size_multiple"] == 16 and metadata["pads_in_graph"]
    assert metadata["verified_sizes"] == REQUIRED_SIZES


def test_pad_to_makes_a_size_bound_model_dynamic(tmp_path: Path, sr_export) -> None:
    out = tmp_path / "unet.onnx"
    report = _report(sr_export("onnx", "--model", f"{FIXTURES / 'published.py'}:UnpaddedUNetSR", "--pad-to", "32",
                               "--exporter", "legacy", "-o", out, "--json", "-"))
    assert report["metadata"]["size_multiple"] == 32
    assert report["metadata"]["request"]["pad_to"] == 32
    assert report["metadata"]["verified_sizes"] == REQUIRED_SIZES


def test_pad_to_too_small_for_the_model_fails_in_the_forward_stage(tmp_path: Path, sr_export) -> None:
    result = sr_export("onnx", "--model", f"{FIXTURES / 'published.py'}:UnpaddedUNetSR", "--pad-to", "4",
                       "-o", tmp_path / "unet.onnx")
    assert result.code == 2
    assert result.error().startswith("error: forward failed")
    assert list(tmp_path.iterdir()) == []
