"""``sr-export coreml``: writes a parity-checked .mlpackage, or one error line and nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
USER_MODEL = f"{FIXTURES / 'attention_shuffle.py'}:AttentionShuffleNet"


def test_user_model_with_attention_resize_pixel_shuffle_and_deconv_converts_and_passes(sr_export, tmp_path) -> None:
    out = tmp_path / "user.mlpackage"
    result = sr_export("coreml", "--model", USER_MODEL, "--scale", "2", "--shape", "28x36", "-o", out, "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["parity"]["passed"] and report["parity"]["precision"] == "fp16"
    assert {"conv_transpose", "pixel_shuffle"} <= set(report["ops"])
    assert report["size_bytes"] > 0 and report["convert_seconds"] > 0
    assert out.is_dir() and (tmp_path / "user.mlpackage.json").is_file()
    assert "wrote" in result.err


def test_int8_weights_with_enumerated_shapes(sr_export, tmp_path) -> None:
    out = tmp_path / "imdn.mlpackage"
    slim = '{"channels": 16, "blocks": 2}'  # every IMDN op, a fraction of the conversion time
    result = sr_export("coreml", "--model", "imdn", "--scale", "2", "--model-kwargs", slim, "--shapes", "24x24,20x32",
                       "--int8-weights", "--deployment-target", "iOS16", "-o", out, "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["metadata"]["precision"] == "int8"
    assert "constexpr_affine_dequantize" in report["ops"]
    assert [case["input_shape"][2:] for case in report["parity"]["cases"]] == [[24, 24], [20, 32]]
    assert report["parity"]["passed"]


def test_conversion_failure_is_one_line_naming_the_node_and_writes_nothing(sr_export, tmp_path) -> None:
    out = tmp_path / "user.mlpackage"
    result = sr_export("coreml", "--model", USER_MODEL, "--scale", "2", "--range", "24x24:64x64", "--route", "export",
                       "-o", out)
    assert result.code == 1
    line = result.error()
    assert "convert failed" in line and "upsample_bilinear2d" in line and "--shape" in line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_output_must_be_an_mlpackage(sr_export, tmp_path) -> None:
    result = sr_export("coreml", "--model", "imdn", "-o", tmp_path / "model.onnx")
    assert result.code == 2 and ".mlpackage" in result.error()


def test_a_core_ml_command_prints_none_of_the_harmless_import_warnings(tmp_path) -> None:
    # A fresh process: the lines are logged when coremltools (and torchao, torch's pytree with it) is first imported.
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    script = "import sys; from sr_export.cli.export_cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", script, "coreml", "--model", f"{FIXTURES / 'espcn.py'}:ESPCN", "--model-kwargs",
         '{"width": 8}', "--scale", "2", "--shape", "24x24", "-o", tmp_path / "espcn.mlpackage"],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Failed to load" not in done.stderr and "torchao" not in done.stderr
    assert "_pytree" not in done.stderr and "Enum subclass" not in done.stderr
    assert "parity PASS" in done.stderr and "warning: no weights given" in done.stderr  # sr-export's own lines stay


def test_only_the_harmless_lines_of_those_loggers_are_dropped(caplog) -> None:
    import logging

    from sr_export.runtimes.coreml.quiet import drop_harmless_import_logs

    drop_harmless_import_logs()
    drop_harmless_import_logs()  # installed once, however often coremltools is imported
    torchao, pytree = logging.getLogger("torchao"), logging.getLogger("torch.utils._pytree")
    assert len([f for f in torchao.filters if f.__class__.__name__ == "DropLogLines"]) == 1
    with caplog.at_level(logging.WARNING):
        torchao.warning("Failed to load /site-packages/torchao/_C_mxfp8.abi3.so: Could not load this library")
        pytree.warning("%s is an Enum subclass and is now natively supported by torch.compile as an opaque value "
                       "type.", "<enum 'KernelPreference'>")
        torchao.warning("Failed to load the quantised weights")  # not a kernel library: shown
        pytree.warning("register_pytree_node is deprecated")  # another deprecation: shown
    assert [r.getMessage() for r in caplog.records] == ["Failed to load the quantised weights",
                                                        "register_pytree_node is deprecated"]
