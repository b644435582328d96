"""Official weights: local folder, cache, download, checksum."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sr_export.core.cache import weights_cache_dir as cache_dir
from sr_export.core.errors import SrExportError
from sr_export.models.registry import get_spec
from sr_export.models.weights import resolve_official


@pytest.fixture
def imdn_x2(weights_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The official imdn x2 entry, pointed at a file:// URL so the download path runs offline."""
    monkeypatch.setenv("SR_EXPORT_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SR_EXPORT_CACHE", str(tmp_path / "cache"))
    official = get_spec("imdn").official_for(2)
    return replace(official, url=(weights_dir / "imdn_x2.pth").resolve().as_uri())


def test_download_lands_in_the_cache_verified(imdn_x2) -> None:
    path = resolve_official(imdn_x2)
    assert path == cache_dir() / "imdn_x2.pth"
    assert resolve_official(imdn_x2, download=False) == path  # second time: from the cache


def test_download_with_a_wrong_checksum_leaves_nothing_behind(imdn_x2) -> None:
    bad = replace(imdn_x2, sha256="0" * 64)
    with pytest.raises(SrExportError, match="is not the official imdn x2 checkpoint"):
        resolve_official(bad)
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []


def test_unreachable_source_says_how_to_fix_it(imdn_x2, tmp_path: Path) -> None:
    missing = replace(imdn_x2, url=(tmp_path / "nowhere.pth").as_uri())
    with pytest.raises(SrExportError, match=r"could not download .* by hand into \$SR_EXPORT_WEIGHTS_DIR"):
        resolve_official(missing)


def test_no_download_allowed(imdn_x2) -> None:
    with pytest.raises(SrExportError, match="not found locally"):
        resolve_official(imdn_x2, download=False)
