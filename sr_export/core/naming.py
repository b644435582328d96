"""Default output names: everything that makes two builds of one model differ is in the name, so a second
build never replaces the first (explicit ``-o`` names are the user's and are never changed).

The scheme, for every command that names a file itself::

    <model>_x<scale>[_<H>x<W>]_<precision>[<variant>][-<recipe>].<suffix>

``erfdn_x4_int8-mixed.onnx`` (ONNX Runtime QDQ, recipe ``mixed``), ``erfdn_x4_int8_trt-default.onnx``
(TensorRT's QDQ flavour), ``erfdn_x4_int8-default+kf3c1e08a2.onnx`` (a --keep-float plan), ``erfdn_x4_64x64_int8_a16-default.tflite``, ``erfdn_x4_int8-default.engine``;
float files keep ``erfdn_x4.onnx`` (``erfdn_x4_256x256.onnx`` fixed to one LR size) and ``..._fp16...``. Results of a benchmark run are
``<suite>-<target>-<run id>.json``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

# What may stand in a file name on every OS; anything else in a recipe's name becomes '-'.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+]+")
# A precision tail a default name ends with (recipe included), stripped to name a file built from it.
PRECISION_TAIL = re.compile(r"_(?:fp16|bf16|int8)(?:_[a-z0-9]+)?(?:-(?P<recipe>[A-Za-z0-9._+-]+))?$")


def label(text: str) -> str:
    """``text`` as a file-name part: runs of unsafe characters become one '-' ('my recipe/v2' -> 'my-recipe-v2')."""
    return _UNSAFE.sub("-", text).strip("-.") or "custom"


def int8_tail(recipe: str | None, variant: str = "") -> str:
    """'_int8' + the variant ('_trt', '_a16', '_full') + '-<recipe>' when the file was calibrated by one."""
    return f"_int8{variant}" + (f"-{label(recipe)}" if recipe else "")


def keep_float_tag(names: Iterable[str]) -> str:
    """'+kf<8 hex>' naming a --keep-float plan (its set of names, in any order), '' for none: two plans
    of one model and recipe are two builds, so two files."""
    plan = sorted({name.strip() for name in names if name.strip()})
    if not plan:
        return ""
    return "+kf" + hashlib.sha256(",".join(plan).encode()).hexdigest()[:8]


def base_stem(stem: str) -> tuple[str, str | None]:
    """A default name's stem without its precision tail, and the recipe the tail named (if any):
    'imdn_x2_int8_trt-mixed' -> ('imdn_x2', 'mixed')."""
    match = PRECISION_TAIL.search(stem)
    if match is None:
        return stem, None
    return stem[:match.start()], match["recipe"]


def run_stamp(now: datetime | None = None) -> str:
    """A run id where there is no history run number: UTC time to the second, sortable as text."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def unused_stem(folder: Path, stem: str, suffixes: Iterable[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``...: the first for which no file with any of ``suffixes`` exists
    in ``folder`` (two runs in one second, or two history files numbering runs alike)."""
    suffixes = tuple(suffixes)
    candidate, number = stem, 1
    while any((folder / f"{candidate}{suffix}").exists() for suffix in suffixes):
        number += 1
        candidate = f"{stem}-{number}"
    return candidate
