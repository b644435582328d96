"""`sr-bench --target` with profiles whose backend or precision this installation cannot run yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.runtimes.registry import RUNTIMES as BACKENDS


@pytest.mark.parametrize(("target", "backend"), [("tflite-cpu", "tflite"), ("coreml", "coreml"),
                                                 ("trt-fp16", "tensorrt")])
def test_a_profile_whose_runtime_package_is_missing_names_the_extra(
    sr_bench, tmp_path, monkeypatch: pytest.MonkeyPatch, target: str, backend: str
) -> None:
    # As on an installation without the extra: the backend's module cannot be imported.
    from sr_export.runtimes.registry import RuntimeEntry as Backend

    monkeypatch.setitem(BACKENDS, backend, Backend("sr_export_package_not_installed:Target", (".x",), extra=backend))
    result = sr_bench("--target", target, "--models", "imdn", "--db", tmp_path / "h.sqlite", "--out-dir", tmp_path)
    assert result.code == 2
    assert f"pip install 'sr-export[{backend}]'" in result.error()
    assert not (tmp_path / "h.sqlite").exists() and not list(tmp_path.glob("*.onnx"))  # nothing was started


def test_cpu_int8_calibrates_quantises_measures_and_stores_the_run(sr_bench, tmp_path) -> None:
    import sqlite3

    # The shipped profile with a small recipe in place of `mixed` (whose sensitivity scan is
    # tested on its own in tests/quantize): the harness part is what this test is about.
    from sr_export.core.resources import list_resources

    recipe = tmp_path / "small.toml"
    recipe.write_text('[patches]\nsize = 32\ncount = 8\n')
    shipped = list_resources("targets")["cpu-int8"].read_text()
    assert 'calibration = "mixed"' in shipped
    profile = tmp_path / "cpu-int8.toml"
    profile.write_text(shipped.replace('calibration = "mixed"', f'calibration = "{recipe}"'))
    # A trained model: INT8 parity is judged by output PSNR and the dataset PSNR drop.
    result = sr_bench("--target", profile, "--models", "imdn", "--scale", "2", "--weights", "official",
                      "--exporter", "legacy",
                      "--sizes", "32x32", "--runs", "2", "--warmup", "1",
                      "--db", tmp_path / "h.sqlite", "--out-dir", tmp_path / "out")
    assert result.code == 0, result.err
    assert list((tmp_path / "out").rglob("*int8*.onnx")), "no INT8 artifact was built"
    with sqlite3.connect(tmp_path / "h.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] >= 1


def test_a_jetson_profile_needs_no_tensorrt_here_but_a_reachable_board(sr_bench, tmp_path) -> None:
    # No such host: ssh fails to resolve it, before anything is exported.
    profile = tmp_path / "board.toml"
    profile.write_text('backend = "tensorrt"\nprecision = "fp16"\n[device]\nkind = "ssh"\n'
                       'host = "no-such-board.invalid"\nconnect_timeout_s = 2\n[bench]\ninput_sizes = ["16x16"]\n')
    espcn = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
    result = sr_bench("--target", profile, "--models", f"{espcn}:ESPCN", "--scale", "2", "--exporter", "legacy",
                      "--db", tmp_path / "h.sqlite", "--out-dir", tmp_path / "out")
    assert result.code == 2
    assert "reaching the device on no-such-board.invalid failed: ssh could not connect" in result.error()
    assert not (tmp_path / "out" / "espcn_x2.onnx").exists()
