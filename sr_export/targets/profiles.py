"""Declarative target profiles (``targets/*.toml``): which runtime (``backend``), precision,
options, sizes and timing settings one device is measured with, and how to reach it.

Profiles are validated strictly: a typo in a key or a bad value is an error
that names the key, because a silently ignored ``runs = "50"`` or
``[devcie]`` section would produce numbers measured under conditions other
than the ones the user wrote down. The ``[options]`` table is the runtime's
own (its descriptor's options dataclass) and is checked against it
(:meth:`TargetProfile.runtime_options`) before anything is built.

A *target* is a profile name, a profile path, or a runtime name (its
defaults then make the profile): :func:`load_target`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.core.precisions import PRECISIONS
from sr_export.core.resources import list_resources
from sr_export.core.sizes import parse_size
from sr_export.runtimes.base import Runtime
from sr_export.runtimes.registry import get_runtime, runtime_names

DEFAULT_PROFILE = "cpu"

DEVICE_KINDS = ("local", "ssh")

_TOP_KEYS = {"name", "backend", "description", "precision", "device", "runtime", "bench", "options", "notes"}
_RUNTIME_KEYS = {"threads"}
_BENCH_KEYS = {"input_sizes", "warmup", "runs", "timeout_s"}
_DEVICE_KEYS = {"kind", "host", "user", "port", "key", "workdir", "python", "connect_timeout_s", "power", "ssh_config",
                "runtime"}


@dataclass(frozen=True)
class DeviceAccess:
    """How to reach the device: this machine, or an SSH host (alias from ~/.ssh/config or address)."""

    kind: str = "local"
    host: str | None = None
    user: str | None = None
    port: int | None = None
    key: Path | None = None
    workdir: str = "/tmp/sr-bench"
    python: str = "python3"
    connect_timeout_s: int = 10
    power: str = ""  # how to set the power mode / clocks before measuring
    ssh_config: Path | None = None  # ssh -F; None: ~/.ssh/config as ssh itself reads it
    # The runtime the device has, NAME==VERSION (tflite-runtime==2.14): builds for the profile are fitted to it
    # (runtimes whose options take ``for_runtime``) and sr-bench stops before copying a file that needs a newer one.
    runtime: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.kind != "local"

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, "host": self.host, "user": self.user, "port": self.port,
                "key": str(self.key) if self.key else None, "workdir": self.workdir, "python": self.python,
                "runtime": self.runtime}
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True)
class TargetProfile:
    name: str
    backend: str
    description: str = ""
    precision: str = "fp32"
    access: DeviceAccess = field(default_factory=DeviceAccess)
    threads: int | None = None  # None: the runtime's default (all cores)
    input_sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    warmup: int = 2
    runs: int = 10
    timeout_s: int = 900
    notes: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def device(self) -> str:
        return self.access.kind

    def require_backend(self) -> Runtime:
        """The profile's runtime; one line naming what is missing when this installation has no such runtime."""
        if self.backend not in runtime_names():
            # Runtime extras are named after the runtime (sr-export[tflite]).
            hint = (f"install it with: pip install 'sr-export[{self.backend}]' (a version that ships the "
                    f"{self.backend} target)")
            raise SrExportError(f"target '{self.name}' needs the '{self.backend}' backend, which this installation "
                                f"lacks; {hint}")
        return get_runtime(self.backend)

    def runtime_options(self) -> Any:
        """``[options]`` as the runtime's typed options; an unknown key or a bad value names itself and the file."""
        where = f" in {self.source}" if self.source else f" of target '{self.name}'"
        runtime = self.require_backend()
        options = dict(self.options)
        if self.access.runtime and "for_runtime" in getattr(runtime.options, "__dataclass_fields__", {}):
            options.setdefault("for_runtime", self.access.runtime)  # [device] runtime: what builds fit the file to
        return runtime.parse_options(options, where=where)

    def validate(self) -> Runtime:
        """Everything a run needs from the profile, checked before any work: runtime, precision, options."""
        runtime = self.require_backend()
        if self.precision not in runtime.precisions:
            raise SrExportError(f"target '{self.name}': the {self.backend} runtime builds "
                                f"{', '.join(runtime.precisions)}, not {self.precision}")
        self.runtime_options()
        return runtime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "backend": self.backend, "precision": self.precision, "threads": self.threads,
            "device": self.access.to_dict(), "input_sizes": [f"{h}x{w}" for h, w in self.input_sizes],
            "warmup": self.warmup, "runs": self.runs,
        }


def available_profiles() -> dict[str, Path]:
    # The commented template is documentation to copy, not a target to run.
    return {name: path for name, path in list_resources("targets").items() if not name.startswith("_")}


def resource_template() -> Path:
    """The commented profile to copy for a device of one's own."""
    from sr_export.core.resources import resource_dir

    return resource_dir("targets") / "_template.toml"


def load_target(name_or_path: str | Path) -> TargetProfile:
    """A profile by name or path, or, for a runtime's name, a profile of that runtime's defaults
    (this machine, its first precision among fp32 and the others, the ``cpu`` profile's sizes and counts)."""
    text = str(name_or_path)
    if Path(text).suffix == ".toml" or text in available_profiles() or text not in runtime_names():
        return load_profile(name_or_path)
    runtime = get_runtime(text)
    precision = "fp32" if "fp32" in runtime.precisions else runtime.precisions[0]
    default = load_profile(DEFAULT_PROFILE)
    return TargetProfile(name=text, backend=text, description=f"{runtime.description} (runtime defaults)",
                         precision=precision, input_sizes=default.input_sizes, warmup=default.warmup,
                         runs=default.runs)


