"""A QDQ graph rewritten for ONNX Runtime's CPU kernels, and proven to give the same output.

Two rewrites, each exact in arithmetic, each worth a large share of the INT8
run time on this project's models (measured at 360x640, 2 threads):

- :mod:`~sr_export.quantize.channel_padding`: convs widened to multiples of 4
  channels, the integer kernel's fast path (E-RFDN x4: 1.5x -> 2.5x FP32);
- :mod:`~sr_export.quantize.spatial_means`: spatial ReduceMeans as
  GlobalAveragePool (IMDN x4: 1462 -> 929 ms).

The encodings are untouched. The rewritten graph is run beside the original
on one calibration patch. Integer regions give bit-identical results, but a
float island may sum in another order, and a last-bit difference that lands
on a rounding boundary of the next QuantizeLinear moves that value by a whole
step (IMDN's `mixed` graph: 2 of 6 patches, output PSNR to FP32 45.111 ->
45.099 dB). So the rewrite is kept when the outputs are equal within float
rounding, or when it stays as close to the float graph as the original
(within ``FLOAT_CLOSENESS_DB``); otherwise the original is kept and the
reason recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sr_export.quantize.channel_padding import ChannelPadding, pad_channels
from sr_export.quantize.spatial_means import spatial_means_as_pooling

FLOAT_CLOSENESS_DB = 0.1


@dataclass(frozen=True)
class KernelRewrites:
    """The graph to write and what was done to it."""

    proto: Any
    padding: ChannelPadding = field(default_factory=ChannelPadding)
    pooled_means: int = 0
    refused: str = ""  # why nothing was applied, if the rewritten graph's output differed
    moved: str = ""  # how the output moved when it was not bit-identical but as close to float

    def notes(self) -> list[str]:
        if self.refused:
            return [f"not rewritten for ONNX Runtime's integer kernels: {self.refused}"]
        done = [self.padding.summary()] if self.padding.widened else []
        if self.pooled_means:
            done.append(f"{self.pooled_means} spatial means as GlobalAveragePool")
        return [f"for ONNX Runtime's integer kernels: {'; '.join(done)}"] if done else []

    def to_dict(self) -> dict[str, Any]:
        return {"channel_padding": self.padding.to_dict(), "spatial_means_as_pooling": self.pooled_means,
                "refused": self.refused, "moved": self.moved}


def _outputs(protos: tuple[Any, ...], batch: Any) -> list[Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    outputs = []
    for proto in protos:
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: batch})[0])
    return outputs


def output_change(original: Any, rewritten: Any, batch: Any) -> float:
    """Largest absolute difference between the two graphs' outputs on ``batch`` (ONNX Runtime, CPU)."""
    import numpy as np

    first, second = _outputs((original, rewritten), batch)
    return float(np.abs(first - second).max())


def _psnr(output: Any, reference: Any, data_range: float) -> float:
    import numpy as np

    mse = float(np.mean((output.astype(np.float64) - reference) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(data_range ** 2 / mse))


def rewritten_for_onnxruntime(proto: Any, batch: Any, float_proto: Any, data_range: float) -> KernelRewrites:
    """``proto`` with both rewrites, proven on ``batch`` to give the same output as before, or one as close to
    ``float_proto``'s (see the module's docstring); else ``proto`` unchanged, with the reason."""
    import numpy as np

    pooled, means = spatial_means_as_pooling(proto)
    widened, padding = pad_channels(pooled)
    if not padding.widened and not means:
        return KernelRewrites(proto, padding)
    before, after = _outputs((proto, widened), batch)
    change = float(np.abs(before - after).max())
    if change <= 1e-4 * data_range:
        return KernelRewrites(widened, padding, means)
    (reference,) = _outputs((float_proto,), batch)
    was, now = _psnr(before, reference, data_range), _psnr(after, reference, data_range)
    if now >= was - FLOAT_CLOSENESS_DB:
        return KernelRewrites(widened, padding, means, moved=f"output moved by up to {change:.3g} (a rounding "
                                                                f"step); PSNR to float {was:.3f} -> {now:.3f} dB")
    return KernelRewrites(proto, refused=f"the rewritten graph's output moved by {change:.3g} and its PSNR to "
                                         f"float fell {was:.3f} -> {now:.3f} dB")


def for_onnxruntime(proto: Any) -> Any:
    """Both rewrites, unchecked: for timing graphs whose checked form is what a build writes."""
    pooled, _ = spatial_means_as_pooling(proto)
    return pad_channels(pooled)[0]
