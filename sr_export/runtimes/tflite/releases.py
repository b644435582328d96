"""TF Lite runtime releases on one line: which builtin op versions and integer kernels each one has.

Boards run ``tflite-runtime`` (its last wheel is 2.14), ``tensorflow``'s
``tf.lite``, or ``ai-edge-litert`` (LiteRT, numbered from 1.0 again). A
:class:`Release` puts all three on one axis so a file's needs can be compared
with what a device has: TF releases as they are, ai-edge-litert 1.x after
TF 2.18 (the release it branched from) and 2.x after every TF release.

The tables are data taken from LiteRT's sources, not guesses:

* :data:`OP_VERSION_RELEASES`: the TF Lite release that first runs each
  builtin op version, from ``FindMinimumRuntimeVersionForOp`` in
  ``tflite/tools/versioning/runtime_version.cc`` (google-ai-edge/LiteRT
  05215c29; tensorflow/tensorflow's ``lite/tools/versioning`` has the same
  table), for the ops an SR graph is made of;
* :data:`TYPE_KERNELS`: integer kernels added *without* a new op version
  (so no version number tells them apart), measured: the op refused at
  ``allocate_tensors`` by the older runtimes, run by the newer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sr_export.core.errors import SrExportError

# Package names a device may have, by the line their version numbers follow.
TF_LINE_PACKAGES = ("tflite-runtime", "tensorflow", "tf-lite")
LITERT_PACKAGES = ("ai-edge-litert", "litert")


@dataclass(frozen=True, order=True)
class Release:
    """A runtime release on the common axis; ``label`` is how it is named to users."""

    key: tuple[int, int, int]
    label: str = field(compare=False)

    @classmethod
    def tf(cls, version: str) -> Release:
        """A TF Lite release as runtime_version.cc writes it ("2.14.0")."""
        major, minor = _numbers(version)[:2]
        return cls((major, minor, 0), f"TF Lite {major}.{minor}")

    @classmethod
    def parse(cls, spec: str) -> Release:
        """``NAME==VERSION`` ("tflite-runtime==2.14", "ai-edge-litert==2.3", "tensorflow==2.16")."""
        name, _, version = spec.partition("==")
        name = name.strip().lower().replace("_", "-")
        if not version or not re.fullmatch(r"\d+(\.\d+){0,2}", version.strip()):
            raise SrExportError(f"runtime '{spec}' is not NAME==VERSION; e.g. tflite-runtime==2.14 or ai-edge-litert==2.3")
        numbers = _numbers(version.strip())
        major, minor = numbers[0], numbers[1] if len(numbers) > 1 else 0
        if name in TF_LINE_PACKAGES:
            return cls((major, minor, 0), f"{name} {major}.{minor}")
        if name in LITERT_PACKAGES:
            # 1.x continued TF 2.18's TF Lite; 2.x came after the last TF release with tf.lite.
            key = (2, 18, 1 + minor) if major < 2 else (3, major - 2, minor)
            return cls(key, f"ai-edge-litert {major}.{minor}")
        known = ", ".join(TF_LINE_PACKAGES[:2] + LITERT_PACKAGES[:1])
        raise SrExportError(f"runtime '{name}' is not a TFLite runtime sr-export knows ({known})")


def _numbers(version: str) -> list[int]:
    return [int(part) for part in version.split(".") if part.isdigit()]


LITERT_2_0 = Release((3, 0, 0), "ai-edge-litert 2.0")

# op -> {op version: first TF Lite release that runs it}; runtime_version.cc (see the module docstring).
OP_VERSION_RELEASES: dict[str, dict[int, str]] = {
    "ADD": {1: "1.5.0", 2: "1.14.0", 3: "2.4.0", 4: "2.6.0", 5: "2.13.0"},
    "AVERAGE_POOL_2D": {1: "1.5.0", 2: "1.14.0", 3: "2.3.0"},
    "CONCATENATION": {1: "1.5.0", 2: "1.14.0", 3: "2.3.0", 4: "2.14.0"},
    "CONV_2D": {1: "1.5.0", 2: "1.14.0", 3: "1.14.0", 4: "2.3.0", 5: "2.4.0", 6: "2.9.0", 7: "2.11.0", 8: "2.15.0"},
    "DEPTHWISE_CONV_2D": {1: "1.5.0", 2: "1.12.0", 3: "1.14.0", 4: "2.2.0", 5: "2.3.0", 6: "2.3.0", 7: "2.11.0"},
    "DEPTH_TO_SPACE": {1: "2.1.0", 2: "2.5.0"},
    "DEQUANTIZE": {1: "1.13.1", 2: "1.14.0", 3: "1.15.0", 4: "2.2.0", 5: "2.7.0", 6: "2.18.0"},
    "DIV": {1: "1.6.0", 2: "2.3.0"},
    "GELU": {1: "2.9.0", 2: "2.9.0"},
    "HARD_SWISH": {1: "1.15.0"},
    "LEAKY_RELU": {1: "1.13.1", 2: "2.3.0"},
    "LOGISTIC": {1: "1.14.0", 2: "1.14.0", 3: "2.3.0"},
    "MAXIMUM": {1: "1.14.0", 2: "1.14.0", 3: "2.3.0", 4: "2.3.0"},
    "MAX_POOL_2D": {1: "1.5.0", 2: "1.14.0", 3: "2.3.0"},
    "MEAN": {1: "1.6.0", 2: "1.14.0", 3: "2.4.0"},
    "MINIMUM": {1: "1.14.0", 2: "1.14.0", 3: "2.3.0", 4: "2.3.0"},
    "MIRROR_PAD": {1: "1.13.1", 2: "2.3.0", 3: "2.12.0"},
    "MUL": {1: "1.5.0", 2: "1.14.0", 3: "1.15.0", 4: "2.3.0", 5: "2.6.0", 6: "2.11.0", 7: "2.13.0"},
    "PAD": {1: "1.5.0", 2: "1.14.0", 3: "2.4.0", 4: "2.6.0"},
    "PADV2": {1: "1.9.0", 2: "1.14.0", 3: "2.4.0", 4: "2.6.0"},
    "PRELU": {1: "1.8.0"},
    "QUANTIZE": {1: "1.14.0", 2: "1.15.0", 3: "2.7.0"},
    "RELU": {1: "1.5.0", 2: "2.1.0", 3: "2.5.0"},
    "RELU6": {1: "1.5.0", 2: "1.14.0", 3: "2.5.0"},
    "RESHAPE": {1: "1.5.0"},
    "RESIZE_BILINEAR": {1: "1.7.0", 2: "1.14.0", 3: "2.2.0", 4: "2.5.0"},
    "RESIZE_NEAREST_NEIGHBOR": {1: "1.13.1", 2: "1.14.0", 3: "2.3.0", 4: "2.4.0"},
    "RSQRT": {1: "1.10.0", 2: "2.5.0", 3: "2.15.0"},
    "SLICE": {1: "1.14.0", 2: "1.14.0", 3: "1.14.0", 4: "2.4.0", 5: "2.5.0", 6: "2.14.0"},
    "SPACE_TO_DEPTH": {1: "1.5.0", 2: "1.14.0"},
    "SQRT": {1: "1.10.0"},
    "SQUARED_DIFFERENCE": {1: "1.13.1", 2: "2.5.0"},
    "SQUEEZE": {1: "1.6.0", 2: "2.5.0"},
    "STRIDED_SLICE": {1: "1.6.0", 2: "1.14.0", 3: "2.1.0", 4: "2.2.0", 5: "2.5.0", 6: "2.6.0", 7: "2.14.0",
                      8: "2.14.0"},
    "SUB": {1: "1.6.0", 2: "1.14.0", 3: "2.3.0", 4: "2.4.0", 5: "2.4.0"},
    "SUM": {1: "1.10.0", 2: "1.15.0"},
    "TANH": {1: "1.14.0", 2: "1.14.0", 3: "2.3.0"},
    "TRANSPOSE": {1: "1.6.0", 2: "1.14.0", 3: "1.15.0", 4: "2.3.0", 5: "2.4.0", 6: "2.12.0", 7: "2.14.4"},
    "TRANSPOSE_CONV": {1: "1.9.0", 2: "2.2.0", 3: "2.3.0", 4: "2.13.0", 5: "2.15.0"},
}

# (op, activation type) -> first release with that kernel, where the op version does not change.
# SQRT int8/int16: "Type INT8 is unsupported by op Sqrt" on tflite-runtime 2.14.0, ai-edge-litert 1.0.1 and
# 1.4.0; ai-edge-litert 2.0.2 runs it (measured on IMDN's contrast-aware attention; 2.0.0/2.0.1 were never
# published on PyPI).
TYPE_KERNELS: dict[tuple[str, str], Release] = {
    ("SQRT", "int8"): LITERT_2_0,
    ("SQRT", "int16"): LITERT_2_0,
}


def op_release(op: str, version: int) -> Release | None:
    """The first release that runs ``op`` at ``version``; None for ops and versions the table lacks."""
    found = OP_VERSION_RELEASES.get(op, {}).get(version)
    return Release.tf(found) if found else None


def kernel_release(op: str, dtype: str) -> Release | None:
    return TYPE_KERNELS.get((op, dtype))


def release_in(text: str) -> Release | None:
    """The release a runtime description names ("tflite_runtime 2.14.0", "ai_edge_litert 2.3.0 (XNNPACK)")."""
    found = re.search(r"(tflite[_-]runtime|ai[_-]edge[_-]litert|tensorflow)\s+(\d+(?:\.\d+){0,2})", text)
    return Release.parse(f"{found.group(1)}=={found.group(2)}") if found else None


def newer_than_built_for(requirements: Mapping[str, Any], used: str) -> str | None:
    """A one-line warning when ``used`` (the runtime that ran a check) is newer than the file was built for."""
    built_for = requirements.get("built_for")
    ran = release_in(used)
    if not built_for or ran is None:
        return None
    target = release_in(str(built_for))
    if target is None or ran <= target:
        return None
    return (f"checked with {ran.label}, newer than the {target.label} this file was built for; prove it on that "
            "runtime with --runtime-python PATH (the python of an environment that has it)")


def release_named(label: str) -> Release | None:
    """The release a recorded label names ("TF Lite 2.2", "ai-edge-litert 2.0", "tflite-runtime 2.14")."""
    if label.startswith("TF Lite "):
        return Release.tf(label.removeprefix("TF Lite ") + ".0")
    return release_in(label)


# What a board's TFLite runtime is, asked before anything is copied to it: the interpreter package the
# device session would load (ai_edge_litert first, then tflite_runtime) and its version, on one line.
PROBE = (
    "import importlib\n"
    "for name in ('ai_edge_litert', 'tflite_runtime'):\n"
    "    try:\n"
    "        module = importlib.import_module(name)\n"
    "    except ImportError:\n"
    "        continue\n"
    "    print(name, getattr(module, '__version__', ''))\n"
    "    break\n"
)


def too_old_for(requirements: Mapping[str, Any], found: str) -> str | None:
    """Why a device whose runtime is ``found`` ("tflite_runtime 2.14.0") cannot load a file; None if it can."""
    needed = release_named(str(requirements.get("min_runtime", "")))
    have = release_in(found)
    if needed is None or have is None or have >= needed:
        return None
    return (f"needs {needed.label} or newer ({requirements.get('set_by', '?')}); the device has {have.label}: "
            "build it for that runtime (--for-runtime, or runtime in the profile's [device])")
