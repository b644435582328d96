"""Which Apple OS releases can load an ML Program, read from the program itself.

A Core ML file carries a specification version; every OS release loads the
versions up to its own and refuses newer ones. coremltools picks the version
from ``minimum_deployment_target``, but a later pass can raise it without a
word: 8-bit weights (``constexpr_*`` ops) need specification 7 (iOS 16), so
quantising the weights of an iOS 15 program yields a file iOS 15 refuses.
The build therefore records what the written program needs, and refuses when
that is newer than the deployment target it was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sr_export.core.errors import SrExportError

# Core ML specification version -> the first releases that load it (coremltools' ct.target table).
SPEC_RELEASES: Mapping[int, str] = {
    4: "iOS 13 / macOS 10.15",
    5: "iOS 14 / macOS 11",
    6: "iOS 15 / macOS 12",
    7: "iOS 16 / macOS 13",
    8: "iOS 17 / macOS 14",
    9: "iOS 18 / macOS 15",
    10: "iOS 26 / macOS 26",
}
# Deployment-target names (coremltools' ct.target members) -> specification version.
_FIRST_SPEC = {"iOS": {13: 4, 14: 5, 15: 6, 16: 7, 17: 8, 18: 9, 26: 10},
               "macOS": {10.15: 4, 11: 5, 12: 6, 13: 7, 14: 8, 15: 9, 26: 10}}
_FIRST_ML_PROGRAM_SPEC = 6
# Ops that came with a later specification than the rest of an SR program's (MIL's constexpr ops: iOS 16).
_OPS_SINCE_SPEC = {"constexpr_affine_dequantize": 7, "constexpr_lut_to_dense": 7, "constexpr_sparse_to_dense": 7,
                   "constexpr_cast": 7, "constexpr_blockwise_shift_scale": 8, "constexpr_lut_to_dense_v2": 8}


def target_spec(deployment_target: str) -> int:
    """'iOS15' -> 6, 'macOS13' -> 7; one line for a name that is no Apple release."""
    match = re.fullmatch(r"(iOS|macOS)(\d+(?:[._]\d+)?)", deployment_target.strip())
    if match:
        number = float(match.group(2).replace("_", "."))
        spec = _FIRST_SPEC[match.group(1)].get(int(number) if number.is_integer() else number)
        if spec is not None:
            return spec
    raise SrExportError(f"unknown Core ML deployment target '{deployment_target}'; name an Apple release such as "
                        "iOS15, iOS17 or macOS13")


def deployment_target_for(for_runtime: str) -> str:
    """A device's runtime as ``--for-runtime`` names it -> the deployment target to build for.

    Accepted: ``coreml==iOS15``, ``ios==15``, ``macos==13`` (the OS is the Core ML runtime's version)."""
    name, _, version = for_runtime.replace(" ", "").partition("==")
    text = version if name.lower() == "coreml" else name + version
    match = re.fullmatch(r"(?i)(ios|macos)(\d+(?:[._]\d+)?)", text)
    if not match:
        raise SrExportError(f"--for-runtime for Core ML names the device's OS: coreml==iOS15, ios==16 or "
                            f"macos==13, not '{for_runtime}'")
    target = ("iOS" if match.group(1).lower() == "ios" else "macOS") + match.group(2)
    if target_spec(target) < _FIRST_ML_PROGRAM_SPEC:
        raise SrExportError(f"{target} predates ML Programs, the only Core ML format sr-export writes (they need "
                            "iOS 15 / macOS 12 or newer)")
    return target


def program_requirements(spec: Any, built_for: str | None = None) -> dict[str, Any]:
    """What the metadata records: the oldest OS releases that load ``spec`` (a Core ML Model proto), and why."""
    version = int(spec.specificationVersion)
    record: dict[str, Any] = {"runtime": "coreml", "min_runtime": SPEC_RELEASES.get(version, f"Core ML specification {version}"),
                              "set_by": _reason(spec, version)}
    if built_for:
        record["built_for"] = built_for
    return record


def refuse_newer_than_target(requirements: Mapping[str, Any], spec: Any, deployment_target: str) -> None:
    """One line when the program needs a newer OS than the deployment target it was built for."""
    version, wanted = int(spec.specificationVersion), target_spec(deployment_target)
    if version <= wanted:
        return
    raise SrExportError(f"this program needs {requirements['min_runtime']} ({requirements['set_by']}), newer than "
                        f"the deployment target {deployment_target}: raise --deployment-target, or drop what needs "
                        "it (--int8-weights needs iOS16 / macOS13)")


def _reason(spec: Any, version: int) -> str:
    opsets = sorted({function.opset for function in spec.mlProgram.functions.values()}) if spec.HasField(
        "mlProgram") else []
    newer_ops = sorted({op for op in _op_types(spec) if _OPS_SINCE_SPEC.get(op, 0) >= version})
    parts = [f"Core ML specification {version}"]
    if opsets:
        parts.append(f"ML Program opset {', '.join(opsets)}")
    if newer_ops:
        parts.append(", ".join(newer_ops))
    return "; ".join(parts)


def _op_types(spec: Any) -> set[str]:
    if not spec.HasField("mlProgram"):
        return set()
    types: set[str] = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            types |= {op.type for op in block.operations}
    return types
