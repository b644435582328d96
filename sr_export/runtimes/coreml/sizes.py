"""The LR sizes a Core ML program takes: one fixed size, an enumerated set, or a bounded range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.core.sizes import Size

# Flexible programs take any LR size in this box unless told otherwise.
DEFAULT_RANGE = ((32, 32), (1024, 1024))


@dataclass(frozen=True)
class InputSizes:
    """The LR sizes a program takes: one fixed size, an enumerated set, or a range (inclusive)."""

    fixed: Size | None = None
    enumerated: tuple[Size, ...] = ()
    lower: Size | None = None
    upper: Size | None = None

    @classmethod
    def from_options(cls, shape: Size | None = None, shapes: tuple[Size, ...] = (),
                     size_range: tuple[Size, Size] | None = None) -> InputSizes:
        given = sum(x is not None and x != () for x in (shape, shapes or None, size_range))
        if given > 1:
            raise SrExportError("give one of --shape, --shapes and --range")
        if shape is not None:
            return cls(fixed=tuple(shape))
        if shapes:
            unique = tuple(dict.fromkeys(tuple(s) for s in shapes))
            return cls(fixed=unique[0]) if len(unique) == 1 else cls(enumerated=unique)
        lower, upper = size_range or DEFAULT_RANGE
        if lower[0] > upper[0] or lower[1] > upper[1]:
            raise SrExportError(f"--range {lower[0]}x{lower[1]}:{upper[0]}x{upper[1]}: the minimum exceeds the maximum")
        return cls(lower=tuple(lower), upper=tuple(upper))

    @property
    def kind(self) -> str:
        return "fixed" if self.fixed else ("enumerated" if self.enumerated else "range")

    @property
    def example(self) -> Size:
        """The size to trace at (any size the program takes would do)."""
        if self.fixed:
            return self.fixed
        if self.enumerated:
            return self.enumerated[0]
        assert self.lower is not None and self.upper is not None
        return tuple(min(max(48, lo), hi) for lo, hi in zip(self.lower, self.upper))  # type: ignore[return-value]

    @property
    def bounds(self) -> tuple[Size, Size]:
        if self.fixed:
            return self.fixed, self.fixed
        if self.enumerated:
            return (min(s[0] for s in self.enumerated), min(s[1] for s in self.enumerated)), (
                max(s[0] for s in self.enumerated), max(s[1] for s in self.enumerated))
        assert self.lower is not None and self.upper is not None
        return self.lower, self.upper

    def accepts(self, size: Size) -> bool:
        if self.fixed:
            return tuple(size) == self.fixed
        if self.enumerated:
            return tuple(size) in self.enumerated
        (h0, w0), (h1, w1) = self.bounds
        return h0 <= size[0] <= h1 and w0 <= size[1] <= w1

    def check_sizes(self) -> tuple[Size, ...]:
        """LR sizes at which a parity check should run the program."""
        if self.fixed:
            return (self.fixed,)
        if self.enumerated:
            return self.enumerated
        (h0, w0), (h1, w1) = self.bounds
        # The smallest size, and an odd, non-square one a little above it (large sizes are slow in numpy).
        odd = (min(h0 + 13, h1), min(w0 + 31, w1))
        return tuple(dict.fromkeys(((h0, w0), odd)))

    def describe(self) -> str:
        if self.fixed:
            return f"fixed {self.fixed[0]}x{self.fixed[1]}"
        if self.enumerated:
            return "enumerated " + ", ".join(f"{h}x{w}" for h, w in self.enumerated)
        (h0, w0), (h1, w1) = self.bounds
        return f"range {h0}x{w0} to {h1}x{w1}"


def program_sizes(spec: Any) -> InputSizes:
    """The sizes a saved program's input takes, read off its spec."""
    array = spec.description.input[0].type.multiArrayType
    kind = array.WhichOneof("ShapeFlexibility")
    if kind == "enumeratedShapes":
        shapes = tuple((int(s.shape[2]), int(s.shape[3])) for s in array.enumeratedShapes.shapes)
        return InputSizes(enumerated=shapes)
    if kind == "shapeRange":
        ranges = array.shapeRange.sizeRanges
        upper = tuple(int(r.upperBound) if r.upperBound > 0 else 1 << 30 for r in ranges[2:4])
        return InputSizes(lower=(int(ranges[2].lowerBound), int(ranges[3].lowerBound)), upper=upper)  # type: ignore[arg-type]
    return InputSizes(fixed=(int(array.shape[2]), int(array.shape[3])))
