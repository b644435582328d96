"""TF Lite releases on one axis: device runtimes named NAME==VERSION, op versions and kernels against them."""

from __future__ import annotations

import pytest

from sr_export.core.errors import SrExportError
from sr_export.runtimes.tflite.releases import (
    OP_VERSION_RELEASES,
    PROBE,
    Release,
    kernel_release,
    newer_than_built_for,
    op_release,
    release_in,
    release_named,
    too_old_for,
)


def test_the_three_package_lines_share_one_axis() -> None:
    tflite_runtime = Release.parse("tflite-runtime==2.14")
    assert Release.parse("tensorflow==2.14.1") == tflite_runtime  # same TF Lite release
    assert Release.parse("tflite_runtime==2.13") < tflite_runtime < Release.parse("ai-edge-litert==1.0")
    assert Release.parse("ai-edge-litert==1.4") < Release.parse("ai-edge-litert==2.0") < Release.parse("litert==2.3")
    assert Release.tf("2.18.0") < Release.parse("ai-edge-litert==1.0")
    assert tflite_runtime.label == "tflite-runtime 2.14"


@pytest.mark.parametrize(("spec", "words"), [
    ("tflite-runtime", "NAME==VERSION"),
    ("tflite-runtime>=2.14", "NAME==VERSION"),
    ("tflite-runtime==two", "NAME==VERSION"),
    ("onnxruntime==1.18", "not a TFLite runtime"),
])
def test_a_bad_runtime_is_one_line_saying_what_to_write(spec: str, words: str) -> None:
    with pytest.raises(SrExportError, match=words) as refused:
        Release.parse(spec)
    assert "\n" not in str(refused.value)


def test_op_versions_map_to_the_release_that_first_runs_them() -> None:
    # runtime_version.cc: an int8 CONV_2D (version 3) runs from 1.14, a 16x8 one with a quantised bias from 2.15.
    assert op_release("CONV_2D", 3) == Release.tf("1.14.0")
    assert op_release("CONV_2D", 8) == Release.tf("2.15.0") > Release.parse("tflite-runtime==2.14")
    assert op_release("CONV_2D", 99) is None and op_release("NOT_AN_OP", 1) is None
    assert all(versions[1] for versions in OP_VERSION_RELEASES.values())  # every op has its first version
    # SQRT has one version for every type; its int8 kernel came with ai-edge-litert 2.0 (measured).
    assert kernel_release("SQRT", "int8") == Release.parse("ai-edge-litert==2.0")
    assert kernel_release("SQRT", "float32") is None


def test_recorded_labels_and_runtime_descriptions_read_back() -> None:
    assert release_named("TF Lite 2.2") == Release.tf("2.2.0")
    assert release_named("ai-edge-litert 2.0") == Release.parse("ai-edge-litert==2.0")
    assert release_in("tflite (tflite_runtime 2.14.0, /venv/bin/python)") == Release.parse("tflite-runtime==2.14")
    assert release_in("ai_edge_litert 2.3.0 (XNNPACK)") == Release.parse("ai-edge-litert==2.3")
    assert release_in("onnxruntime 1.18.0") is None


def test_a_newer_runtime_is_named_and_an_older_one_refused() -> None:
    built = {"min_runtime": "TF Lite 1.14", "set_by": "QUANTIZE", "built_for": "tflite-runtime 2.14"}
    assert "newer than the tflite-runtime 2.14" in (newer_than_built_for(built, "ai_edge_litert 2.3.0") or "")
    assert newer_than_built_for(built, "tflite_runtime 2.14.0") is None
    assert newer_than_built_for({"min_runtime": "TF Lite 1.14"}, "ai_edge_litert 2.3.0") is None  # built for today's
    needs = {"min_runtime": "ai-edge-litert 2.0", "set_by": "SQRT (int8, int8 kernel) in IMDB1.cca"}
    assert "the device has tflite-runtime 2.14" in (too_old_for(needs, "tflite_runtime 2.14.0") or "")
    assert too_old_for(needs, "ai_edge_litert 2.3.0") is None


def test_the_probe_names_the_interpreter_this_environment_has() -> None:
    import subprocess
    import sys

    found = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.strip()
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (pip install 'sr-export[tflite]')")
    assert found.startswith("ai_edge_litert ") and release_in(found) is not None
