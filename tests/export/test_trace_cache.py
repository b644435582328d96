"""Traced graphs are kept between runs as candidates: a second export of the same module skips the trace and
writes the same bytes, and a kept graph that does not match the module is dropped and traced afresh."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from sr_export.export import trace_cache
from sr_export.export.onnx import ExportOptions, export_onnx
from sr_export.models.loader import ModelRequest, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESPCN = f"{FIXTURES / 'espcn.py'}:ESPCN"
LEGACY = ExportOptions(exporter="legacy", timeout=None)


def _model(width: int = 8, nudge: float = 0.0):
    model = load_model(ModelRequest(ESPCN, scale=2, kwargs={"width": width}))
    with torch.no_grad():
        model.module.first.weight.add_(nudge)  # other weights, same structure
    return model


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SR_EXPORT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "traces"


def test_a_second_export_reuses_the_trace_and_writes_the_same_bytes_as_a_fresh_one(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = export_onnx(_model(), LEGACY)
    assert len(list(cache.glob("*.onnx"))) == 1
    calls = []
    import sr_export.export.onnx as onnx_module

    real = onnx_module.export_graph
    monkeypatch.setattr(onnx_module, "export_graph", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = export_onnx(_model(), LEGACY)
    assert calls == []  # no trace: the kept graph was proven and used
    assert again.verification.passed and again.verification.exporter == "legacy"
    monkeypatch.setenv(trace_cache.DISABLE_ENV, "0")
    fresh = export_onnx(_model(), LEGACY)
    assert len(calls) == 1
    assert first.proto.SerializeToString() == again.proto.SerializeToString() == fresh.proto.SerializeToString()


def test_a_kept_graph_that_does_not_match_the_module_is_dropped_and_traced_afresh(cache: Path) -> None:
    model = _model()
    key = trace_cache.trace_key(model.module, "legacy", (1, 3, 64, 64), dynamic=True, opset=LEGACY.opset)
    assert key is not None
    other = export_onnx(_model(nudge=0.05), LEGACY)  # the graph of other weights, planted under the key
    trace_cache.store(key, other.proto)
    exported = export_onnx(model, LEGACY)
    assert exported.verification.passed
    kept = onnx.load(str(cache / f"{key}.onnx"))
    assert kept.SerializeToString() != other.proto.SerializeToString()  # replaced by the module's own trace


def test_weights_sizes_and_settings_are_part_of_the_key() -> None:
    base = _model().module
    key = trace_cache.trace_key(base, "legacy", (1, 3, 64, 64), dynamic=True, opset=18)
    assert key == trace_cache.trace_key(_model().module, "legacy", (1, 3, 64, 64), dynamic=True, opset=18)
    assert key != trace_cache.trace_key(_model(nudge=1e-6).module, "legacy", (1, 3, 64, 64), dynamic=True, opset=18)
    assert key != trace_cache.trace_key(base, "dynamo", (1, 3, 64, 64), dynamic=True, opset=18)
    assert key != trace_cache.trace_key(base, "legacy", (1, 3, 48, 64), dynamic=True, opset=18)
    assert key != trace_cache.trace_key(base, "legacy", (1, 3, 64, 64), dynamic=False, opset=18)
    assert key != trace_cache.trace_key(base, "legacy", (1, 3, 64, 64), dynamic=True, opset=17)


def test_a_damaged_entry_is_a_miss_and_an_unwritable_cache_does_not_fail_the_export(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    key = trace_cache.trace_key(model.module, "legacy", (1, 3, 64, 64), dynamic=True, opset=LEGACY.opset)
    cache.mkdir(parents=True)
    (cache / f"{key}.onnx").write_bytes(b"not a graph")
    assert trace_cache.load(key) is None and not (cache / f"{key}.onnx").exists()
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SR_EXPORT_CACHE", str(blocker))
    assert export_onnx(model, LEGACY).verification.passed


def test_the_cache_can_be_turned_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(trace_cache.DISABLE_ENV, "0")
    export_onnx(_model(), LEGACY)
    assert not cache.exists()
