"""Deltas between two runs and the CI gate built on them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sr_export.bench.history import RunRecord
from sr_export.core.errors import SrExportError


@dataclass(frozen=True)
class SizeDelta:
    input_hw: tuple[int, int]
    base_ms: float
    new_ms: float

    @property
    def slowdown(self) -> float:
        """+0.25: 25 % slower than the baseline; -0.10: 10 % faster."""
        return self.new_ms / self.base_ms - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"input_hw": list(self.input_hw), "base_median_ms": self.base_ms, "new_median_ms": self.new_ms,
                "slowdown": round(self.slowdown, 4)}


# How the artifact of one run relates to another's. Builds are reproducible, so equal hashes from two runs
# mean the artifact was rebuilt (or reused) byte for byte: any latency change lies elsewhere.
IDENTICAL, CHANGED, UNKNOWN = "identical", "changed", "unknown"


@dataclass(frozen=True)
class ArtifactChange:
    base_sha256: str
    new_sha256: str
    same_run: bool = False

    @property
    def status(self) -> str:
        if not (self.base_sha256 and self.new_sha256):
            return UNKNOWN  # a record from before hashes were stored, or a hand-written baseline
        return IDENTICAL if self.base_sha256 == self.new_sha256 else CHANGED

    def describe(self) -> str:
        """One line for people: 'artifact rebuilt, identical (sha256 ...)' or 'artifact changed: ... -> ...'."""
        if self.status == UNKNOWN:
            return "artifact: no sha256 recorded for one of the runs, so whether it changed is unknown"
        if self.status == CHANGED:
            return f"artifact changed: sha256 {self.base_sha256[:16]} -> {self.new_sha256[:16]}"
        how = "the same run" if self.same_run else "rebuilt, identical"
        return f"artifact {how} (sha256 {self.new_sha256[:16]})"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "rebuilt": self.status == IDENTICAL and not self.same_run,
                "base_sha256": self.base_sha256 or None, "new_sha256": self.new_sha256 or None}


def artifact_change(base: RunRecord, new: RunRecord) -> ArtifactChange:
    same_run = base.id is not None and base.id == new.id
    return ArtifactChange(base.artifact_sha256, new.artifact_sha256, same_run=same_run)


@dataclass(frozen=True)
class RunDelta:
    base: RunRecord
    new: RunRecord
    sizes: tuple[SizeDelta, ...]

    @property
    def artifact(self) -> ArtifactChange:
        return artifact_change(self.base, self.new)

    @property
    def psnr_drop(self) -> float | None:
        if self.base.psnr_y is None or self.new.psnr_y is None:
            return None
        return self.base.psnr_y - self.new.psnr_y

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.id, "new": self.new.id, "model": self.new.label, "target": self.new.target,
                "sizes": [s.to_dict() for s in self.sizes],
                "psnr_drop_db": None if self.psnr_drop is None else round(self.psnr_drop, 4),
                "artifact": self.artifact.to_dict()}


def compare_runs(base: RunRecord, new: RunRecord) -> RunDelta:
    deltas = []
    for entry in new.sizes:
        old = base.size(entry["input_hw"])
        if old is not None:
            deltas.append(SizeDelta(tuple(entry["input_hw"]), float(old["inference"]["median_ms"]),
                                    float(entry["inference"]["median_ms"])))
    return RunDelta(base, new, tuple(deltas))


def parse_percent(text: str) -> float:
    """'10%' -> 0.10; '0.1' -> 0.10."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise SrExportError(f"'{text}' is not a percentage such as 10%") from None
    check_threshold("max slowdown", value, text)
    return value


def check_threshold(name: str, value: float, text: object = None) -> None:
    """A gate threshold must be a finite number >= 0: every comparison with NaN is false, so a NaN
    threshold would pass any regression, and an infinite one turns the gate off without saying so."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        shown = value if text is None else text
        raise SrExportError(f"{name} must be a finite number >= 0, not {shown!r}")


@dataclass(frozen=True)
class GateResult:
    deltas: tuple[RunDelta, ...]
    failures: tuple[str, ...]
    unmatched: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def _key(run: RunRecord) -> tuple[str, int, str]:
    return run.model, run.scale, run.target


def gate(baselines: Sequence[RunRecord], candidates: Sequence[RunRecord], *, max_slowdown: float,
         max_psnr_drop: float | None) -> GateResult:
    """Every candidate against the baseline with the same model, scale and target."""
    check_threshold("max slowdown", max_slowdown)
    if max_psnr_drop is not None:
        check_threshold("max PSNR drop", max_psnr_drop)
    if not candidates:
        raise SrExportError("no runs to gate; run sr-bench first or pass --run")
    by_key = {_key(b): b for b in baselines}
    deltas, failures, unmatched = [], [], []
    for run in candidates:
        base = by_key.get(_key(run))
        if base is None:
            unmatched.append(f"{run.label} on {run.target}")
            continue
        delta = compare_runs(base, run)
        deltas.append(delta)
        if not delta.sizes:
            failures.append(f"{run.label} on {run.target}: no input size in common with the baseline")
        for size in delta.sizes:
            if size.slowdown > max_slowdown:
                h, w = size.input_hw
                failures.append(f"{run.label} on {run.target} at {h}x{w}: {size.new_ms:.2f} ms vs "
                                f"{size.base_ms:.2f} ms (+{size.slowdown:.0%} > {max_slowdown:.0%})")
        drop = delta.psnr_drop
        if max_psnr_drop is not None and drop is not None and drop > max_psnr_drop:
            failures.append(f"{run.label} on {run.target}: PSNR-Y {run.psnr_y:.3f} dB, {drop:.3f} dB below the "
                            f"baseline (> {max_psnr_drop} dB)")
    if not deltas:
        raise SrExportError("none of the runs matches a baseline run (same model, scale and target): "
                            + ", ".join(unmatched))
    return GateResult(tuple(deltas), tuple(failures), tuple(unmatched))
