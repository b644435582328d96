"""coremltools without its progress bars, version warnings and log lines."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from sr_export.core.errors import MissingDependencyError


class DropLogLines(logging.Filter):
    """Drops a logger's records whose message matches one of ``patterns``; every other record passes."""

    def __init__(self, *patterns: str) -> None:
        super().__init__()
        self.patterns = tuple(re.compile(p) for p in patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in self.patterns)


# What importing coremltools logs on every run that says nothing about the user's model, by logger: it imports
# torchao, which logs a warning for each of its CUDA kernel libraries it cannot load (the CPU-only torch here;
# Core ML never calls them), and registers an enum with torch's pytree, which torch now logs as deprecated.
HARMLESS_IMPORT_LOGS = {
    "torchao": DropLogLines(r"^Failed to load \S*torchao\S*\.so: "),
    "torch.utils._pytree": DropLogLines(r"is an Enum subclass and is now natively supported by torch\.compile"),
}


def drop_harmless_import_logs() -> None:
    """Install :data:`HARMLESS_IMPORT_LOGS` (once): each logger keeps every other line it logs."""
    for name, drop in HARMLESS_IMPORT_LOGS.items():
        log = logging.getLogger(name)
        if drop not in log.filters:
            log.addFilter(drop)


def import_coremltools() -> Any:
    """coremltools, without the warnings it and the libraries it imports log on every non-Mac import."""
    drop_harmless_import_logs()
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("coremltools", "coreml", purpose="the coreml target") from exc
    finally:
        log.setLevel(level)
    return coremltools


class _WithoutProgressBars(io.TextIOBase):
    """stderr minus coremltools' tqdm bars (drawn for every pass; sr-export shows its own progress)."""

    MARKERS = ("MIL Ops:", "pipeline:", "passes/s", " ops/s")

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text == "\n" or any(marker in text for marker in self.MARKERS):
            return len(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


@contextlib.contextmanager
def quiet_converter() -> Iterator[None]:
    """Run coremltools without its progress bars, version warnings and log lines."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(_WithoutProgressBars(sys.stderr)):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)
