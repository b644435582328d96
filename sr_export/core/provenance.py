"""Which files sr-export wrote, so that it never replaces one it did not.

A path counts as sr-export's when any of these holds:

- the ledger (a small SQLite file in the cache folder) recorded it when it
  was written, and its size and modification time are still what was recorded
  (a file the user edited since is no longer ours);
- it carries sr-export's metadata (an ONNX file's ``metadata_props``, or a
  ``<file>.json`` sidecar sr-export writes beside other formats), so artifacts
  copied from another machine still count;
- it lies in sr-export's own cache folder.

Everything else is the user's: :func:`check_output` refuses to replace it
unless the caller passes ``force`` (the command-line ``--force``), and never
replaces what is not a regular file (a device such as ``/dev/null``, a FIFO).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from sr_export.core.cache import cache_root
from sr_export.core.errors import SrExportError
from sr_export.core.formats import EMBEDDED_METADATA_KEY

LEDGER_NAME = "written-files.sqlite"
_SCHEMA = "CREATE TABLE IF NOT EXISTS written (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER)"


def check_output(target: str | os.PathLike[str], *, force: bool = False, folder: bool = False) -> None:
    """Refuse, in one line naming ``target``, to write where sr-export must not.

    ``folder``: the output is a folder artifact (an ``.mlpackage``), so an
    existing folder of sr-export's may be replaced, and a file may not.
    """
    path = Path(target)
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SrExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        if not folder:
            raise SrExportError(f"cannot write {path}: a folder of that name is in the way; choose a file path")
    elif not stat.S_ISREG(mode):
        raise SrExportError(f"cannot write {path}: it is not a regular file (a device, pipe or socket); "
                            "choose a file path")
    elif folder:
        raise SrExportError(f"cannot write {path}: a file of that name is in the way (the output is a folder)")
    if force:
        return
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):  # mode bits, not access(): root may write anything
        raise SrExportError(f"cannot write {path}: it is read-only; make it writable, choose another path, "
                            "or pass --force to replace it")
    if not written_by_sr_export(path):
        raise SrExportError(f"{path} exists and sr-export did not write it; choose another path, "
                            "or pass --force to replace it")


def written_by_sr_export(path: Path) -> bool:
    """Whether ``path`` is a file (or folder artifact) sr-export wrote; see the module docstring."""
    path = Path(path)
    if _in_cache(path) or _in_ledger(path) or _has_sidecar(path):
        return True
    if path.name.endswith(".json") and path.is_file():  # a sidecar copied from elsewhere
        try:
            return _is_metadata(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return False
    return path.suffix.lower() == ".onnx" and path.is_file() and _onnx_has_metadata(path)


def record_written(path: str | os.PathLike[str]) -> None:
    """Note that sr-export just wrote ``path`` (best effort: a cache folder that cannot be written only means
    the file will later need ``--force``)."""
    path = Path(path)
    try:
        info = path.stat()
        with _ledger() as ledger:
            ledger.execute("INSERT OR REPLACE INTO written VALUES (?, ?, ?)",
                           (str(path.resolve()), _size(path, info), info.st_mtime_ns))
    except (OSError, sqlite3.Error):
        pass


def _in_ledger(path: Path) -> bool:
    try:
        info = path.stat()
        with _ledger() as ledger:
            row = ledger.execute("SELECT size, mtime_ns FROM written WHERE path = ?", (str(path.resolve()),)).fetchone()
    except (OSError, sqlite3.Error):
        return False
    return row is not None and tuple(row) == (_size(path, info), info.st_mtime_ns)


def _size(path: Path, info: os.stat_result) -> int:
    return -1 if path.is_dir() else info.st_size


@contextlib.contextmanager
def _ledger() -> Iterator[sqlite3.Connection]:
    folder = cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(folder / LEDGER_NAME, timeout=10)
    try:
        with connection:
            connection.execute(_SCHEMA)
            yield connection
    finally:
        connection.close()


def _in_cache(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(cache_root().resolve())
    except OSError:
        return False


def _has_sidecar(path: Path) -> bool:
    """A ``<file>.json`` sidecar holding sr-export metadata (written beside every artifact without a metadata slot)."""
    sidecar = path.with_name(path.name + ".json")
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return _is_metadata(document)


def _is_metadata(document: object) -> bool:
    return isinstance(document, dict) and "tool_version" in document and "model" in document


def _onnx_has_metadata(path: Path) -> bool:
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False
    return any(p.key == EMBEDDED_METADATA_KEY for p in proto.metadata_props)
