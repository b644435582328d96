"""coremltools without its progress bars, version warnings and log lines."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from sr_export.core.errors import MissingDependencyError
from sr_export.runtimes.import_logs import drop_harmless_import_logs


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
