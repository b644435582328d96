"""Results history: every sr-bench run kept in one SQLite file, so numbers can be
compared over time and a regression can fail CI.

A run (one model on one target, all its sizes) is written in a single
transaction after it has finished, so an interrupted benchmark or a dropped
connection leaves the history exactly as it was.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch TEXT NOT NULL,
    created TEXT NOT NULL,
    model TEXT NOT NULL,
    scale INTEGER NOT NULL,
    weights_sha256 TEXT,
    artifact_name TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    target TEXT NOT NULL,
    backend TEXT NOT NULL,
    precision TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    git_commit TEXT,
    params INTEGER,
    aim_flops INTEGER,
    activations INTEGER,
    convs INTEGER,
    dataset TEXT,
    psnr_y REAL,
    ssim_y REAL,
    device TEXT NOT NULL,
    conditions TEXT NOT NULL,
    sizes TEXT NOT NULL,
    sample_png BLOB
);
CREATE INDEX IF NOT EXISTS runs_by_model ON runs (model, scale, target);
"""


@dataclass
class RunRecord:
    """One model measured on one target: what the history stores and reports read."""

    model: str
    scale: int
    artifact_name: str
    artifact_sha256: str
    target: str
    backend: str
    precision: str
    tool_version: str
    device: dict[str, Any]
    conditions: dict[str, Any]
    sizes: list[dict[str, Any]]  # one entry per LR size, as the device runner reports it
    weights_sha256: str | None = None
    git_commit: str | None = None
    params: int | None = None
    aim_flops: int | None = None
    activations: int | None = None
    convs: int | None = None
    dataset: str | None = None
    psnr_y: float | None = None
    ssim_y: float | None = None
    created: str = ""
    batch: str = ""
    id: int | None = None
    sample_png: bytes | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.model} x{self.scale}"

    def size(self, input_hw: Sequence[int]) -> dict[str, Any] | None:
        return next((s for s in self.sizes if list(s["input_hw"]) == list(input_hw)), None)

    def median_ms(self, input_hw: Sequence[int] | None = None) -> float | None:
        entry = self.size(input_hw) if input_hw is not None else (self.sizes[0] if self.sizes else None)
        return float(entry["inference"]["median_ms"]) if entry else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sample_png")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__ if f != "sample_png"}
        missing = {"model", "scale", "target", "sizes"} - set(data)
        if missing:
            raise SrExportError(f"not a sr-bench run record (missing {', '.join(sorted(missing))})")
        defaults = {"artifact_name": "", "artifact_sha256": "", "backend": "", "precision": "", "tool_version": "",
                    "device": {}, "conditions": {}}
        problem = _record_problem(data)
        if problem:
            raise SrExportError(f"not a sr-bench run record ({problem})")
        return cls(**{**defaults, **{k: v for k, v in data.items() if k in known}})


def _record_problem(data: dict[str, Any]) -> str:
    """What makes ``data`` unusable as a run record (a gate must never pass on numbers it cannot read), or ''."""
    if not isinstance(data["model"], str) or not isinstance(data["target"], str):
        return "model and target must be names"
    if isinstance(data["scale"], bool) or not isinstance(data["scale"], int) or data["scale"] < 1:
        return f"scale must be a whole number >= 1, got {data['scale']!r}"
    if not isinstance(data["sizes"], list):
        return "sizes must be a list"
    for entry in data["sizes"]:
        try:
            height, width = (int(v) for v in entry["input_hw"])
            median = float(entry["inference"]["median_ms"])
        except (TypeError, KeyError, ValueError):
            return "each size needs input_hw [H, W] and inference.median_ms"
        if not (math.isfinite(median) and median >= 0):
            return f"median latency at {height}x{width} must be a number >= 0, got {median!r}"
    for name in ("psnr_y", "ssim_y"):  # PSNR of identical images is +inf; NaN compares false to every bound
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)):
            return f"{name} must be a number, got {value!r}"
    return ""


def default_db_path() -> Path:
    """The history file in the user's data folder (XDG on Linux, ~/Library on macOS, %LOCALAPPDATA% on Windows)."""
    if os.environ.get("SR_EXPORT_HISTORY"):
        return Path(os.environ["SR_EXPORT_HISTORY"])
    if os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path.home() / ".local" / "share"
    return base / "sr-export" / "history.sqlite"


