"""Typed runtime options: a profile's ``[options]`` table read into a runtime's own dataclass.

Every runtime declares its options as a frozen dataclass (``Runtime.options``).
:func:`parse_options` checks a mapping against it: an unknown key is an error
that names the key and the allowed ones, a value of the wrong type names the
key and what it must be. A field may list its allowed values in its metadata
(``field(metadata={"choices": (...)})``); the dataclass's own ``__post_init__``
checks anything more.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from sr_export.core.errors import SrExportError


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """For runtimes that take no options."""


def option_names(options_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(options_type))


def parse_options(options_type: type, values: Mapping[str, Any] | None, *, runtime: str, where: str = "") -> Any:
    """``values`` as an ``options_type`` instance; one-line errors name the key (and ``where`` it was written)."""
    values = dict(values or {})
    allowed = option_names(options_type)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        keys = ", ".join(f"options.{k}" for k in unknown)
        hint = ", ".join(allowed) or "none"
        raise SrExportError(f"unknown {runtime} option(s) {keys}{where}; allowed: {hint}")
    hints = typing.get_type_hints(options_type)
    converted = {}
    for spec in dataclasses.fields(options_type):
        if spec.name not in values:
            continue
        value = _convert(values[spec.name], hints[spec.name], f"options.{spec.name}{where}")
        choices = spec.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise SrExportError(f"options.{spec.name}{where} is {value!r}; choose one of: "
                                f"{', '.join(map(str, choices))}")
        converted[spec.name] = value
    try:
        return options_type(**converted)
    except SrExportError as exc:
        raise SrExportError(f"{exc}{where}" if where and where not in str(exc) else str(exc)) from exc


def options_dict(options: Any) -> dict[str, Any]:
    """An options dataclass as plain data (for metadata, JSON and the device job)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def _convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the type hint ``hint`` (str, int, float, bool, tuple[str, ...], optional of those)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SrExportError(f"{key} must be a list, not {value!r}")
        return tuple(_convert(item, args[0], key) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SrExportError(f"{key} must be true or false, not {value!r}")
        return value
    if hint is int:
        # bool is an int in Python; `workspace_mb = true` is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise SrExportError(f"{key} must be an integer, not {value!r}")
        return value
    if hint is float:
        # TOML has nan and inf; no option means them, and NaN slips through every range check.
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise SrExportError(f"{key} must be a finite number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SrExportError(f"{key} must be a string, not {value!r}")
        return value
    return value
