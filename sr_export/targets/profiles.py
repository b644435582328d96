"""Declarative target profiles (``targets/*.toml``): which backend, precision,
sizes and timing settings one device is measured with."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export.errors import SrExportError
from sr_export.resources import list_resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_PROFILE = "cpu"


@dataclass(frozen=True)
class TargetProfile:
    name: str
    backend: str
    description: str = ""
    precision: str = "fp32"
    device: str = "local"
    threads: int | None = None  # None: the runtime's default (all cores)
    input_sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    warmup: int = 2
    runs: int = 10
    options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


def parse_size(text: str) -> tuple[int, int]:
    """'256x256' or '640x360' (height x width) -> (256, 256); '3x64x64' -> (64, 64)."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (2, 3) or min(values, default=0) < 1:
        raise SrExportError(f"size '{text}' is not HxW (e.g. 256x256) or CxHxW (e.g. 3x256x256)")
    return values[-2], values[-1]


def available_profiles() -> dict[str, Path]:
    return list_resources("targets")


def load_profile(name_or_path: str) -> TargetProfile:
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        profiles = available_profiles()
        if name_or_path not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise SrExportError(f"unknown target '{name_or_path}'; known targets: {known} (or a path to a .toml profile)")
        path = profiles[name_or_path]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SrExportError(f"cannot read target profile {path}: {exc}") from exc
    return profile_from_dict(data, source=path)


def profile_from_dict(data: dict[str, Any], source: Path | None = None) -> TargetProfile:
    where = f" in {source}" if source else ""
    allowed = {"name", "backend", "description", "precision", "device", "runtime", "bench", "options"}
    unknown = set(data) - allowed
    if unknown:
        raise SrExportError(f"unknown key(s) {', '.join(sorted(unknown))}{where}; allowed: {', '.join(sorted(allowed))}")
    if "backend" not in data:
        raise SrExportError(f"target profile{where} does not name a backend")
    runtime, bench = data.get("runtime", {}), data.get("bench", {})
    threads = runtime.get("threads")
    return TargetProfile(
        name=data.get("name", source.stem if source else "custom"),
        backend=data["backend"],
        description=data.get("description", ""),
        precision=data.get("precision", "fp32"),
        device=data.get("device", "local"),
        threads=int(threads) if threads else None,
        input_sizes=tuple(parse_size(s) for s in bench.get("input_sizes", ["256x256"])),
        warmup=int(bench.get("warmup", 2)),
        runs=int(bench.get("runs", 10)),
        options=dict(data.get("options", {})),
        source=source,
    )