class History:
    """The SQLite history file; open with :func:`open_history`."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    def add(self, record: RunRecord) -> int:
        row = record.to_dict()
        row.pop("id")
        row["sample_png"] = record.sample_png
        for key in ("device", "conditions", "sizes"):
            row[key] = json.dumps(row[key], sort_keys=True)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._db:  # one transaction: the run is stored whole or not at all
            cursor = self._db.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", row)
        record.id = cursor.lastrowid
        return int(cursor.lastrowid or 0)

    def runs(self, *, model: str | None = None, target: str | None = None, batch: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        clauses, values = [], []
        for column, value in (("model", model), ("target", target), ("batch", batch)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM runs {where} ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [_record(row) for row in self._db.execute(sql, values)]

    def get(self, run_id: int | str) -> RunRecord:
        try:
            number = int(run_id)
        except ValueError:
            raise SrExportError(f"run '{run_id}' is not a run number (see sr-bench history)") from None
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (number,)).fetchone()
        if row is None:
            raise SrExportError(f"no run {number} in {self.path} (see sr-bench history)")
        return _record(row)

    def latest_batch(self) -> list[RunRecord]:
        row = self._db.execute("SELECT batch FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return self.runs(batch=row["batch"]) if row else []

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@contextmanager
def open_history(path: Path | None = None, *, create: bool = True) -> Iterator[History]:
    """The history at ``path`` (default: the user's); ``create=False`` opens it read-only, for commands that
    only read.

    A file that is not sr-export's history is refused (:func:`check_history`) and never written to: no
    table is added to somebody else's database. A new history is created whole, under its final name in
    one step, so a parallel run never sees it half made.
    """
    path = Path(path) if path is not None else default_db_path()
    check_history(path, write=create)
    if create and not path.exists():
        _create(path)
    try:
        connection = sqlite3.connect(path, timeout=30) if create else _connect_read_only(path)
    except (OSError, sqlite3.Error) as exc:
        raise SrExportError(f"cannot open the results history {path}: {exc}") from exc
    connection.row_factory = sqlite3.Row
    try:
        yield History(connection, path)
    finally:
        connection.close()


_SQLITE_MAGIC = b"SQLite format 3\x00"
_COLUMNS = frozenset(RunRecord.__dataclass_fields__)  # the runs table holds one column per field
_USE_ANOTHER = "pass the history file sr-bench wrote, or a path that does not exist yet, with --db"


def check_history(path: Path, *, write: bool) -> None:
    """Refuse, before any work and without changing it, a ``--db`` that is not a history sr-bench can use.

    ``write``: a run is about to store records there, so the file may also not exist yet (its folder must
    then be creatable) but must be writable. Every refusal is one line naming the file.
    """
    if path.is_dir():
        raise SrExportError(f"{path} is a folder, not a sr-bench history; pass the history file itself with --db")
    if not path.exists():
        if not write:
            raise SrExportError(f"no results history at {path} yet; run sr-bench first (or pass --db)")
        _check_creatable(path)
        return
    if not path.is_file():
        raise SrExportError(f"{path} is not a sr-bench history (not a regular file); {_USE_ANOTHER}")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise SrExportError(f"cannot read the results history {path}: {exc.strerror or exc}") from exc
    if not head:
        raise SrExportError(f"{path} is not a sr-bench history (the file is empty); {_USE_ANOTHER}")
    if head != _SQLITE_MAGIC:
        raise SrExportError(f"{path} is not a sr-bench history (not an SQLite file); {_USE_ANOTHER}")
    try:
        connection = _connect_read_only(path)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            columns = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
            # A damaged page would otherwise surface halfway through a listing or a stored run.
            damage = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise SrExportError(f"{path} is not a sr-bench history (SQLite said: {exc}); {_USE_ANOTHER}") from exc
    if damage != "ok":
        raise SrExportError(f"{path} is not a sr-bench history (SQLite said: {damage}); {_USE_ANOTHER}")
    if version > SCHEMA_VERSION:
        raise SrExportError(f"{path} was written by a newer sr-export (history schema {version}; this version reads "
                            f"schema {SCHEMA_VERSION}); upgrade sr-export, or pass another --db")
    if version != SCHEMA_VERSION or not _COLUMNS <= columns:
        raise SrExportError(f"{path} is not a sr-bench history (an SQLite database without sr-bench's runs table); "
                            f"{_USE_ANOTHER}")
    if write:
        _check_writable(path)


def _check_writable(path: Path) -> None:
    # No write bit at all: the user protected the file; that holds even for root, whom os.access lets through.
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise SrExportError(f"the results history {path} is read-only; make it writable, pass another --db, "
                            "or run with --no-history")
    if not os.access(path.parent, os.W_OK | os.X_OK):  # SQLite writes its journal beside the file
        raise SrExportError(f"the folder of the results history {path} is read-only (SQLite keeps its journal "
                            "there); pass another --db, or run with --no-history")


def _check_creatable(path: Path) -> None:
    """A new history can be made at ``path``: its nearest existing ancestor is a writable folder."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SrExportError(f"cannot create the results history {path}: {ancestor} is not a folder; pass another --db")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SrExportError(f"cannot create the results history {path}: {ancestor} is not writable; "
                            "pass another --db, or run with --no-history")


def _create(path: Path) -> None:
    """Make an empty history beside ``path``, then link it in; a history another run linked first wins."""
    import secrets

    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(scratch)
        try:
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.commit()
        finally:
            connection.close()
        try:
            os.link(scratch, path)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            check_history(path, write=True)
        except OSError:  # a file system without hard links: rename, only if the name is still free
            if path.exists():
                check_history(path, write=True)
            else:
                os.replace(scratch, path)
    except (OSError, sqlite3.Error) as exc:
        raise SrExportError(f"cannot create the results history {path}: {exc}") from exc
    finally:
        scratch.unlink(missing_ok=True)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    from urllib.parse import quote

    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30)


def _record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    for key in ("device", "conditions", "sizes"):
        data[key] = json.loads(data[key])
    png = data.pop("sample_png")
    record = RunRecord(**data)
    record.sample_png = png
    return record


def load_baseline(text: str, history: History | None) -> list[RunRecord]:
    """``RUN`` (a number in the history) or a JSON file holding one run record or a list of them."""
    path = Path(text)
    if path.suffix == ".json" or path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SrExportError(f"cannot read baseline {path}: {exc}") from exc
        items = data if isinstance(data, list) else data.get("runs", [data]) if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SrExportError(f"baseline {path} holds no run records (write one with sr-bench history --json)")
        if not items:
            raise SrExportError(f"baseline {path} holds no run records; a gate against nothing would pass "
                                "(write one with sr-bench history --json)")
        try:
            return [RunRecord.from_dict(item) for item in items]
        except SrExportError as exc:
            raise SrExportError(f"baseline {path}: {exc}; write one with sr-bench history --json") from exc
    if history is None:
        raise SrExportError(f"baseline '{text}' is neither a JSON file nor a run in the history")
    return [history.get(text)]
