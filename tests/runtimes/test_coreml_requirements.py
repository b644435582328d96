"""Core ML programs say which Apple releases load them, read from the written program, and a build never
yields a program newer than the deployment target it was asked for."""

from __future__ import annotations

import pytest

from sr_export.core.errors import SrExportError
from sr_export.runtimes.coreml.requirements import SPEC_RELEASES, deployment_target_for, target_spec


@pytest.mark.parametrize(("named", "target"), [("coreml==iOS15", "iOS15"), ("ios==16", "iOS16"),
                                               ("macos==13", "macOS13"), ("CoreML == macOS14", "macOS14")])
def test_a_devices_os_names_the_deployment_target(named: str, target: str) -> None:
    assert deployment_target_for(named) == target


def test_releases_before_ml_programs_and_other_runtimes_are_refused_in_one_line() -> None:
    with pytest.raises(SrExportError, match="iOS14 predates ML Programs"):
        deployment_target_for("ios==14")
    with pytest.raises(SrExportError, match="names the device's OS"):
        deployment_target_for("tflite-runtime==2.14")
    with pytest.raises(SrExportError, match="unknown Core ML deployment target 'iOS9'"):
        target_spec("iOS9")


def test_each_deployment_target_maps_to_the_specification_its_release_loads() -> None:
    assert [target_spec(name) for name in ("iOS15", "macOS12", "iOS16", "macOS13", "iOS17", "iOS18")] == \
        [6, 6, 7, 7, 8, 9]
    assert SPEC_RELEASES[6] == "iOS 15 / macOS 12"


@pytest.fixture(scope="module")
def slim_imdn():
    pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")
    from sr_export.models.loader import ModelRequest, load_model

    return load_model(ModelRequest("imdn", scale=2, kwargs={"channels": 16, "blocks": 1}))


def _convert(model, **options):
    from sr_export.runtimes.coreml.convert import convert_model
    from sr_export.runtimes.coreml.options import CoreMLOptions
    from sr_export.runtimes.coreml.sizes import InputSizes

    return convert_model(model, CoreMLOptions(sizes=InputSizes.from_options((24, 24)), **options))


def test_an_ios15_program_records_that_ios15_and_macos12_load_it(slim_imdn, tmp_path) -> None:
    from sr_export.runtimes.coreml.package import write_package
    from sr_export.runtimes.registry import get_runtime

    converted = _convert(slim_imdn, deployment_target="iOS15", built_for="coreml==iOS15")
    needs = converted.metadata.runtime_requirements
    assert converted.mlmodel.get_spec().specificationVersion == 6
    assert needs["min_runtime"] == "iOS 15 / macOS 12" and needs["built_for"] == "coreml==iOS15"
    assert "Core ML specification 6" in needs["set_by"] and "CoreML5" in needs["set_by"]
    written = write_package(converted, tmp_path / "imdn_x2.mlpackage")
    from_file = get_runtime("coreml").file_requirements(written.path)  # what `info` shows for older packages
    assert from_file["min_runtime"] == needs["min_runtime"] and from_file["set_by"] == needs["set_by"]


def test_8_bit_weights_raise_the_specification_so_an_ios15_build_is_refused(slim_imdn) -> None:
    """coremltools quantises an iOS 15 program's weights into constexpr ops that only iOS 16 has, silently."""
    with pytest.raises(SrExportError, match=r"needs iOS 16 / macOS 13 \(.*constexpr_affine_dequantize\), newer "
                                            r"than the deployment target iOS15"):
        _convert(slim_imdn, deployment_target="iOS15", int8_weights=True)
    needs = _convert(slim_imdn, deployment_target="iOS16", int8_weights=True).metadata.runtime_requirements
    assert needs["min_runtime"] == "iOS 16 / macOS 13" and "constexpr_affine_dequantize" in needs["set_by"]
