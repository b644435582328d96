"""Keeping litert-torch's and LiteRT's chatter off the user's terminal."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_litert() -> Iterator[None]:
    """Keep litert-torch's and LiteRT's chatter (progress lines, C++ logs, library warnings) off the terminal.

    Their C++ parts write to file descriptors 1 and 2 directly, so those are
    pointed at a scratch file for the duration; failures still arrive as exceptions.
    """
    saved_env = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    logging.disable(logging.WARNING)
                    try:
                        yield
                    finally:
                        logging.disable(logging.NOTSET)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved_fds[0], 1)
                os.dup2(saved_fds[1], 2)
    finally:
        for fd in saved_fds:
            os.close(fd)
        if saved_env is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = saved_env
