"""The wheel carries the declarative files the tool reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
    )
    (path,) = out.glob("sr_export-*.whl")
    return path


def test_wheel_ships_profiles_suites_and_recipes(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sr_export/_bundled/targets/cpu.toml" in names
    assert "sr_export/_bundled/benchmarks/suites/default.toml" in names
    assert "sr_export/_bundled/calibration/README.md" in names
    for source in (REPO / "targets").glob("*.toml"):
        assert f"sr_export/_bundled/targets/{source.name}" in names


def test_wheel_declares_both_commands(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    text = archive.read(entry_points).decode()
    assert "sr-export = sr_export.cli.export_cli:main" in text
    assert "sr-bench = sr_export.cli.bench_cli:main" in text


def test_installed_wheel_finds_its_bundled_profiles(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from sr_export.core.resources import resource_dir;"
        "from sr_export.targets.profiles import load_profile;"
        "print(resource_dir('targets')); print(load_profile('cpu').backend)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, check=True,
                         cwd=tmp_path).stdout.split()
    assert out[0].startswith(str(target))
    assert out[1] == "onnxruntime"

