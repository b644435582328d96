"""Fixtures for target tests: an INT8 QDQ ONNX made the way TensorRT's parser wants it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def load_qdq_helper():
    path = Path(__file__).resolve().parents[1] / "fixtures" / "qdq.py"
    spec = importlib.util.spec_from_file_location("sr_export_test_qdq", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def make_qdq():
    return load_qdq_helper().ort_qdq


@pytest.fixture(scope="session")
def set5_calibration(set5: Path):
    helper = load_qdq_helper()
    return lambda info: helper.set5_batches(set5, info)


@pytest.fixture(scope="session")
def imdn_qdq(exported_official, official_model, set5_calibration, make_qdq, tmp_path_factory):
    """IMDN x2 (official weights) quantised to symmetric per-channel INT8 QDQ: an Artifact."""
    from sr_export.runtimes.open import open_artifact

    source = exported_official("imdn", 2)
    batches = set5_calibration(official_model("imdn", 2).info)
    path = make_qdq(source.path, tmp_path_factory.mktemp("qdq") / "imdn_x2_qdq.onnx", batches)
    return open_artifact(path)
