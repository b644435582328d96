"""Bad input for remote devices and the results history: devices that cannot be reached or drop out
mid-run, and ``--db`` files that are not sr-bench's history.

Refusals are one ``error:`` line with exit 2, come before any work, and leave nothing behind: no output
folder, no history file, and the ``--db`` file the user gave exactly as it was (bytes and mtime). The
devices are real sshd instances on 127.0.0.1 (tests/sshd_server.py), nothing mocked.
"""

from __future__ import annotations

import datetime
import getpass
import json
import shutil
import sqlite3
import sys
import tempfile
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


# --- devices that cannot be reached or drop out ----------------------------------------------------------


def _needs_ssh() -> None:
    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client is not installed (install openssh-client)")


def closed_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, never listening: connecting is refused at once
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_profile(folder: Path, name: str, *, port: int, key: Path | None = None, known_hosts: Path | None = None,
                   runs: int = 20, timeout_s: int = 120) -> Path:
    """A profile that reaches its device by address and port (not an ssh alias), with its own key."""
    device = folder / f"device-{name}"
    device.mkdir(parents=True, exist_ok=True)
    client = folder / f"{name}.ssh_config"
    client.write_text(f"Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile {known_hosts or '/dev/null'}\n"
                      "  LogLevel ERROR\n")
    lines = [f'name = "{name}"', 'backend = "onnxruntime"', "[runtime]", "threads = 1",
             "[bench]", 'input_sizes = ["16x16"]', "warmup = 1", f"runs = {runs}", f"timeout_s = {timeout_s}",
             "[device]", 'kind = "ssh"', 'host = "127.0.0.1"', f"port = {port}",
             f"user = {json.dumps(getpass.getuser())}", f"ssh_config = {json.dumps(str(client))}",
             f"workdir = {json.dumps(str(device))}", f"python = {json.dumps(sys.executable)}", "connect_timeout_s = 5"]
    if key is not None:
        lines.append(f"key = {json.dumps(str(key))}")
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def server_profile(folder: Path, name: str, server, **kwargs: object) -> Path:
    return device_profile(folder, name, port=server.port, key=server.key,
                          known_hosts=server.folder / "known_hosts", **kwargs)


def test_an_unreachable_device_leaves_no_output_folder_and_no_history(
    sr_bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs_ssh()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where the default history would go
    profile = device_profile(tmp_path, "gone", port=closed_port())
    result = sr_bench("--target", profile, *MATRIX)  # default output folder and default history
    assert result.code == 2
    line = result.error()
    assert "target 'gone': reaching the device on" in line and "ssh could not connect" in line
    assert list(work.iterdir()) == []  # no ./sr-bench-out
    assert not (tmp_path / "data").exists()  # no history, not even its folder


def test_every_unreachable_device_is_named_on_its_own_line(sr_bench, tmp_path: Path) -> None:
    _needs_ssh()
    first = device_profile(tmp_path, "first", port=closed_port())
    second = device_profile(tmp_path, "second", port=closed_port())
    out, db = tmp_path / "out", tmp_path / "h.sqlite"
    result = sr_bench("--targets", f"{first},{second}", *MATRIX, "--db", db, "-o", out)
    assert result.code == 2
    lost = [line for line in result.err.splitlines() if line.startswith("device lost: ")]
    assert len(lost) == 1 and "target 'first': reaching the device" in lost[0]
    assert "target 'second': reaching the device" in result.error()
    assert not out.exists() and not db.exists()


def test_two_devices_are_timed_in_parallel(sr_bench, ssh_server, second_ssh_server, tmp_path: Path) -> None:
    # Both devices live on 127.0.0.1 and differ only in port and key: still two devices.
    first = server_profile(tmp_path, "first", ssh_server)
    second = server_profile(tmp_path, "second", second_ssh_server)
    db = tmp_path / "history.sqlite"
    result = sr_bench("--targets", f"{first},{second}", *MATRIX, "--db", db, "-o", tmp_path / "out")
    assert result.code == 0, result.err
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT target, conditions FROM runs ORDER BY target").fetchall()
    assert [target for target, _ in rows] == ["first", "second"]
    spans = {}
    for target, conditions in rows:
        run = json.loads(conditions)["device_run"]
        spans[target] = (datetime.datetime.fromisoformat(run["started"]),
                         datetime.datetime.fromisoformat(run["finished"]))
    assert max(start for start, _ in spans.values()) < min(end for _, end in spans.values()), spans


def test_a_device_dropped_mid_run_loses_only_its_own_runs(
    sr_bench, ssh_server, doomed_ssh_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where sr-bench's local scratch folders go
    steady = server_profile(tmp_path, "steady", ssh_server)
    doomed = server_profile(tmp_path, "doomed", doomed_ssh_server, runs=1_000_000, timeout_s=120)
    doomed_device = tmp_path / "device-doomed"

    def kill_once_timing() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(doomed_device.glob("run-*/espcn*.onnx")):
                time.sleep(1.5)  # the runner has started timing
                doomed_ssh_server.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_timing)
    killer.start()
    db, out = tmp_path / "history.sqlite", tmp_path / "out"
    result = sr_bench("--targets", f"{steady},{doomed}", *MATRIX, "--db", db, "-o", out)
    killer.join()
    assert result.code == 2
    line = result.error()
    assert f"device {getpass.getuser()}@127.0.0.1:{doomed_ssh_server.port} (target 'doomed') dropped out" in line
    assert "lost the connection" in line and "1 run(s) on it not stored" in line
    assert "steady" in result.out  # the other device's table is still shown
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT target FROM runs").fetchall() == [("steady",)]
        (steady_run,) = connection.execute("SELECT id FROM runs").fetchone()
    # Named by the history run number; the device that dropped out leaves no results file.
    assert (out / f"matrix-steady-{steady_run}.json").is_file() and not list(out.glob("matrix-doomed*.json"))
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no scratch file
    assert not list(scratch.glob("sr-bench-*"))  # every local job folder was removed
    assert not list((tmp_path / "device-steady").iterdir())  # the steady device was cleaned up too
