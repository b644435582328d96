"""Lines that importing torch's ecosystem (torchao, through coremltools and executorch) logs on every run and
that say nothing about the user's model, dropped at their loggers; every other line those loggers log passes."""

from __future__ import annotations

import logging
import re


class DropLogLines(logging.Filter):
    """Drops a logger's records whose message matches one of ``patterns``; every other record passes."""

    def __init__(self, *patterns: str) -> None:
        super().__init__()
        self.patterns = tuple(re.compile(p) for p in patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.search(message) for p in self.patterns)


# What importing coremltools or executorch logs on every run that says nothing about the user's model, by
# logger: they import torchao, which logs a warning for each of its CUDA kernel libraries it cannot load (the CPU-only torch here;
# neither calls them), and registers an enum with torch's pytree, which torch now logs as deprecated.
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