def load_profile(name_or_path: str | Path) -> TargetProfile:
    from sr_export.core.resources import read_toml_resource

    data, path = read_toml_resource(name_or_path, "targets", what="target profile", named="target",
                                    known_as="known targets")
    return profile_from_dict(data, source=path)


def profile_from_dict(data: dict[str, Any], source: Path | None = None) -> TargetProfile:
    where = f" in {source}" if source else ""
    check = Checker(where)
    check.keys(data, _TOP_KEYS, "")
    if "backend" not in data:
        raise SrExportError(f"target profile{where} does not name a backend")
    backend = check.choice(data, "backend", tuple(runtime_names()), "")
    runtime = check.table(data, "runtime", _RUNTIME_KEYS)
    bench = check.table(data, "bench", _BENCH_KEYS)
    options = check.table(data, "options", None)
    threads = check.integer(runtime, "threads", "runtime.", 0, default=0)
    input_sizes = check.sizes(bench, "input_sizes", "bench.") if "input_sizes" in bench else ((256, 256),)
    return TargetProfile(
        name=check.string(data, "name", "", default=source.stem if source else "custom"),
        backend=backend,
        description=check.string(data, "description", "", default=""),
        precision=check.choice(data, "precision", PRECISIONS, "", default="fp32"),
        access=_device(data.get("device", "local"), check),
        threads=threads or None,
        input_sizes=input_sizes,
        warmup=check.integer(bench, "warmup", "bench.", 0, default=2),
        runs=check.integer(bench, "runs", "bench.", 1, default=10),
        timeout_s=check.integer(bench, "timeout_s", "bench.", 1, default=900),
        notes=check.string(data, "notes", "", default=""),
        options=dict(options),
        source=source,
    )


def _device(value: Any, check: Checker) -> DeviceAccess:
    if isinstance(value, str):  # the short form: device = "local"
        if value != "local":
            raise SrExportError(f"device{check.where} must be \"local\" or a [device] table with kind = \"ssh\"")
        return DeviceAccess()
    if not isinstance(value, dict):
        raise SrExportError(f"device{check.where} must be \"local\" or a [device] table")
    check.keys(value, _DEVICE_KEYS, "device.")
    kind = check.choice(value, "kind", DEVICE_KINDS, "device.", default="local")
    host = check.string(value, "host", "device.", default="") or None
    if kind == "ssh" and not host:
        raise SrExportError(f"device.host{check.where} is required when device.kind = \"ssh\"")
    if host is not None and host.startswith("-"):
        # ssh would read it as an option; no real host or alias starts with '-'.
        raise SrExportError(f"device.host{check.where} must not start with '-'")
    key = check.string(value, "key", "device.", default="")
    ssh_config = check.string(value, "ssh_config", "device.", default="")
    workdir = check.string(value, "workdir", "device.", default="/tmp/sr-bench")
    if kind == "ssh" and not workdir.startswith(("/", "~/")):
        raise SrExportError(f"device.workdir{check.where} must be an absolute path (or start with ~/)")
    return DeviceAccess(
        kind=kind,
        host=host,
        user=check.string(value, "user", "device.", default="") or None,
        port=check.integer(value, "port", "device.", 1, default=0, maximum=65535) or None,
        key=Path(key).expanduser() if key else None,
        workdir=workdir,
        python=check.string(value, "python", "device.", default="python3") or "python3",
        connect_timeout_s=check.integer(value, "connect_timeout_s", "device.", 1, default=10),
        power=check.string(value, "power", "device.", default=""),
        runtime=check.string(value, "runtime", "device.", default="") or None,
        ssh_config=Path(ssh_config).expanduser() if ssh_config else None,
    )


@dataclass(frozen=True)
class Checker:
    """Typed reads from parsed TOML whose errors name the dotted key and the file."""

    where: str

    def keys(self, table: dict[str, Any], allowed: set[str] | None, prefix: str) -> None:
        unknown = sorted(set(table) - allowed) if allowed is not None else []
        if unknown:
            names = ", ".join(prefix + k for k in unknown)
            raise SrExportError(f"unknown key(s) {names}{self.where}; allowed: {', '.join(sorted(allowed or ()))}")

    def table(self, data: dict[str, Any], key: str, allowed: set[str] | None) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise SrExportError(f"{key}{self.where} must be a table ([{key}])")
        self.keys(value, allowed, f"{key}.")
        return value

    def string(self, table: dict[str, Any], key: str, prefix: str, *, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise SrExportError(f"{prefix}{key}{self.where} must be a string, not {value!r}")
        return value

    def choice(self, table: dict[str, Any], key: str, choices: tuple[str, ...], prefix: str,
               *, default: str | None = None) -> str:
        value = table.get(key, default)
        if value not in choices:
            raise SrExportError(f"{prefix}{key}{self.where} is {value!r}; choose one of: {', '.join(choices)}")
        return value

    def sizes(self, table: dict[str, Any], key: str, prefix: str) -> tuple[tuple[int, int], ...]:
        value = table[key]
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            raise SrExportError(f"{prefix}{key}{self.where} must be a non-empty list of \"HxW\" strings")
        try:
            return tuple(parse_size(s) for s in value)
        except SrExportError as exc:
            raise SrExportError(f"{prefix}{key}{self.where}: {exc}") from exc

    def integer(self, table: dict[str, Any], key: str, prefix: str, minimum: int, *, default: int,
                maximum: int | None = None) -> int:
        if key not in table:
            return default
        value = table[key]
        # bool is an int in Python; `runs = true` is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (
                maximum is not None and value > maximum):
            bound = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
            raise SrExportError(f"{prefix}{key}{self.where} must be {bound}, not {value!r}")
        return value
