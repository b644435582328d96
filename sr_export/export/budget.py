"""Work that may stall, run in a child process with a time budget.

torch.export can spend many minutes in its symbolic shape solver (sympy
simplifying the floor divisions of a model's window arithmetic), printing
nothing, and Python cannot interrupt it from another thread. A forked child
can be stopped: the parent waits for it, says every second what is working
and for how long, and kills it when the budget is spent. The child shares the
parent's loaded model (fork copies it) and sends back bytes.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

Say = Callable[[str], Any]
TICK_S = 1.0  # how often progress is said while the child works
# Seconds each exporter attempt may take. Real SR models export in well under a minute on a laptop CPU;
# an attempt past this is stuck (torch.export's shape solver), and auto moves on to the next exporter.
DEFAULT_EXPORT_TIMEOUT_S = 300.0
MAX_EXPORT_TIMEOUT_S = 86_400.0


class BudgetSpent(Exception):
    """The child was stopped because it ran past its budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:g} s")
        self.seconds = seconds


class ChildFailed(Exception):
    """The work raised (``reason``: the child's one line for it), or the child died."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def can_fork() -> bool:
    """Whether work can run in a forked child here (Linux, macOS; not Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def run_within(
    work: Callable[[], bytes],
    *,
    seconds: float | None,
    label: str,
    explain: Callable[[BaseException], str],
    say: Say | None = None,
    child_setup: Callable[[], None] | None = None,
) -> bytes:
    """``work()``'s bytes, computed in a forked child that is killed after ``seconds``.

    Raises :class:`BudgetSpent` on expiry and :class:`ChildFailed` when the
    work raises (with ``explain(exc)``, computed in the child) or the child
    dies. ``label`` says what works ("exporting with dynamo"); ``say`` hears
    it with the time so far, every second. With no budget, or where fork is
    not available, the work runs here, unbounded.
    """
    if seconds is None or not can_fork():
        try:
            return work()
        except Exception as exc:  # noqa: BLE001 - the caller gets one line, as from the child
            raise ChildFailed(explain(exc)) from exc
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(work, explain, child_setup, sender), name=label)
    started = time.monotonic()
    with warnings.catch_warnings():
        # JAX (loaded with the TFLite tools) warns on every fork that its threads could deadlock the child;
        # the child only runs ``work`` and never calls into JAX.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        child.start()
    sender.close()  # the child holds the only writing end: its death reads as end of file
    try:
        while not receiver.poll(TICK_S):
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                raise BudgetSpent(seconds)
            if say is not None:
                say(f"{label}: {elapsed:.0f} s (of at most {seconds:g} s)")
        try:
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            raise ChildFailed(_death(child.exitcode)) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if kind == "ok":
        return payload
    raise ChildFailed(payload)


def _child(work: Callable[[], bytes], explain: Callable[[BaseException], str],
           child_setup: Callable[[], None] | None, sender: Any) -> None:
    try:
        if child_setup is not None:
            child_setup()
        message = ("ok", work())
    except BaseException as exc:  # noqa: BLE001 - whatever happens is reported to the parent as one line
        message = ("error", explain(exc))
    try:
        sender.send(message)
    finally:
        sender.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"the process working on it was killed by {name}{hint}"
    return f"the process working on it ended (exit status {exitcode}) without a result"
