"""What a TFLite build takes: the file's I/O layout, the SR rewrites, and INT8's recipe, I/O type and scheme."""

from __future__ import annotations

from dataclasses import dataclass, field

LAYOUTS = ("nhwc", "nchw")
PRECISIONS = ("fp32", "fp16", "int8")
# What the I/O of an INT8 file carries; "float" keeps QUANTIZE / DEQUANTIZE ops at the ends.
IO_TYPES = ("uint8", "int8", "float")
DEFAULT_IO = "uint8"
SCHEMES = ("sr-float", "sr-int16", "full")
# The recipe `sr-export tflite --int8` calibrates with when none is named. A full-integer file has no float
# layer to absorb the SR-sensitive tensors' rounding: without fine-tuning, IMDN x2 misses the INT8 bound.
DEFAULT_RECIPE = "default"
FULL_INTEGER_RECIPE = "qat-full"


def default_recipe(scheme: str | None) -> str:
    """The recipe for ``scheme`` when the user names none (a recipe-decided scheme gets the plain default)."""
    return FULL_INTEGER_RECIPE if scheme == "full" else DEFAULT_RECIPE


@dataclass(frozen=True)
class TfliteRuntimeOptions:
    """A profile's ``[options]`` for the tflite runtime (``sr-export tflite`` flags map onto these)."""

    layout: str = field(default="nhwc", metadata={"choices": LAYOUTS})  # the file's I/O layout
    rewrite: bool = True  # the SR-aware rewrites of sr_export.rewrites
    calibration: str = "default"  # INT8: a recipe name in calibration/ or a path to one
    int8_io: str = field(default=DEFAULT_IO, metadata={"choices": IO_TYPES})  # INT8: what the file takes and gives
    int8_scheme: str | None = field(default=None, metadata={"choices": SCHEMES})  # INT8: None follows the recipe
    # The runtime on the device, NAME==VERSION (tflite-runtime==2.14): the file is fitted to it or refused.
    for_runtime: str | None = None
