"""Where sr-export keeps what it downloads and measures once (``$SR_EXPORT_CACHE``, default ``~/.cache/sr-export``)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SR_EXPORT_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sr-export")


def weights_cache_dir() -> Path:
    """Downloaded official checkpoints (and, below them, the INT8 calibration caches)."""
    return cache_root() / "weights"


def calibration_cache_dir() -> Path:
    """Activation ranges and sensitivity scans, keyed by :mod:`sr_export.quantize.cache_key`."""
    return weights_cache_dir() / "int8-statistics"


def tune_cache_dir() -> Path:
    """sr-bench tune's proven and evaluated candidates, keyed by what they were built and evaluated from."""
    return cache_root() / "tune"
