"""Errors a user can act on.

Anything raised as :class:`SrExportError` is printed by the command-line tools
as a single line (no traceback), so its message must say what went wrong and
what to do about it.

Code sr-export does not control (the user's model, an exporter, onnxsim, a
runtime) runs inside :func:`stage`, which turns whatever it raises into a
:class:`StageFailed` naming the pipeline stage, with the exit status of the
command-line contract: 2 when the input is at fault, 1 when a check failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class SrExportError(Exception):
    """A problem caused by the input or the environment, not by a bug."""

    exit_code = 2


class SrExportWarning(UserWarning):
    """Something a user should know that does not stop the work (a slower path taken, a partial result).

    The command-line tools print it as one ``warning: ...`` line, like their
    other warnings; code that records warnings (``pytest.warns``,
    ``warnings.catch_warnings(record=True)``) gets it as any other warning.
    """


class MissingDependencyError(SrExportError):
    """An optional backend package is not installed."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f"pip install 'sr-export[{extra}]'" if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"the Python package '{package}' is not installed{what}; install it with: {hint}")
        self.package = package
        self.extra = extra


class WriteFailed(SrExportError):
    """A file could not be written (disk full, file size limit, permissions); names the file."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


class RuntimeUnavailable(SrExportError):
    """The artifact was prepared, but its runtime (or the device it needs) is not on this machine.

    Exit status 4: nothing failed, the remaining step has to run elsewhere.
    """

    exit_code = 4


class CheckFailed(SrExportError):
    """A check ran and the artifact failed it (exit status 1, not 2)."""

    exit_code = 1


# Which party is at fault when foreign code raises in a stage: loading the
# model or running it is the user's input (2); producing or proving an
# artifact is a failed check (1).
STAGE_EXIT_CODES: dict[str, int] = {
    "load": 2,
    "forward": 2,
    "export": 1,
    "simplify": 1,
    "convert": 1,
    "calibrate": 1,
    "quantize": 1,
    "check": 1,
}


class StageFailed(SrExportError):
    """Foreign code raised during one stage of the pipeline."""

    def __init__(self, stage: str, message: str, exit_code: int | None = None) -> None:
        super().__init__(f"{stage} failed: {message}")
        self.stage = stage
        self.exit_code = exit_code if exit_code is not None else STAGE_EXIT_CODES.get(stage, 1)


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, the part of a foreign exception worth showing."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


@contextlib.contextmanager
def stage(name: str, doing: str = "", hint: str = "", *, exit_code: int | None = None) -> Iterator[None]:
    """Run foreign code as pipeline stage ``name``; anything it raises becomes one line.

    ``doing`` says what was being done ("tracing with the dynamo exporter"),
    ``hint`` what the user can try. Errors sr-export raised itself pass through.
    """
    try:
        yield
    except SrExportError:
        raise
    except Exception as exc:  # foreign code: any exception type is possible
        parts = [p for p in (doing, first_line(exc)) if p]
        message = ": ".join(parts)
        if hint:
            message += f"; {hint}"
        raise StageFailed(name, message, exit_code) from exc


def runtime_error_line(exc: BaseException) -> str:
    """ONNX Runtime's failure reduced to the node and the reason (its messages embed C++ source paths)."""
    import re

    text = str(exc)
    if "Status Message:" not in text:
        return first_line(exc)
    message = text.split("Status Message:", 1)[1].strip()
    if " was false. " in message:  # "<file>:<line> <function> <condition> was false. <reason>"
        message = message.split(" was false. ", 1)[1]
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    where = f"{node.group(1)} node '{node.group(2)}': " if node else ""
    return where + " ".join(message.split())
