from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error(self) -> str:
        """The single 'error: ...' line a failing command must print."""
        lines = [line for line in self.err.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


def _invoke(main: Callable[[Sequence[str]], int], capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture
def sr_export(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    from sr_export.cli.export_cli import main

    return partial(_invoke, main, capsys)


@pytest.fixture
def sr_bench(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    from sr_export.cli.bench_cli import main

    return partial(_invoke, main, capsys)
