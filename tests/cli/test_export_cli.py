"""`sr-export`: what a user types, what they see, what lands on disk."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def erfdn_onnx(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    from sr_export.cli.export_cli import main

    out = tmp_path_factory.mktemp("cli") / "erfdn_x4.onnx"
    assert main(["onnx", "--model", "erfdn", "--weights", "official", "-o", str(out),
                 "--json", str(out.with_suffix(".report.json"))]) == 0
    return out


def test_onnx_export_writes_a_checked_simplified_file_with_metadata(erfdn_onnx: Path) -> None:
    proto = onnx.load(str(erfdn_onnx))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["model"] == "erfdn"
    assert props["scale"] == "4"
    assert props["data_range"] == "255"
    assert props["weights_sha256"].startswith("11af8ec8")
    assert props["tool"].startswith("sr-export ")
    meta = json.loads(props["sr_export"])
    assert meta["simplified"] is True
    assert meta["input_shape"] == ["batch", 3, "height", "width"]
    report = json.loads(erfdn_onnx.with_suffix(".report.json").read_text())
    assert report["parity"]["passed"] is True
    sizes = {tuple(c["input_shape"][2:]) for c in report["parity"]["cases"]}
    assert sizes == {(64, 64), (45, 71)}
    assert all(c["psnr_db"] is None or c["psnr_db"] >= 80 for c in report["parity"]["cases"])


def test_check_reports_json_and_junit(erfdn_onnx: Path, tmp_path: Path, sr_export) -> None:
    result = sr_export("check", erfdn_onnx, "--json", tmp_path / "p.json", "--junit", tmp_path / "p.xml")
    assert result.code == 0, result.err
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["passed"] and report["reference"].startswith("pytorch")
    suite = ET.parse(tmp_path / "p.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == len(report["cases"]) >= 4


def test_check_against_another_artifact(erfdn_onnx: Path, tmp_path: Path, sr_export) -> None:
    copy = tmp_path / "copy.onnx"
    shutil.copy(erfdn_onnx, copy)
    result = sr_export("check", copy, "--against", erfdn_onnx, "--sizes", "32x32,17x23", "--json", "-")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert all(case["identical"] for case in report["cases"])


def test_check_on_user_images(erfdn_onnx: Path, set5: Path, sr_export) -> None:
    result = sr_export("check", erfdn_onnx, "--images", set5 / "LR_bicubic" / "X4", "--json", "-")
    assert result.code == 0, result.err
    assert len(json.loads(result.out)["cases"]) == 5


def test_a_tampered_artifact_fails_parity_with_exit_status_1(erfdn_onnx: Path, tmp_path: Path, sr_export) -> None:
    proto = onnx.load(str(erfdn_onnx))
    bias = next(t for t in proto.graph.initializer if t.dims == [50] and t.data_type == onnx.TensorProto.FLOAT)
    values = onnx.numpy_helper.to_array(bias).copy()
    values[0] += 0.5
    bias.CopyFrom(onnx.numpy_helper.from_array(values, bias.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    result = sr_export("check", tampered, "--junit", tmp_path / "fail.xml")
    assert result.code == 1
    assert "parity check failed" in result.error()
    assert ET.parse(tmp_path / "fail.xml").getroot().get("failures") != "0"


def test_export_that_traces_wrongly_is_not_written(tmp_path: Path, sr_export) -> None:
    out = tmp_path / "branchy.onnx"
    result = sr_export("onnx", "--model", f"{FIXTURES / 'branchy.py'}:WidthDependent", "-o", out)
    assert result.code == 1
    line = result.error()
    assert "no exporter produced a graph that is right at every size" in line
    assert "wrong at 45x71" in line and "--shape HxW" in line and "--pad-to N" in line
    assert list(tmp_path.iterdir()) == []


def test_static_shape_export_runs_other_sizes_tiled(tmp_path: Path, sr_export) -> None:
    out = tmp_path / "imdn_static.onnx"
    assert sr_export("onnx", "--model", "imdn", "--scale", "2", "--shape", "40x48", "--no-simplify", "-o", out).code == 0
    meta = json.loads(sr_export("info", out, "--json").out)
    assert meta["input_shape"] == [1, 3, 40, 48] and meta["simplified"] is False and meta["random_init"] is True

    from sr_export.core.errors import SrExportError
    from sr_export.runtimes.open import open_artifact, open_runner
    from sr_export.runtimes.registry import get_runtime as get_target

    artifact = open_artifact(out)
    raw = get_target("onnxruntime").load(artifact)
    with pytest.raises(SrExportError, match="input 1x3x45x71 does not fit the model's input 1x3x40x48"):
        raw.infer(np.zeros((1, 3, 45, 71), "float32"))
    tiled = open_runner(artifact)
    assert tiled.infer(np.zeros((1, 3, 45, 71), "float32")).shape == (1, 3, 90, 142)


def test_foreign_onnx_needs_a_model_description(erfdn_onnx: Path, tmp_path: Path, sr_export, weights_dir: Path) -> None:
    proto = onnx.load(str(erfdn_onnx))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(proto, str(foreign))
    assert "carries no sr-export metadata; pass --model" in sr_export("check", foreign).error()
    result = sr_export("check", foreign, "--model", "erfdn", "--weights", weights_dir / "rfdn_aim2020_x4.pth")
    assert result.code == 0, result.err


def test_opset_is_honoured(tmp_path: Path, sr_export) -> None:
    out = tmp_path / "rfdn13.onnx"
    assert sr_export("onnx", "--model", "rfdn", "--opset", "13", "-o", out).code == 0
    assert {o.domain: o.version for o in onnx.load(str(out)).opset_import}[""] == 13


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "edsr"], "unknown model 'edsr'"),
        (["--model", "imdn", "--scale", "2", "--weights", "{w}/imdn_x4.pth"], "is a x4 checkpoint but --scale 2"),
        (["--model", "imdn", "--weights", "{t}/corrupt.pth"], "corrupt or not a PyTorch checkpoint"),
        (["--model", "rfdn", "--weights", "{w}/imdn_x2.pth"], "does not look like RFDN"),
        (["--model", "imdn", "--weights", "{w}/rfdn_aim2020_x4.pth"], "does not look like IMDN"),
        (["--model", "erfdn", "--shape", "8x8"], "needs inputs of at least 15x15"),
        (["--model", "imdn", "--model-kwargs", "{{nope"], "--model-kwargs is not valid JSON"),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(
    tmp_path: Path, weights_dir: Path, sr_export, args: list[str], message: str
) -> None:
    (tmp_path / "corrupt.pth").write_bytes(b"\x80\x02garbage")
    out = tmp_path / "out" / "model.onnx"
    result = sr_export("onnx", *[a.format(w=weights_dir, t=tmp_path) for a in args], "-o", out)
    assert result.code == 2
    assert message in result.error()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_unreadable_image_is_one_line(erfdn_onnx: Path, tmp_path: Path, sr_export) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = sr_export("check", erfdn_onnx, "--images", tmp_path)
    assert result.code == 2
    assert "cannot read image" in result.error() and "broken.png" in result.error()


def test_models_lists_the_zoo_as_json(sr_export) -> None:
    result = sr_export("models", "--json")
    names = {row["name"] for row in json.loads(result.out)}
    assert names == {"imdn", "rfdn", "rfdn-l", "erfdn", "idn"}


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from sr_export.cli import export_cli, bench_cli\n"
        "export_cli.build_parser().format_help(); bench_cli.build_parser().format_help()\n"
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_third_party_onnx_compared_with_another_artifact_is_measured(erfdn_onnx: Path, tmp_path: Path, sr_export) -> None:
    proto = onnx.load(str(erfdn_onnx))
    del proto.metadata_props[:]
    foreign = tmp_path / "third_party.onnx"
    onnx.save(proto, str(foreign))
    result = sr_export("check", foreign, "--against", erfdn_onnx, "--data-range", "255", "--json", "-")
    assert result.code == 0, result.err
    assert all(case["identical"] for case in json.loads(result.out)["cases"])
    assert "carries no sr-export metadata; pass --model" in sr_export("check", foreign).error()
