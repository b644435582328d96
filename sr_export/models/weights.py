"""Resolving ``--weights official`` to a verified local file.

Lookup order: a local folder of already-downloaded checkpoints
(``$SR_EXPORT_WEIGHTS_DIR``), then the cache (``$SR_EXPORT_CACHE``, default
``~/.cache/sr-export``), then a download from the authors' URL into the cache.
Every file is checked against its published sha256 before use, and so are
the companion files some checkpoints need beside them (the deploy prototxt of
a Caffe model), which are fetched into the cache with them.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from sr_export.core.cache import weights_cache_dir
from sr_export.core.errors import SrExportError
from sr_export.core.io import atomic_path
from sr_export.models.checkpoints import sha256_of
from sr_export.models.registry import OfficialWeights

WEIGHTS_DIR_ENV = "SR_EXPORT_WEIGHTS_DIR"


def search_dirs() -> list[Path]:
    dirs = []
    if local := os.environ.get(WEIGHTS_DIR_ENV):
        dirs.append(Path(local))
    dirs.append(weights_cache_dir())
    return dirs


def resolve_official(weights: OfficialWeights, *, download: bool = True) -> Path:
    for folder in search_dirs():
        for name in weights.accepted_names():
            candidate = folder / name
            if candidate.is_file():
                _verify(candidate, weights)
                _companions_beside(candidate, weights, download=download and folder == weights_cache_dir())
                return candidate
    if not download:
        raise SrExportError(
            f"official {weights.model} x{weights.scale} checkpoint not found locally; "
            f"put {weights.filename} in ${WEIGHTS_DIR_ENV} or allow the download from {weights.url}"
        )
    target = _download(weights.url, weights_cache_dir() / weights.filename, weights.sha256, weights)
    _companions_beside(target, weights, download=True)
    return target


def _companions_beside(checkpoint: Path, weights: OfficialWeights, *, download: bool) -> None:
    for companion in weights.companions:
        path = checkpoint.parent / companion.filename
        if path.is_file():
            _verify(path, weights, sha256=companion.sha256, what=f"{companion.filename} of the")
        elif download:
            _download(companion.url, path, companion.sha256, weights, what=f"{companion.filename} of the")
        else:
            raise SrExportError(
                f"{checkpoint} needs {companion.filename} beside it; put it there (from {companion.url})"
            )


def _verify(path: Path, weights: OfficialWeights, shown_as: str | None = None, *,
            sha256: str | None = None, what: str = "the") -> None:
    expected = sha256 or weights.sha256
    actual = sha256_of(path)
    if actual != expected:
        raise SrExportError(
            f"{shown_as or path} is not {what} official {weights.model} x{weights.scale} checkpoint "
            f"(sha256 {actual[:12]}... != {expected[:12]}...); delete or replace it"
        )


def _download(url: str, target: Path, sha256: str, weights: OfficialWeights, *, what: str = "the") -> Path:
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            _verify(tmp, weights, shown_as=f"the file downloaded from {url}", sha256=sha256, what=what)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SrExportError(
            f"could not download {what} official {weights.model} x{weights.scale} checkpoint from {url} "
            f"({exc}); download it by hand into ${WEIGHTS_DIR_ENV}"
        ) from exc
    return target
