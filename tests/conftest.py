"""Shared fixtures: the read-only material in ../shared and models built once per session.

../shared (official checkpoints, Set5, reference numbers) is always present in
CI, so tests that need it fail, not skip, when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

# The real sshd behind the remote-device tests (ssh_server, doomed_ssh_server).
pytest_plugins = ["sshd_server", "side_envs"]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_EXPORT_SHARED", REPO.parent / "shared")).resolve()


def pytest_configure(config: pytest.Config) -> None:
    # Official weights resolve from ../shared, never from the network.
    os.environ.setdefault("SR_EXPORT_WEIGHTS_DIR", str(SHARED / "weights"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "weights").is_dir():
        pytest.fail(f"shared material not found at {SHARED}; set SR_EXPORT_SHARED to the folder with weights/ and datasets/")
    return SHARED


@pytest.fixture(scope="session")
def weights_dir(shared: Path) -> Path:
    return shared / "weights"


@pytest.fixture(scope="session")
def set5(shared: Path) -> Path:
    return shared / "datasets" / "Set5"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing a test does may write into the user's ~/.cache or results history.
    monkeypatch.setenv("SR_EXPORT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "data"))
    monkeypatch.delenv("SR_EXPORT_HISTORY", raising=False)


@pytest.fixture(scope="session")
def official_model(shared: Path):
    """Load an official zoo model once per session: official_model('imdn', 2)."""
    from sr_export.models.loader import ModelRequest, load_model

    cache: dict[tuple[str, int], object] = {}

    def get(name: str, scale: int):
        if (name, scale) not in cache:
            cache[(name, scale)] = load_model(ModelRequest(name, scale=scale, weights="official"))
        return cache[(name, scale)]

    return get


@pytest.fixture(scope="session")
def exported_official(official_model, tmp_path_factory: pytest.TempPathFactory):
    """Export an official model to ONNX once per session; returns the Artifact."""
    import onnx

    from sr_export.core.artifacts import Artifact
    from sr_export.export.onnx import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    cache: dict[tuple[str, int], Artifact] = {}

    def get(name: str, scale: int) -> Artifact:
        if (name, scale) not in cache:
            exported = export_onnx(official_model(name, scale))
            path = folder / f"{name}_x{scale}.onnx"
            onnx.save(exported.proto, str(path))
            cache[(name, scale)] = Artifact(path, exported.metadata)
        return cache[(name, scale)]

    return get


# The command-line tools run in-process, their output captured: sr_export('onnx', ...), sr_bench(...).
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
