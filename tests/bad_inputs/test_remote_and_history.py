"""Bad input for the results history: ``--db`` files that are not sr-bench's history.

Refusals are one ``error:`` line with exit 2, come before any work, and leave nothing behind: no output
folder, no history file, and the ``--db`` file the user gave exactly as it was (bytes and mtime).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ESPCN = f"{Path(__file__).resolve().parents[1] / 'fixtures' / 'espcn.py'}:ESPCN"
MATRIX = ("--models", ESPCN, "--scale", "3", "--exporter", "legacy")


# --- the history file ------------------------------------------------------------------------------------


def _record(**changes: object):
    from sr_export.bench.history import RunRecord

    fields = {"model": "espcn", "scale": 3, "artifact_name": "espcn_x3.onnx", "artifact_sha256": "0" * 64,
              "target": "cpu", "backend": "onnxruntime", "precision": "fp32", "tool_version": "test",
              "device": {}, "conditions": {}, "batch": "b1", "created": "2025-01-01T00:00:00+00:00",
              "sizes": [{"input_hw": [16, 16], "inference": {"median_ms": 1.0}}]}
    return RunRecord(**{**fields, **changes})


def a_history(path: Path) -> Path:
    """A genuine history holding one run, written the way sr-bench writes it."""
    from sr_export.bench.history import open_history

    with open_history(path) as history:
        history.add(_record())
    return path


def foreign_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        connection.execute("INSERT INTO notes (text) VALUES ('mine, not sr-bench''s')")
    return path


def newer_history(path: Path) -> Path:
    """A history written by a later sr-export (schema 2): this one must not read or downgrade it."""
    a_history(path)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 2")
    return path


def truncated_history(path: Path) -> Path:
    a_history(path)
    with sqlite3.connect(path) as connection:  # grow it past one page, then cut it there
        connection.execute("UPDATE runs SET sample_png = ?", (bytes(range(256)) * 64,))
    data = path.read_bytes()
    path.write_bytes(data[:4096])
    return path


def damaged_history(path: Path) -> Path:
    """A history whose runs table's page was overwritten (the header and the schema still read fine)."""
    a_history(path)
    with sqlite3.connect(path) as connection:
        (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()
    data = bytearray(path.read_bytes())
    data[(root - 1) * 4096:root * 4096] = b"\xa5" * 4096
    path.write_bytes(bytes(data))
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_file(path: Path) -> Path:
    path.write_text("run,model,ms\n1,espcn,3.2\n")
    return path


def a_folder(path: Path) -> Path:
    path.mkdir()
    (path / "keep.txt").write_text("the user's")
    return path


# Each maker returns the --db path, and the words the one error line must hold.
NOT_A_HISTORY: dict[str, tuple[Callable[[Path], Path], str]] = {
    "another program's SQLite": (foreign_sqlite, "is not a sr-bench history (an SQLite database without"),
    "empty file": (empty_file, "is not a sr-bench history (the file is empty)"),
    "not SQLite": (text_file, "is not a sr-bench history (not an SQLite file)"),
    "a folder": (a_folder, "is a folder, not a sr-bench history"),
    "newer schema": (newer_history, "was written by a newer sr-export (history schema 2"),
    "truncated": (truncated_history, "is not a sr-bench history (SQLite said:"),
    "damaged page": (damaged_history, "is not a sr-bench history (SQLite said:"),
}


def _commands(db: Path, out: Path) -> dict[str, list[object]]:
    return {
        "run": ["--target", "cpu", *MATRIX, "--db", db, "-o", out],
        "history": ["history", "--db", db],
        "compare": ["compare", "1", "1", "--db", db],
        "gate": ["gate", "--baseline", "1", "--run", "1", "--db", db],
        "report": ["report", "--db", db, "-o", out],
    }


COMMANDS = tuple(_commands(Path(), Path()))


def snapshot(path: Path) -> object:
    """What a command must not change: the file's bytes, mtime and mode, or a folder's listing; and which
    files lie beside it (no journal, no scratch copy)."""
    siblings = sorted(p.name for p in path.parent.iterdir())
    if path.is_dir():
        return siblings, sorted((p.name, p.read_bytes()) for p in path.iterdir())
    stat = path.stat()
    return siblings, path.read_bytes(), stat.st_mtime_ns, stat.st_mode


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", NOT_A_HISTORY)
def test_a_db_that_is_not_a_history_is_refused_and_left_untouched(sr_bench, tmp_path: Path, case: str,
                                                                   command: str) -> None:
    make, expected = NOT_A_HISTORY[case]
    db = make(tmp_path / "other.sqlite")
    before = snapshot(db)
    out = tmp_path / "out"
    started = time.monotonic()
    result = sr_bench(*_commands(db, out)[command])
    assert result.code == 2
    line = result.error()
    assert str(db) in line and expected in line and "--db" in line
    assert snapshot(db) == before
    assert not out.exists()  # refused before any export or report was written
    assert time.monotonic() - started < 10  # before the expensive work, not after it


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "run"])
def test_a_missing_history_is_created_only_by_a_run(sr_bench, tmp_path: Path, command: str) -> None:
    db = tmp_path / "none" / "history.sqlite"
    result = sr_bench(*_commands(db, tmp_path / "out")[command])
    assert result.code == 2 and f"no results history at {db} yet" in result.error()
    assert not (tmp_path / "none").exists() and not (tmp_path / "out").exists()


def test_a_read_only_history_is_read_but_a_run_will_not_write_to_it(sr_bench, tmp_path: Path) -> None:
    db = a_history(tmp_path / "history.sqlite")
    db.chmod(0o444)
    before = snapshot(db)
    for command in ("history", "compare", "gate"):
        result = sr_bench(*_commands(db, tmp_path / "out")[command])
        assert result.code == 0, (command, result.err)
    assert "espcn x3" in sr_bench("history", "--db", db).out
    run = sr_bench(*_commands(db, tmp_path / "out")["run"])
    assert run.code == 2
    assert run.error() == (f"error: the results history {db} is read-only; make it writable, pass another --db, "
                           "or run with --no-history")
    assert snapshot(db) == before and not (tmp_path / "out").exists()


def test_reading_a_history_never_writes_to_it(sr_bench, tmp_path: Path) -> None:
    # Not even the schema version: an older or other tool's file must stay byte for byte as it was.
    db = a_history(tmp_path / "history.sqlite")
    before = snapshot(db)
    for command in ("history", "compare", "gate"):
        assert sr_bench(*_commands(db, tmp_path / "out")[command]).code == 0
    assert snapshot(db) == before


def test_a_new_history_is_made_whole_even_when_runs_race_to_make_it(tmp_path: Path) -> None:
    # Devices store their runs from parallel threads; the first to finish creates the file. None of
    # them may see it half made (an empty file is refused), and no run may be lost.
    from sr_export.bench.history import open_history

    db = tmp_path / "data" / "history.sqlite"
    errors: list[BaseException] = []

    def store(index: int) -> None:
        try:
            with open_history(db) as history:
                history.add(_record(target=f"device-{index}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 8
    assert sorted(p.name for p in db.parent.iterdir()) == ["history.sqlite"]  # no scratch copy left
