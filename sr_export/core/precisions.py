"""The precisions an artifact can have: one list for profiles, command-line flags and parity bounds.

A runtime declares which of them it builds (``Runtime.precisions``); every
one has parity bounds in :mod:`sr_export.core.tolerances`. Kept free of
imports so ``--help`` stays light.
"""

from __future__ import annotations

# bf16: FP32 weights computed in bfloat16 (OpenVINO's CPU inference-precision hint); 8 bits of mantissa, so
# looser bounds than fp16's.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
