"""What an artifact's metadata says about the model it was made from."""

from __future__ import annotations

from pathlib import Path

from sr_export import api
from sr_export.core.artifacts import ArtifactMetadata

ESPCN = f"{Path(__file__).resolve().parents[1] / 'fixtures' / 'espcn.py'}:ESPCN"


def test_the_tile_alignment_is_never_finer_than_the_multiple_the_model_computes_on() -> None:
    model = api.load_model(ESPCN, scale=2, kwargs={"width": 8}, pad_to=16)
    assert model.receptive_field.period == 1 and model.size_multiple == 16  # convs alone would allow any start
    metadata = ArtifactMetadata.for_model(model, format="onnx", backend="onnxruntime", precision="fp32")
    assert metadata.tile_alignment == 16


def test_a_shift_invariant_model_at_its_own_size_tiles_from_any_pixel() -> None:
    model = api.load_model(ESPCN, scale=2, kwargs={"width": 8})
    metadata = ArtifactMetadata.for_model(model, format="onnx", backend="onnxruntime", precision="fp32")
    assert metadata.tile_alignment == 1
