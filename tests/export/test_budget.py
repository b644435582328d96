"""Work in a child process with a time budget: its result comes back, a stall is stopped on time, a crash or an
exception is one line, and progress is said while it works. Every child here is a real forked process."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from sr_export.export.budget import BudgetSpent, ChildFailed, can_fork, run_within

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork on this platform: work runs unbounded in-process")


def explain(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def test_the_childs_bytes_come_back_and_it_ran_in_another_process() -> None:
    data = run_within(lambda: str(os.getpid()).encode(), seconds=30, label="working", explain=explain)
    assert int(data) != os.getpid()


def test_a_large_result_comes_back_whole() -> None:
    payload = os.urandom(24 << 20)  # larger than any pipe buffer
    assert run_within(lambda: payload, seconds=60, label="working", explain=explain) == payload


def test_a_stalled_child_is_stopped_when_its_budget_is_spent_and_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"

    def stall() -> bytes:
        pid_file.write_text(str(os.getpid()))
        time.sleep(600)
        return b""

    started = time.monotonic()
    with pytest.raises(BudgetSpent, match="stopped after 2 s"):
        run_within(stall, seconds=2, label="working", explain=explain)
    assert time.monotonic() - started < 2 + 5
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped: no such process


def test_progress_says_what_works_and_for_how_long() -> None:
    heard: list[str] = []
    run_within(lambda: time.sleep(2.5) or b"done", seconds=30, label="exporting with dynamo", explain=explain,
               say=heard.append)
    ticks = [re.fullmatch(r"exporting with dynamo: (\d+) s \(of at most 30 s\)", line) for line in heard]
    assert all(ticks) and len(ticks) >= 2, heard  # one a second (a loaded machine may skip one)
    seconds = [int(tick.group(1)) for tick in ticks]
    assert seconds == sorted(seconds) and seconds[0] >= 1, heard


def test_an_exception_in_the_child_is_its_one_line() -> None:
    def fail() -> bytes:
        raise ValueError("the model turns sizes into Python numbers")

    with pytest.raises(ChildFailed, match="^ValueError: the model turns sizes into Python numbers$"):
        run_within(fail, seconds=30, label="working", explain=explain)


def test_a_child_killed_by_a_signal_says_so() -> None:
    def die() -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return b""

    with pytest.raises(ChildFailed, match=r"killed by SIGKILL \(out of memory\?\)"):
        run_within(die, seconds=30, label="working", explain=explain)


def test_a_child_that_exits_without_a_result_says_so() -> None:
    with pytest.raises(ChildFailed, match=r"ended \(exit status 7\) without a result"):
        run_within(lambda: os._exit(7), seconds=30, label="working", explain=explain)


def test_setup_runs_in_the_child_only(tmp_path: Path) -> None:
    marker = tmp_path / "setup"
    data = run_within(lambda: marker.read_bytes(), seconds=30, label="working", explain=explain,
                      child_setup=lambda: marker.write_text(str(os.getpid())))
    assert int(data) != os.getpid()


def test_no_budget_runs_here_unbounded() -> None:
    assert run_within(lambda: str(os.getpid()).encode(), seconds=None, label="working", explain=explain) == \
        str(os.getpid()).encode()
    with pytest.raises(ChildFailed, match="^KeyError: 'x'$"):
        run_within(lambda: {}["x"], seconds=None, label="working", explain=explain)
