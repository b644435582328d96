"""Importing a runtime drops only the log lines known to be harmless; the same loggers' other lines still show
(a runtime that silenced torchao's logger for the process hid them from every later command and test)."""

from __future__ import annotations

import logging

import pytest


def test_importing_executorch_drops_only_the_harmless_torchao_lines(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("executorch", reason="executorch not installed (pip install 'sr-export[executorch]')")
    from sr_export.runtimes.executorch.lower import import_executorch

    import_executorch()
    torchao = logging.getLogger("torchao")
    assert torchao.level in (logging.NOTSET, logging.WARNING, logging.INFO, logging.DEBUG)
    with caplog.at_level(logging.WARNING):
        torchao.warning("Failed to load /site-packages/torchao/_C_mxfp8.abi3.so: Could not load this library")
        torchao.warning("a quantisation setting was ignored")
    assert [r.getMessage() for r in caplog.records] == ["a quantisation setting was ignored"]
