"""Proof that an exported graph computes what the PyTorch model computes, at several sizes.

Exporters can return a graph whose inputs are declared dynamic but whose
insides were frozen at the trace size (padding amounts, window counts). Such
a graph is right at one size and wrong, or unrunnable, at every other, so a
dynamic graph is run against PyTorch at sizes chosen to break it: a square
one, an odd non-square one, and one whose sides are not multiples of 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from sr_export.core.errors import first_line, runtime_error_line, stage
from sr_export.core.sizes import round_up
from sr_export.core.tolerances import judge, output_difference, tolerance_for
from sr_export.data.parity_inputs import ParityInput, builtin_parity_inputs
from sr_export.models.loader import LoadedModel

# LR height x width: square; odd and non-square; sides not multiples of 8.
VERIFY_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (45, 71), (100, 37))


def verification_sizes(min_input_size: int = 1) -> tuple[tuple[int, int], ...]:
    """:data:`VERIFY_SIZES`, grown for models that need bigger inputs, keeping each size's purpose."""
    if min_input_size <= min(min(hw) for hw in VERIFY_SIZES):
        return VERIFY_SIZES
    side = round_up(min_input_size, 2) + 1  # odd
    not_multiple_of_8 = side if side % 8 else side + 1
    return (
        (round_up(min_input_size, 8), round_up(min_input_size, 8)),
        (side, side + 26),
        (side + 55, not_multiple_of_8),
    )


@dataclass
class PyTorchReference:
    """Real-image inputs at the verification sizes and the model's outputs on them (computed once)."""

    model: LoadedModel
    sizes: Sequence[tuple[int, int]]
    _outputs: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    _inputs: list[ParityInput] | None = None

    @property
    def inputs(self) -> list[ParityInput]:
        if self._inputs is None:
            self._inputs = builtin_parity_inputs(self.model.info, self.sizes, per_size=1)
        return self._inputs

    def output(self, case: ParityInput) -> np.ndarray:
        if case.hw not in self._outputs:
            import torch

            height, width = case.hw
            with stage("forward", f"the model raised on a {height}x{width} input",
                       "pad inputs to the multiple the model needs with --pad-to N, or fix one size with --shape HxW"):
                with torch.inference_mode():
                    self._outputs[case.hw] = self.model.module(torch.from_numpy(case.batch)).numpy()
        return self._outputs[case.hw]


@dataclass(frozen=True)
class Verification:
    exporter: str
    passed_sizes: tuple[tuple[int, int], ...]
    failed_size: tuple[int, int] | None = None
    reason: str = ""
    worst_psnr_db: float = float("inf")

    @property
    def passed(self) -> bool:
        return self.failed_size is None and bool(self.passed_sizes)

    def describe_failure(self) -> str:
        height, width = self.failed_size or (0, 0)
        return f"wrong at {height}x{width} ({self.reason})"


def verify_graph(proto: onnx.ModelProto, reference: PyTorchReference, *, exporter: str) -> Verification:
    """Run ``proto`` in ONNX Runtime against PyTorch at every reference size (FP32 tolerance)."""
    from sr_export.export.session import cpu_session

    info = reference.model.info
    tolerance = tolerance_for("fp32")
    try:
        session = cpu_session(proto.SerializeToString())
    except Exception as exc:  # ORT refuses the graph: not something the user can fix by input
        return Verification(exporter, (), reference.sizes[0], f"ONNX Runtime cannot load it: {first_line(exc)}")
    input_name = session.get_inputs()[0].name
    passed: list[tuple[int, int]] = []
    worst = float("inf")
    for case in reference.inputs:
        want = reference.output(case)
        try:
            (got,) = session.run(None, {input_name: case.batch})
        except Exception as exc:
            return Verification(exporter, tuple(passed), case.hw, f"ONNX Runtime: {runtime_error_line(exc)}", worst)
        if got.shape != want.shape:
            return Verification(exporter, tuple(passed), case.hw,
                                f"output {tuple(got.shape)} but PyTorch gives {tuple(want.shape)}", worst)
        max_abs, _, psnr = output_difference(got, want, info.data_range)
        problem = judge(max_abs, psnr, info.data_range, tolerance)
        if problem:
            return Verification(exporter, tuple(passed), case.hw, problem, min(worst, psnr))
        worst = min(worst, psnr)
        passed.append(case.hw)
    return Verification(exporter, tuple(dict.fromkeys(passed)), None, "", worst)
