"""Official checkpoints load strictly; wrong or damaged ones fail with one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from sr_export.core.errors import SrExportError
from sr_export.models.checkpoints import read_state_dict
from sr_export.models.loader import ModelRequest, load_model

OFFICIAL = [("imdn", 2, "imdn_x2.pth"), ("imdn", 3, "imdn_x3.pth"), ("imdn", 4, "imdn_x4.pth"),
            ("erfdn", 4, "rfdn_aim2020_x4.pth")]


@pytest.mark.parametrize(("name", "scale", "filename"), OFFICIAL)
def test_official_checkpoint_loads_strictly_and_scale_is_read_off_it(
    weights_dir: Path, name: str, scale: int, filename: str
) -> None:
    model = load_model(ModelRequest(name, weights=str(weights_dir / filename)))
    assert model.info.scale == scale
    assert not model.random_init
    state = read_state_dict(weights_dir / filename)
    for key, tensor in model.module.state_dict().items():
        assert torch.equal(tensor, state[key])


def test_official_weights_resolve_by_name(weights_dir: Path) -> None:
    model = load_model(ModelRequest("imdn", scale=3, weights="official"))
    assert model.weights_path.resolve() == (weights_dir / "imdn_x3.pth").resolve()
    assert model.weights_sha256.startswith("11b1716a")


def test_rfdn_with_the_erfdn_checkpoint_builds_the_erfdn_variant(weights_dir: Path) -> None:
    model = load_model(ModelRequest("rfdn", weights=str(weights_dir / "rfdn_aim2020_x4.pth")))
    assert model.info.name == "erfdn"
    assert model.info.data_range == 255.0
    assert model.params == 433_448
    assert any("'erfdn' variant" in note for note in model.notes)


def test_rfdn_family_refuses_a_checkpoint_of_another_family(weights_dir: Path) -> None:
    with pytest.raises(SrExportError, match="does not look like RFDN"):
        load_model(ModelRequest("rfdn", weights=str(weights_dir / "imdn_x4.pth")))


def test_wrong_scale_for_a_checkpoint_says_which_scale_it_is(weights_dir: Path) -> None:
    with pytest.raises(SrExportError, match="imdn_x4.pth is a x4 checkpoint but --scale 2 was asked"):
        load_model(ModelRequest("imdn", scale=2, weights=str(weights_dir / "imdn_x4.pth")))


def test_mismatch_names_missing_unexpected_and_wrongly_shaped_keys(weights_dir: Path, tmp_path: Path) -> None:
    state = read_state_dict(weights_dir / "imdn_x4.pth")
    state.pop("LR_conv.bias")
    state["extra.weight"] = torch.zeros(1)
    state["c.0.weight"] = torch.zeros(64, 383, 1, 1)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    with pytest.raises(SrExportError) as caught:
        load_model(ModelRequest("imdn", weights=str(path)))
    message = str(caught.value)
    assert "\n" not in message
    assert "1 missing keys: LR_conv.bias" in message
    assert "1 unexpected keys: extra.weight" in message
    assert "c.0.weight (64, 383, 1, 1) vs model (64, 384, 1, 1)" in message


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", "model", "net"])
def test_checkpoints_nested_by_training_frameworks_are_unwrapped(weights_dir: Path, tmp_path: Path, wrapper: str) -> None:
    state = read_state_dict(weights_dir / "imdn_x2.pth")
    path = tmp_path / "nested.pth"
    torch.save({wrapper: {f"module.{k}": v for k, v in state.items()}, "epoch": 7}, path)
    assert load_model(ModelRequest("imdn", weights=str(path))).info.scale == 2


def test_corrupt_checkpoint_is_reported_not_raised(weights_dir: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((weights_dir / "imdn_x2.pth").read_bytes()[:50_000])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    for path in (truncated, garbage):
        with pytest.raises(SrExportError, match="corrupt or not a PyTorch checkpoint"):
            load_model(ModelRequest("imdn", weights=str(path)))


def test_pickled_objects_are_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pth"
    torch.save({"model": torch.nn.Conv2d(1, 1, 1)}, path)
    with pytest.raises(SrExportError, match="pickled Python objects"):
        load_model(ModelRequest("imdn", weights=str(path)))


def test_official_file_with_wrong_checksum_is_refused(weights_dir: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copy(weights_dir / "imdn_x4.pth", tmp_path / "imdn_x4.pth")
    with open(tmp_path / "imdn_x4.pth", "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setenv("SR_EXPORT_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(SrExportError, match="is not the official imdn x4 checkpoint"):
        load_model(ModelRequest("imdn", scale=4, weights="official"))


def test_official_file_under_the_authors_name_is_found(weights_dir: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copy(weights_dir / "rfdn_aim2020_x4.pth", tmp_path / "RFDN_AIM.pth")
    monkeypatch.setenv("SR_EXPORT_WEIGHTS_DIR", str(tmp_path))
    assert load_model(ModelRequest("erfdn", weights="official")).weights_path == tmp_path / "RFDN_AIM.pth"


def test_model_without_official_weights_says_so() -> None:
    with pytest.raises(SrExportError, match="rfdn has no official checkpoint"):
        load_model(ModelRequest("rfdn", weights="official"))
    with pytest.raises(SrExportError, match=r"no official erfdn x2 checkpoint \(official: x4\)"):
        load_model(ModelRequest("erfdn", scale=2, weights="official"))


def test_official_weights_converted_to_safetensors_load_the_same_model(weights_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = read_state_dict(weights_dir / "imdn_x2.pth")
    converted = tmp_path / "imdn_x2.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(converted))  # as DataParallel saves
    model = load_model(ModelRequest("imdn", weights=str(converted)))
    assert model.info.scale == 2 and not model.random_init
    for key, tensor in model.module.state_dict().items():
        assert torch.equal(tensor, state[key])


def test_safetensors_is_recognised_by_content_whatever_the_suffix(weights_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = read_state_dict(weights_dir / "imdn_x3.pth")
    disguised = tmp_path / "imdn_x3.bin"
    save_file({k: v.contiguous() for k, v in state.items()}, str(disguised))
    assert load_model(ModelRequest("imdn", weights=str(disguised))).info.scale == 3


def test_a_damaged_safetensors_file_is_one_line(tmp_path: Path) -> None:
    damaged = tmp_path / "broken.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(SrExportError, match="corrupt or not a safetensors file"):
        read_state_dict(damaged)
