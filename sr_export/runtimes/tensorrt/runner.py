"""Running a TensorRT engine: device buffers, ``execute_async_v3``, and the checks before it.

Device memory comes from :mod:`sr_export.runtimes.tensorrt.cuda_buffers` (a CUDA
PyTorch, else cuda-python). An engine runs only on the platform its
manifest names, and only on input sizes inside its optimisation profile.
"""

from __future__ import annotations

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError, StageFailed
from sr_export.core.sizes import hw_text
from sr_export.runtimes.base import Runner
from sr_export.runtimes.tensorrt.cuda_buffers import CudaPythonBuffers, device_buffers
from sr_export.runtimes.tensorrt.loader import current_platform, import_tensorrt
from sr_export.runtimes.tensorrt.manifest import check_platform, read_manifest
from sr_export.runtimes.tensorrt.settings import ShapeProfile


def profile_error(hw: tuple[int, int], profile: ShapeProfile, engine_name: str) -> str | None:
    """The one-line message for an input size the engine's profile does not cover, or None."""
    if profile.contains(hw):
        return None
    return (f"input {hw_text(hw)} is outside {engine_name}'s shape profile {profile.describe()}; "
            f"rebuild with --min/--max covering it, or run through sr-export check/bench, which tile")


class TensorRTRunner(Runner):
    def __init__(self, artifact: Artifact) -> None:
        super().__init__()
        self.artifact = artifact
        self.activate()

    def _activate(self) -> None:
        artifact = self.artifact
        trt = import_tensorrt()
        path = artifact.path
        manifest = read_manifest(path)
        check_platform(path, manifest, current_platform(trt))
        self._trt = trt
        self._buffers = device_buffers()
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise SrExportError(f"TensorRT {trt.__version__} cannot deserialise {path.name}; rebuild it with "
                                f"sr-export trt --from {manifest.onnx_file}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise SrExportError(f"{path.name} has {len(inputs)} inputs and {len(outputs)} outputs; "
                                "an SR engine has one of each")
        self._input, self._output = inputs[0], outputs[0]
        low, best, high = (tuple(s) for s in self._engine.get_tensor_profile_shape(self._input, 0))
        self.profile = ShapeProfile(tuple(low[2:]), tuple(best[2:]), tuple(high[2:]))  # type: ignore[arg-type]
        self.size_bounds = (self.profile.min, self.profile.max)
        self._output_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._output)))
        self._input_dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(self._input)))
        self.name = f"tensorrt {trt.__version__} {artifact.metadata.precision}"
        self._path = path

    def _deactivate(self) -> None:
        del self._context, self._engine, self._runtime

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        hw = (int(batch.shape[2]), int(batch.shape[3]))
        problem = profile_error(hw, self.profile, self._path.name)
        if problem or batch.shape[0] != 1:
            raise SrExportError(problem or f"{self._path.name} runs batches of 1, not {batch.shape[0]}")
        source = self._buffers.upload(np.ascontiguousarray(batch, self._input_dtype))
        self._context.set_input_shape(self._input, tuple(batch.shape))
        shape = tuple(int(d) for d in self._context.get_tensor_shape(self._output))
        target = self._buffers.empty(shape, self._output_dtype)
        self._context.set_tensor_address(self._input, self._buffers.address(source))
        self._context.set_tensor_address(self._output, self._buffers.address(target))
        if not self._context.execute_async_v3(self._buffers.stream):
            raise StageFailed("check", f"TensorRT failed to run {self._path.name} on a {hw_text(hw)} input")
        self._buffers.synchronize()
        result = self._buffers.download(target, shape, self._output_dtype)
        if isinstance(self._buffers, CudaPythonBuffers):
            self._buffers.release()
        return result.astype(np.float32, copy=False)
