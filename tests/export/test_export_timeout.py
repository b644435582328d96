"""Each exporter attempt has a time budget (--export-timeout, default 300 s): a model whose symbolic shapes stall
torch.export is stopped on time, auto moves on to the legacy exporter, and a user sees which exporter works and
for how long. The model (tests/fixtures/slow_symbolic.py) keeps torch.export busy for minutes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import onnx
import pytest

from sr_export import api
from sr_export.core.errors import SrExportError
from sr_export.export.budget import can_fork
from sr_export.export.onnx import DEFAULT_EXPORT_TIMEOUT_S, ExportOptions, export_onnx

SLOW = Path(__file__).resolve().parents[1] / "fixtures" / "slow_symbolic.py"
SLOW_MODEL = f"{SLOW}:SlowSymbolic"
BUDGET_S = 3

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork on this platform: exporters run unbounded in-process")


@pytest.fixture(scope="module")
def slow_model():
    return api.load_model(SLOW_MODEL, scale=2)


def test_auto_stops_a_stalled_dynamo_export_on_time_and_moves_on_to_legacy(sr_export, tmp_path: Path) -> None:
    out = tmp_path / "slow.onnx"
    started = time.monotonic()
    result = sr_export("onnx", "--model", SLOW_MODEL, "--scale", "2", "--export-timeout", BUDGET_S, "-o", out)
    elapsed = time.monotonic() - started
    assert result.code == 0, result.err
    assert f"dynamo: stopped after {BUDGET_S} s (--export-timeout)" in result.err
    assert "used the legacy exporter" in result.err
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert '"exporter": "legacy"' in metadata["sr_export"]
    assert elapsed < BUDGET_S + 60  # torch.export alone would take minutes


def test_when_no_exporter_is_left_the_refusal_names_shape_legacy_and_the_timeout(sr_export, tmp_path: Path) -> None:
    out = tmp_path / "slow.onnx"
    result = sr_export("onnx", "--model", SLOW_MODEL, "--scale", "2", "--exporter", "dynamo",
                       "--export-timeout", BUDGET_S, "-o", out)
    assert result.code == 1
    line = result.error()
    assert f"dynamo: stopped after {BUDGET_S} s (--export-timeout)" in line
    assert "--shape HxW" in line and "--exporter legacy" in line and "--export-timeout SECONDS" in line
    assert not list(tmp_path.iterdir())  # nothing written, no scratch file


def test_progress_says_which_exporter_works_and_for_how_long(slow_model) -> None:
    heard: list[str] = []
    exported = export_onnx(slow_model, ExportOptions(timeout=BUDGET_S, simplify=False), say=heard.append)
    assert exported.metadata.exporter == "legacy"
    ticks = [re.fullmatch(rf"exporting with dynamo: (\d+) s \(of at most {BUDGET_S} s\)", line) for line in heard]
    seconds = [int(tick.group(1)) for tick in ticks if tick]
    assert len(seconds) >= 2 and seconds == sorted(seconds) and 1 <= seconds[0] and seconds[-1] <= BUDGET_S, heard


def test_a_fixed_size_needs_no_symbolic_shapes_so_dynamo_is_quick(slow_model) -> None:
    exported = export_onnx(slow_model, ExportOptions(shape=(24, 24), timeout=60, simplify=False))
    assert exported.metadata.exporter == "dynamo"


def test_the_default_budget_is_sensible() -> None:
    assert ExportOptions().timeout == DEFAULT_EXPORT_TIMEOUT_S == 300


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 1e9, "60"])
def test_the_python_api_refuses_a_budget_that_is_not_seconds(slow_model, tmp_path: Path, timeout: object) -> None:
    with pytest.raises(SrExportError, match="--export-timeout must be seconds above 0"):
        api.export_onnx(slow_model, tmp_path / "m.onnx", timeout=timeout)
    assert not list(tmp_path.iterdir())


def test_no_budget_exports_in_this_process(tmp_path: Path) -> None:
    model = api.load_model(f"{SLOW.parent / 'espcn.py'}:ESPCN", scale=2, kwargs={"width": 8})
    artifact = api.export_onnx(model, tmp_path / "m.onnx", timeout=None, check=False)
    assert artifact.metadata.exporter == "dynamo"
