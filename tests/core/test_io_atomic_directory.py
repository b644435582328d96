"""Folder artifacts (.mlpackage) are written like files: all or nothing, old copy kept until the new one is in place."""

from __future__ import annotations

import pytest

from sr_export.core.errors import SrExportError
from sr_export.core.io import atomic_directory
from sr_export.core.provenance import record_written


def test_a_finished_folder_replaces_the_old_one(tmp_path) -> None:
    target = tmp_path / "model.mlpackage"
    target.mkdir()
    (target / "old.bin").write_text("old")
    record_written(target)  # an earlier output of sr-export's, so it may be replaced
    with atomic_directory(target) as tmp:
        assert tmp.suffix == ".mlpackage" and not tmp.exists()
        tmp.mkdir()
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.mlpackage"]


def test_a_failure_leaves_the_old_folder_and_no_debris(tmp_path) -> None:
    target = tmp_path / "model.mlpackage"
    target.mkdir()
    (target / "old.bin").write_text("old")
    record_written(target)  # an earlier output of sr-export's, so it may be replaced
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        tmp.mkdir()
        (tmp / "half.bin").write_text("half")
        raise RuntimeError("converter crashed")
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.mlpackage"]


def test_nothing_written_is_an_error_and_a_file_in_the_way_is_refused(tmp_path) -> None:
    with pytest.raises(SrExportError, match="nothing was written"), atomic_directory(tmp_path / "a.mlpackage"):
        pass
    (tmp_path / "b.mlpackage").write_text("a file")
    with pytest.raises(SrExportError, match="in the way"), atomic_directory(tmp_path / "b.mlpackage"):
        pass
