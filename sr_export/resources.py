"""Where the declarative files (target profiles, calibration recipes, benchmark
suites) are found.

In a source checkout they sit at the top of the repository (``targets/``,
``calibration/``, ``benchmarks/suites/``); an installed wheel carries copies
under ``sr_export/_bundled/``. The bundled copy wins when both exist so an
installed tool never reads a stray checkout.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
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
