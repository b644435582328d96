"""Where the declarative files (target profiles, calibration recipes, benchmark
suites) are found.

In a source checkout they sit at the top of the repository (``targets/``,
``calibration/``, ``benchmarks/suites/``); an installed wheel carries copies
under ``sr_export/_bundled/``. The bundled copy wins when both exist so an
installed tool never reads a stray checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # sr_export/
_KINDS = {
    "targets": Path("targets"),
    "calibration": Path("calibration"),
    "suites": Path("benchmarks") / "suites",
}


def resource_dir(kind: str) -> Path:
    """Folder holding the bundled files of ``kind`` ('targets', 'calibration', 'suites')."""
    relative = _KINDS[kind]
    bundled = _PACKAGE_DIR / "_bundled" / relative
    if bundled.is_dir():
        return bundled
    return _PACKAGE_DIR.parent / relative


def list_resources(kind: str, suffix: str = ".toml") -> dict[str, Path]:
    folder = resource_dir(kind)
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob(f"*{suffix}"))}


def read_toml_resource(name_or_path: str | Path, kind: str, *, what: str, named: str | None = None,
                       known_as: str = "known") -> tuple[dict[str, Any], Path]:
    """The parsed file and its path: a ``.toml`` path as given, else the bundled ``kind`` file of that name.

    Errors are one line naming ``what`` (e.g. "calibration recipe"; ``named``
    where users call it otherwise by name, e.g. "target") and, for an unknown
    name, the names there are (``known_as`` labels that list).
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_dir():
        raise SrExportError(f"{what} {path} is a folder, not a TOML file")
    if path.suffix == ".toml" and path.exists() and not path.is_file():
        raise SrExportError(f"{what} {path} is not a regular file (a device, pipe or socket); give a TOML file")
    if path.suffix == ".toml" and not path.is_file():
        raise SrExportError(f"{what} {path} does not exist")
    if path.suffix != ".toml":
        available = {n: p for n, p in list_resources(kind).items() if not n.startswith("_")}
        if str(name_or_path) not in available:
            names = ", ".join(sorted(available)) or "none"
            raise SrExportError(f"unknown {named or what} '{name_or_path}'; {known_as}: {names} "
                                "(or a path to a .toml file)")
        path = available[str(name_or_path)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SrExportError(f"cannot read {what} {path}: not UTF-8 text (a binary file?); give a TOML file") from exc
    except OSError as exc:
        raise SrExportError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if not text.strip():
        raise SrExportError(f"{what} {path} is empty; write one like the bundled ones ({resource_dir(kind)})")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SrExportError(f"cannot read {what} {path}: not valid TOML ({exc})") from exc
    if not data:  # comments only: every setting would silently be a default
        raise SrExportError(f"{what} {path} sets nothing (only comments); write one like the bundled ones "
                            f"({resource_dir(kind)})")
    return data, path
