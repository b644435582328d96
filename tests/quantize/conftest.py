"""One small float export and one tiny calibration shared by the INT8 tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# A recipe small enough for CI: 4 patches of 24 LR pixels.
TINY_RECIPE = """
name = "tiny"
description = "test recipe"
[patches]
size = 24
count = 4
seed = 1
[method]
name = "percentile"
percentile = 99.999
"""


@pytest.fixture(scope="session")
def tiny_recipe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "tiny.toml"
    path.write_text(TINY_RECIPE, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def erfdn_float(official_model, tmp_path_factory: pytest.TempPathFactory):
    """E-RFDN x4 (official weights) exported with the legacy exporter: an Artifact."""
    from sr_export.export.onnx import ExportOptions, save_export

    return save_export(official_model("erfdn", 4), ExportOptions(exporter="legacy"),
                       tmp_path_factory.mktemp("int8-float"))


@pytest.fixture(scope="session")
def erfdn_statistics(erfdn_float, tiny_recipe_path: Path, tmp_path_factory: pytest.TempPathFactory):
    from sr_export.quantize.qdq import artifact_statistics
    from sr_export.quantize.recipes import load_recipe

    # Session fixtures run before the per-test cache isolation: point at the same folder it uses.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SR_EXPORT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return artifact_statistics(erfdn_float, load_recipe(tiny_recipe_path))
