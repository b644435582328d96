"""`sr-bench`: profile, eval, speed and the suite run, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_profile_prints_the_aim_numbers_and_the_graph_count(sr_bench) -> None:
    result = sr_bench("profile", "--model", "erfdn", "--input", "3x256x256", "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    aim = report["aim_counter"]
    assert (aim["params"], aim["flops"], aim["activations"], aim["conv_count"]) == (
        433_448, 27_102_622_560, 112_034_240, 64)
    graph = report["onnx_graph"]
    assert graph["params"] == 433_448
    assert graph["conv_count"] == 64
    # The graph sees the sigmoid gates, the adds and the pooling the challenge counter ignores.
    assert graph["other_ops"] > 0 and graph["macs"] < aim["flops"] < graph["flops"]


def test_profile_input_defaults_to_the_models_channels_at_256(sr_bench) -> None:
    result = sr_bench("profile", "--model", "idn", "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["input_shape"] == [1, 1, 256, 256]
    assert report["aim_counter"]["params"] == 552_769


def test_profile_table_labels_both_counters(sr_bench) -> None:
    result = sr_bench("profile", "--model", "imdn", "--scale", "2", "--input", "3x64x64")
    assert result.code == 0, result.err
    assert "AIM/NTIRE counter" in result.out and "ONNX graph" in result.out


def test_profile_of_a_bring_your_own_model_shows_what_the_challenge_counter_misses(sr_bench) -> None:
    espcn = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
    result = sr_bench("profile", "--model", f"{espcn}:ESPCN", "--input", "3x32x32", "--json", "-")
    report = json.loads(result.out)
    last_conv_macs = 27 * 32 * 9 * 32 * 32  # the functional conv: 3x3, 32 -> 27 channels
    assert report["aim_counter"]["conv_count"] == 2
    assert report["onnx_graph"]["conv_count"] == 3
    assert report["onnx_graph"]["macs"] - report["aim_counter"]["flops"] == last_conv_macs


def test_eval_on_set5_through_onnx_matches_pytorch(sr_bench, exported_official, set5: Path, tmp_path: Path) -> None:
    artifact = exported_official("erfdn", 4)
    result = sr_bench("eval", "--artifact", artifact.path, "--dataset", set5, "--json", tmp_path / "e.json")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["mean"]["psnr_y"] == pytest.approx(32.138, abs=0.01)
    assert {i["lr_source"] for i in report["images"]} == {"given"}


def test_eval_of_a_third_party_onnx_measures_its_scale(sr_bench, exported_official, set5: Path, tmp_path: Path) -> None:
    import onnx

    proto = onnx.load(str(exported_official("erfdn", 4).path))
    del proto.metadata_props[:]
    foreign = tmp_path / "from_elsewhere.onnx"
    onnx.save(proto, str(foreign))
    result = sr_bench("eval", "--artifact", foreign, "--dataset", set5, "--data-range", "255", "--json", "-")
    assert result.code == 0, result.err
    assert json.loads(result.out)["mean"]["psnr_y"] == pytest.approx(32.138, abs=0.01)


def test_eval_scale_must_match_the_artifact(sr_bench, exported_official, set5: Path) -> None:
    artifact = exported_official("erfdn", 4)
    result = sr_bench("eval", "--artifact", artifact.path, "--dataset", set5, "--scale", "2")
    assert result.code == 2 and "x4 but --scale 2" in result.error()


def test_eval_missing_dataset_is_one_line(sr_bench, exported_official, tmp_path: Path) -> None:
    result = sr_bench("eval", "--artifact", exported_official("erfdn", 4).path, "--dataset", tmp_path / "nope")
    assert result.code == 2 and "dataset folder not found" in result.error()


def test_speed_times_pytorch_and_onnxruntime_side_by_side(sr_bench, tmp_path: Path) -> None:
    result = sr_bench("speed", "--model", "erfdn", "--sizes", "32x32,24x40", "--warmup", "1", "--runs", "2",
                      "--threads", "1", "--json", tmp_path / "s.json", "--plot", tmp_path / "s.png")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "s.json").read_text())
    runners = {t["runner"] for t in report["timings"]}
    assert "pytorch" in runners and any(r.startswith("onnxruntime:") for r in runners)
    assert len(report["timings"]) == 4 and all(t["runs"] == 2 for t in report["timings"])
    assert {tuple(t["output_hw"]) for t in report["timings"]} == {(128, 128), (96, 160)}
    assert len(report["speedups"]) == 2
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_suite_run_prints_one_table_and_writes_json_and_chart(sr_bench, tmp_path: Path, shared: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(
        'name = "tiny"\n[[models]]\nmodel = "erfdn"\nweights = "official"\n'
        '[profile]\ninput = "3x64x64"\n[speed]\ninput_sizes = ["32x32"]\nwarmup = 0\nruns = 1\n'
    )
    result = sr_bench("--target", "cpu", "--suite", suite, "--out-dir", tmp_path / "out")
    assert result.code == 0, result.err
    assert "erfdn x4" in result.out and "speedup" in result.out
    (results,) = (tmp_path / "out").glob("tiny-cpu-*.json")
    data = json.loads(results.read_text())
    assert data["run_id"].isdigit() and results.name == f"tiny-cpu-{data['run_id']}.json"  # its history run number
    (row,) = data["rows"]
    assert row["params"] == 433_448 and row["parity_passed"]
    assert row["psnr_y"] > 25  # real weights on real photos
    assert (tmp_path / "out" / f"tiny-cpu-{data['run_id']}-latency.png").is_file()
    assert (tmp_path / "out" / "erfdn_x4.onnx").is_file()


def test_unknown_target_lists_the_known_ones(sr_bench) -> None:
    result = sr_bench("--target", "jetson-nano-x")
    error = result.error()
    assert result.code == 2 and "unknown target 'jetson-nano-x'; known targets: coreml, cpu, cpu-int8," in error
    assert "jetson-orin-nano" in error and "_template" not in error
