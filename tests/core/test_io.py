"""Files are written whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.core.io import atomic_path, write_json_atomic, write_text_atomic
from sr_export.core.provenance import record_written


def test_written_files_get_normal_permissions(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "out.txt", "x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_text("old")
    record_written(target)  # an earlier output of sr-export's, so it may be replaced
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_unwritable_destination_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SrExportError, match="cannot write"):
        write_json_atomic(tmp_path / "file" / "inside.json", {})


def test_json_handles_numpy_and_paths(tmp_path: Path) -> None:
    import numpy as np

    path = write_json_atomic(tmp_path / "r.json", {"a": np.float32(1.5), "p": Path("x"), "v": np.arange(2)})
    assert path.read_text().split() == ["{", '"a":', "1.5,", '"p":', '"x",', '"v":', "[", "0,", "1", "]", "}"]
