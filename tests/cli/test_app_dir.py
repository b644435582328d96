"""``--model package.module:Class``: imported from the current folder, as ``python -m`` does, or from --app-dir.

Every test writes its own package under a name no other test uses: Python keeps imported modules in
``sys.modules``, so a shared name would let one test pass on another's import.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sr_export import api
from sr_export.core.errors import SrExportError

ARCHS = '''
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, scale: int = 2, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, width, 3, padding=1)
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.tail(self.body(x).relu()))
'''


@pytest.fixture
def package(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``<tmp>/app/<unique name>/archs.py`` defining TinyNet: the folder and the package name."""
    name = f"userpkg_{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "app"
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "archs.py").write_text(ARCHS)
    yield folder, name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def _exported(result, out: Path) -> dict:
    assert result.code == 0, result.err
    assert out.is_file()
    return json.loads(result.out)


def test_a_package_in_the_current_folder_is_importable_without_pythonpath(
    package: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sr_export
) -> None:
    folder, name = package
    monkeypatch.chdir(folder)
    out = tmp_path / "tiny.onnx"
    report = _exported(sr_export("onnx", "--model", f"{name}.archs:TinyNet", "-o", out, "--json", "-"), out)
    assert report["metadata"]["scale"] == 2
    assert str(folder) not in sys.path


def test_app_dir_imports_the_package_from_another_folder(
    package: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sr_export
) -> None:
    folder, name = package
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "tiny.onnx"
    report = _exported(sr_export("onnx", "--model", f"{name}.archs:TinyNet", "--app-dir", folder,
                                 "--model-kwargs", '{"width": 4}', "-o", out, "--json", "-"), out)
    assert report["metadata"]["request"]["app_dir"] == str(folder.resolve())
    assert str(folder) not in sys.path  # on sys.path for the import only
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]  # the check below must import it afresh, from the folder the metadata names
    checked = sr_export("check", out)
    assert checked.code == 0, checked.err


def test_the_folder_is_on_sys_path_only_while_importing(package: tuple[Path, str]) -> None:
    folder, name = package
    before = list(sys.path)
    model = api.load_model(f"{name}.archs:TinyNet", app_dir=folder, scale=3)
    assert model.info.scale == 3
    assert sys.path == before


def test_without_app_dir_a_package_elsewhere_is_not_found_with_the_one_line_error(
    package: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sr_export
) -> None:
    _, name = package
    monkeypatch.chdir(tmp_path)  # the package is in tmp_path/app, not here
    result = sr_export("onnx", "--model", f"{name}.archs:TinyNet", "-o", tmp_path / "tiny.onnx")
    assert result.code == 2
    assert f"cannot import module '{name}.archs'" in result.error()
    assert not (tmp_path / "tiny.onnx").exists()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_bad_app_dir_is_one_error_line(kind: str, tmp_path: Path, sr_export) -> None:
    app_dir = tmp_path / "nowhere"
    if kind == "file":
        app_dir.write_text("")
    result = sr_export("onnx", "--model", "somepkg.archs:TinyNet", "--app-dir", app_dir, "-o", tmp_path / "x.onnx")
    assert result.code == 2
    line = result.error()
    assert "--app-dir" in line and ("not found" if kind == "missing" else "not a folder") in line


def test_the_python_api_refuses_a_bad_app_dir(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="not found"):
        api.load_model("somepkg.archs:TinyNet", app_dir=tmp_path / "nowhere")
