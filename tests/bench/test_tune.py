"""sr-bench tune: every candidate built, proven, evaluated against the FP32 model and (within budget) timed; the
choice is the fastest within budget, on the Pareto front; every timed candidate is in the history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sr_export.bench.tune import Outcome, candidates_for, choose, pareto_front
from sr_export.targets.profiles import load_target


def _outcome(name: str, drop: float | None, ms: float | None, status: str = "measured") -> Outcome:
    return Outcome(name, name, "onnxruntime", "fp32", status, drop_db=drop, median_ms=ms)


def test_the_front_holds_what_nothing_beats_on_both_drop_and_latency() -> None:
    fast_lossy, slow_exact, dominated, tie = (_outcome("a", 0.3, 10), _outcome("b", 0.0, 30), _outcome("c", 0.3, 20),
                                              _outcome("d", 0.0, 30))
    front = pareto_front([fast_lossy, slow_exact, dominated, tie, _outcome("e", 0.5, None, "over budget")])
    assert front == [fast_lossy, slow_exact, tie]


def test_the_choice_is_the_fastest_within_budget_and_nothing_when_none_is() -> None:
    outcomes = [_outcome("fp32", 0.0, 30), _outcome("int8", 0.08, 12), _outcome("int8 naive", 2.0, 9),
                _outcome("broken", None, None, "failed")]
    assert choose(outcomes, 0.10).candidate == "int8"
    assert choose(outcomes, 0.05).candidate == "fp32"
    assert choose(outcomes[2:], 0.10) is None


def test_the_cpu_device_offers_every_installed_runtime_with_each_int8_recipe() -> None:
    found = {(c.profile.backend, c.profile.precision, c.recipe) for c in candidates_for(load_target("cpu"))}
    assert {("onnxruntime", "fp32", None), ("onnxruntime", "int8", "default"), ("onnxruntime", "int8", "mixed"),
            ("tflite", "fp32", None)} <= found
    assert not any(backend in ("tensorrt", "coreml") for backend, _, _ in found)  # no GPU, no device runner here
    tiles = candidates_for(load_target("cpu"), profiles=[load_target("tflite")], tiles=[(64, 64), (128, 128)])
    assert [c.tile for c in tiles] == [(64, 64), (128, 128)]


@pytest.fixture
def set5_crops(set5, tmp_path):
    """The centre 96x96 of three Set5 photos: a dataset small enough to evaluate every candidate quickly."""
    from PIL import Image

    folder = tmp_path / "set5-crops" / "HR"
    folder.mkdir(parents=True)
    for name in ("baby", "bird", "head"):
        image = Image.open(set5 / "HR" / f"{name}.bmp")
        left, top = (image.width - 96) // 2, (image.height - 96) // 2
        image.crop((left, top, left + 96, top + 96)).save(folder / f"{name}.png")
    return folder.parent


def test_a_small_tune_chooses_the_fastest_candidate_within_budget_and_stores_every_timed_one(sr_bench, set5_crops,
                                                                                             tmp_path) -> None:
    db = tmp_path / "history.sqlite"
    result = sr_bench("--db", db, "tune", "--model", "imdn", "--scale", "2", "--weights", "official",
                      "--candidates", "cpu,cpu-int8,openvino-cpu", "--recipes", "default", "--max-drop", "0.1",
                      "--dataset", set5_crops, "--sizes", "32x32", "--runs", "2", "--warmup", "1",
                      "-o", tmp_path / "out", "--json", tmp_path / "tune.json")
    assert result.code == 0, result.err
    tune = json.loads((tmp_path / "tune.json").read_text())
    rows = {row["candidate"]: row for row in tune["candidates"]}
    assert set(rows) == {"cpu", "cpu-int8 (recipe default)", "openvino-cpu"}
    assert rows["cpu"]["drop_db"] == pytest.approx(0.0, abs=0.01)  # ONNX Runtime FP32 is the model
    over = [row for row in rows.values() if row["status"] == "over budget"]
    assert over and all(row["drop_db"] > 0.1 and row["median_ms"] is None for row in over)  # not timed
    measured = [row for row in rows.values() if row["status"] == "measured"]
    chosen = rows[tune["choice"]]
    assert chosen not in over and chosen["drop_db"] <= 0.1 and chosen["on_front"]
    assert chosen["median_ms"] == min(row["median_ms"] for row in measured)
    from sr_export.bench.history import open_history

    with open_history(db, create=False) as history:
        stored = {run.target for run in history.runs()}
    assert stored == {row["target"] for row in measured}
    from sr_export.core.artifacts import read_metadata

    copied = tmp_path / "out" / Path(chosen["artifact"]).name
    assert any("chosen by sr-bench tune" in note for note in read_metadata(copied).notes)
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 0 and (tmp_path / "out" / "report.html").is_file()

    again = sr_bench("--db", db, "tune", "--model", "imdn", "--scale", "2", "--weights", "official",
                     "--candidates", "cpu,cpu-int8,openvino-cpu", "--recipes", "default", "--max-drop", "0.1",
                     "--dataset", set5_crops, "--sizes", "32x32", "--runs", "2", "--warmup", "1",
                     "-o", tmp_path / "again", "--json", tmp_path / "again.json")
    assert again.code == 0, again.err
    rerun = {row["candidate"]: row for row in json.loads((tmp_path / "again.json").read_text())["candidates"]}
    assert all(rerun[name]["reused"] and rerun[name]["drop_db"] == rows[name]["drop_db"] for name in rows)
    assert all(rerun[name]["median_ms"] for name in rerun if rerun[name]["status"] == "measured")  # timed anew


def test_on_an_ssh_device_each_candidate_is_timed_there(sr_bench, ssh_server, set5_crops, tmp_path) -> None:
    import sys

    device = tmp_path / "board"
    device.mkdir()
    profile = tmp_path / "board.toml"
    profile.write_text(
        'name = "board"\nbackend = "onnxruntime"\n[bench]\ninput_sizes = ["24x24"]\nwarmup = 1\nruns = 2\n'
        f'[device]\nkind = "ssh"\nhost = {json.dumps(ssh_server.alias)}\nssh_config = {json.dumps(str(ssh_server.config))}\n'
        f"workdir = {json.dumps(str(device))}\npython = {json.dumps(sys.executable)}\nconnect_timeout_s = 5\n")
    db = tmp_path / "history.sqlite"
    result = sr_bench("--db", db, "tune", "--model", "imdn", "--scale", "2", "--weights", "official",
                      "--target", profile, "--candidates", "cpu", "--dataset", set5_crops, "-o", tmp_path / "out",
                      "--json", tmp_path / "tune.json")
    assert result.code == 0, result.err
    tune = json.loads((tmp_path / "tune.json").read_text())
    assert tune["device"] == ssh_server.alias and tune["choice"] == "cpu"
    from sr_export.bench.history import open_history

    with open_history(db, create=False) as history:
        (run,) = history.runs()
    assert run.conditions["where"] == ssh_server.alias and run.median_ms((24, 24)) > 0
    assert not list(device.iterdir())  # the device's working folder is cleaned up
