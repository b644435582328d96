"""An ExecuTorch program on a device: the session sr-bench's device runner times there, and the one the
in-process runner (:mod:`.runner`) wraps, so here and there run the same code.

Copied next to the device runner and loaded by it, so it imports nothing but
the standard library, numpy and ExecuTorch's Python runtime (the
``executorch`` wheel, whose pybindings take and give torch tensors; torch
comes with that wheel). XNNPACK runs with ``threads`` threads.
"""

from __future__ import annotations

import logging
import sys

import numpy as np


class _DropMissingKernelLines(logging.Filter):
    """torchao, if installed, logs a warning for each CUDA kernel library a CPU build lacks; only those lines go
    (this runs in the caller's process too, where torchao's other lines must still show)."""

    def filter(self, record):
        message = record.getMessage()
        return not (message.startswith("Failed to load ") and "torchao" in message and ".so" in message)


def load_executorch():
    """(executorch.runtime, torch), or a RuntimeError saying what to install."""
    torchao = logging.getLogger("torchao")
    if not any(isinstance(f, _DropMissingKernelLines) for f in torchao.filters):
        torchao.addFilter(_DropMissingKernelLines())
    try:
        import torch
        from executorch import runtime
    except ImportError as exc:
        raise RuntimeError(f"the executorch Python runtime is not installed for {sys.executable} "
                           "(pip install executorch)") from exc
    return runtime, torch


def set_threads(threads):
    """XNNPACK's thread pool size (None or 0: ExecuTorch's default, one per performance core)."""
    if not threads:
        return
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(int(threads))


class ExecuTorchSession:
    """One ``.pte`` program's ``forward``: NCHW float32 in, NCHW float32 out, any LR size in its bounds."""

    nhwc = False

    def __init__(self, path, threads=None, smallest=None, largest=None, **_unused):
        runtime, self._torch = load_executorch()
        set_threads(threads)
        program = runtime.Runtime.get().load_program(str(path), verification=runtime.Verification.Minimal)
        if "forward" not in program.method_names:
            raise RuntimeError(f"{path} has no forward method (methods: {', '.join(sorted(program.method_names))})")
        self.method = program.load_method("forward")
        meta = self.method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise RuntimeError(f"{path} has {meta.num_inputs()} inputs and {meta.num_outputs()} outputs; "
                               "an SR program has one each")
        # A dynamic program's memory is planned for its largest input: the planned sizes are its upper bounds.
        planned = tuple(int(v) for v in meta.input_tensor_meta(0).sizes())
        self.largest = tuple(int(v) for v in (largest or planned[2:4]))
        self.smallest = tuple(int(v) for v in (smallest or (1, 1)))
        self.versions = {"runtime": f"executorch {_version()}", "delegate": "xnnpack"}

    def fits(self, height, width):
        """None when the program takes a ``height`` x ``width`` input, else why not."""
        (low_h, low_w), (high_h, high_w) = self.smallest, self.largest
        if low_h <= height <= high_h and low_w <= width <= high_w:
            return None
        return (f"the program takes LR sizes {low_h}x{low_w} to {high_h}x{high_w}, not {height}x{width} "
                "(rebuild with options.min_side / options.max_side, or give it tiles)")

    def prepare(self, height, width):
        problem = self.fits(height, width)
        if problem:
            raise RuntimeError(problem)

    def infer(self, batch):
        outputs = []
        for sample in np.asarray(batch, np.float32):
            tensor = self._torch.from_numpy(np.ascontiguousarray(sample[None]))
            outputs.append(self.method.execute([tensor])[0].numpy().copy())
        return np.concatenate(outputs, axis=0)


def _version():
    try:
        from importlib.metadata import version

        return version("executorch")
    except Exception:  # noqa: BLE001 - a source build without metadata
        return ""
