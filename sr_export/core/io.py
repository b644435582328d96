"""File writing that never leaves a half-written artifact behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError, WriteFailed
from sr_export.core.provenance import check_output, record_written


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary file lives in the same folder so the final ``os.replace`` is
    atomic; on any exception it is removed and ``target`` is left untouched.
    ``target`` is checked first (:func:`~sr_export.core.provenance.check_output`):
    a file sr-export did not write is replaced only with ``force``, a device or
    pipe never. A failed write (disk full, file size limit) names ``target``.
    """
    target = Path(target)
    check_output(target, force=force)
    # Not tempfile.mkstemp: its files are private (0600); artifacts get the user's umask.
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        open(tmp, "xb").close()
    except OSError as exc:
        raise SrExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with _named_on_failure(target, tmp):
            yield tmp
        os.replace(tmp, target)
        record_written(target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Like :func:`atomic_path`, for artifacts that are folders (Core ML's ``.mlpackage``).

    Yields a path beside ``target`` (not yet created; same suffix, so tools
    that look at it recognise the format); on success it replaces ``target``.
    An existing ``target`` is moved aside first and deleted only after the
    rename, so a failure never leaves neither behind.
    """
    import shutil

    target = Path(target)
    check_output(target, force=force, folder=True)
    tmp = target.parent / f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrExportError(f"cannot write {target}: {exc.strerror or exc}") from exc
    old = target.parent / f".{target.stem}.{secrets.token_hex(4)}.old{target.suffix}"
    try:
        with _named_on_failure(target, tmp):
            yield tmp
        if not tmp.is_dir():
            raise SrExportError(f"nothing was written for {target}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        record_written(target)
    finally:
        for leftover in (tmp, old):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()


# Errors that say the disk refused the bytes, whichever file object raised them.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS})


@contextlib.contextmanager
def _named_on_failure(target: Path, tmp: Path) -> Iterator[None]:
    """A failure to write ``tmp`` (disk full, file size limit) reported as one line naming ``target``."""
    try:
        yield
    except OSError as exc:
        if not _failed_writing(exc, tmp):
            raise
        raise WriteFailed(target, exc.strerror or str(exc)) from exc


def _failed_writing(exc: OSError, tmp: Path) -> bool:
    """Whether ``exc`` is about writing ``tmp`` (not, say, a download or an input file failing inside the block)."""
    if exc.filename is not None:
        return Path(exc.filename) == tmp or tmp in Path(exc.filename).parents
    return exc.errno in _WRITE_ERRNOS


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as an existing regular file, or one line saying what it is instead ("checkpoint not found: x")."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise SrExportError(f"{what} {path} is a folder; give the file")
    if path.exists():
        raise SrExportError(f"{what} {path} is not a regular file (a device, pipe or socket); give the file")
    raise SrExportError(f"{what} not found: {path}")


def write_text_atomic(target: str | os.PathLike[str], text: str, *, force: bool = False) -> Path:
    with atomic_path(target, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | os.PathLike[str], data: Any, *, force: bool = False) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n",
                             force=force)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if getattr(value, "ndim", 0) > 0 and hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def content_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder artifact's files in name order (e.g. an .mlpackage)."""
    import hashlib

    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
