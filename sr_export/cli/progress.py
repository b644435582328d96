"""Progress that reaches a log: rich's spinner and bars on a terminal, timed lines anywhere else.

rich draws nothing when stderr is not a terminal (CI, ``| tee``), so a long
export or benchmark looked hung there. Every CLI gets its status and progress
objects from :func:`console` and :func:`progress_bar` (through
``sr_export.cli.common``); off a terminal they print a line when a stage starts,
a "still working" line every ``SR_EXPORT_PROGRESS_INTERVAL`` seconds (default
10) while it runs, and one with its time when it ends. The API is the subset
of rich's ``Status`` and ``Progress`` the commands use.

This module imports rich; ``sr_export.cli.common`` imports it only when a
console is made, so ``--help`` stays instant.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console

from sr_export.core.errors import SrExportError

INTERVAL_ENV = "SR_EXPORT_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0


def interval_s() -> float:
    """Seconds between "still working" lines: ``SR_EXPORT_PROGRESS_INTERVAL``, else 10."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise SrExportError(f"{INTERVAL_ENV} must be a number of seconds > 0, got {text!r}")
    return value


def stage_key(text: str) -> str:
    """``text`` without its numbers: "copying a 1.2/3.4 MB" and "exporting: 12 s" stay one stage while their
    figures change (they are updated every second), so only a new stage prints a line at once."""
    return re.sub(r"\d+(?:\.\d+)?", "#", text)


class LineOut:
    """Whole lines to ``stream``. Where it has a file descriptor, they go to a duplicate of it taken now: the
    LiteRT and Core ML converters point descriptor 2 at a scratch file while they run (their C++ logs), and
    the lines that say they are still running must not end up there."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        try:
            self.fd: int | None = os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError):  # a StringIO, pytest's capture: write to it as it is
            self.fd = None

    def line(self, text: str) -> None:
        # Progress must never break the work it reports on (a closed pipe, a full disk): such a line is lost.
        with self.lock:
            try:
                if self.fd is None:
                    self.stream.write(text + "\n")
                    self.stream.flush()
                    return
                self.stream.flush()  # what the command printed before comes first
                data = (text + "\n").encode(getattr(self.stream, "encoding", None) or "utf-8", errors="replace")
                while data:
                    data = data[os.write(self.fd, data):]
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        with self.lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class Ticker:
    """Calls ``tick`` every ``interval`` seconds on a daemon thread until :meth:`stop` (which waits for it)."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self.interval, self.tick = interval, tick
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sr-export progress", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.tick()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


class LineStatus:
    """``console.status(...)`` off a terminal: the stage as a line, "still working" lines while it runs, and
    its time at the end. Stages (``update``) print at once when they are new, not when only a number in them
    changed."""

    def __init__(self, stream: TextIO, text: str, interval: float) -> None:
        self.stream, self.label, self.interval = stream, text, interval
        self.text, self.key = text, stage_key(text)
        self.lock = threading.Lock()
        self.out: LineOut | None = None
        self.ticker: Ticker | None = None
        self.started = self.stage_started = time.monotonic()

    def start(self) -> None:
        self.out = LineOut(self.stream)
        self.started = self.stage_started = time.monotonic()
        self.out.line(self.text)
        self.ticker = Ticker(self.interval, self._tick)
        self.ticker.start()

    def update(self, status: Any = None, **_: Any) -> None:
        if status is None:
            return
        text = str(status)
        with self.lock:
            new = stage_key(text) != self.key
            self.text, self.key = text, stage_key(text)
            if new:
                self.stage_started = time.monotonic()
        if new and self.out is not None:
            self.out.line(f"{text} ({_seconds(time.monotonic() - self.started)} so far)")

    def _tick(self) -> None:
        with self.lock:
            text, stage = self.text, time.monotonic() - self.stage_started
        # A stage that began within the last half interval has just printed its own line.
        if self.out is not None and stage >= self.interval / 2:
            self.out.line(f"{text}: still working, {_seconds(stage)}")

    def stop(self, failed: bool = False) -> None:
        if self.ticker is not None:
            self.ticker.stop()
            self.ticker = None
        if self.out is not None:
            ended = "stopped after" if failed else "done in"
            self.out.line(f"{self.label}: {ended} {_seconds(time.monotonic() - self.started)}")
            self.out.close()
            self.out = None

    def __enter__(self) -> LineStatus:
        self.start()
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.stop(failed=kind is not None)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0
    started: float = field(default_factory=time.monotonic)

    def count(self) -> str:
        done = f"{self.completed:g}"
        return f"{done}/{self.total:g}" if self.total is not None else done


class LineProgress:
    """``progress_bar(console)`` off a terminal: each task as a line when it starts, its count every interval
    while it runs, and its count and time when the block ends. Safe to use from several threads (sr-bench
    times devices in parallel)."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        self.stream, self.interval = stream, interval
        self.tasks: list[_Task] = []
        self.lock = threading.Lock()
        self.out: LineOut | None = None
        self.ticker: Ticker | None = None

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        with self.lock:
            self.tasks.append(_Task(description, total))
            task_id = len(self.tasks) - 1
        if self.out is not None:
            self.out.line(description if total is None else f"{description} (0/{total:g})")
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        with self.lock:
            self.tasks[task_id].completed += advance

    def update(self, task_id: int, *, description: str | None = None, total: float | None = None,
               completed: float | None = None, advance: float | None = None, **_: Any) -> None:
        with self.lock:
            task = self.tasks[task_id]
            new = description is not None and stage_key(description) != stage_key(task.description)
            if description is not None:
                task.description = description
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            line = f"{task.description} ({task.count()}, {_seconds(time.monotonic() - task.started)})"
        if new and self.out is not None:
            self.out.line(line)

    def _running(self) -> list[_Task]:
        return [t for t in self.tasks if t.total is None or t.completed < t.total]

    def _tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            lines = [f"{t.description}: still working, {t.count()} in {_seconds(now - t.started)}"
                     for t in self._running()]
        if self.out is not None:
            for line in lines:
                self.out.line(line)

    def __enter__(self) -> LineProgress:
        self.out = LineOut(self.stream)
        self.ticker = Ticker(self.interval, self._tick)
        self.ticker.start()
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if self.ticker is not None:
            self.ticker.stop()
            self.ticker = None
        if self.out is None:
            return
        now = time.monotonic()
        ended = "stopped after" if kind is not None else "done in"
        with self.lock:
            lines = [f"{t.description}: {t.count()}, {ended} {_seconds(now - t.started)}" for t in self.tasks]
        for line in lines:
            self.out.line(line)
        self.out.close()
        self.out = None


class LoggingConsole(Console):
    """A rich console whose ``status`` prints timed lines when its output is not a terminal."""

    def status(self, status: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.is_terminal:
            return super().status(status, **kwargs)
        return LineStatus(self.file, str(status), interval_s())


def progress_bar(console: Console) -> Any:
    """rich's transient progress bar on a terminal; :class:`LineProgress` elsewhere."""
    if not console.is_terminal:
        return LineProgress(console.file, interval_s())
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )
