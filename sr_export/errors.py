"""Errors a user can act on.

Anything raised as :class:`SrExportError` is printed by the command-line tools
as a single line (no traceback), so its message must say what went wrong and
what to do about it.
"""

from __future__ import annotations


class SrExportError(Exception):
    """A problem caused by the input or the environment, not by a bug."""


class MissingDependencyError(SrExportError):
    """An optional backend package is not installed."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f"pip install 'sr-export[{extra}]'" if extra else f"pip install {package}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"the Python package '{package}' is not installed{what}; install it with: {hint}")
        self.package = package
        self.extra = extra


class CheckFailed(SrExportError):
    """A check ran and the artifact failed it (exit status 1, not 2)."""

    exit_code = 1
