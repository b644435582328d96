"""CUDA device memory for runtimes that take raw device pointers (TensorRT).

From PyTorch when it is a CUDA build (its caching allocator and current
stream), else from cuda-python's runtime API. Nothing here knows TensorRT.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from sr_export.core.errors import RuntimeUnavailable, StageFailed

NO_CUDA = "no CUDA device (or no CUDA memory API: a CUDA build of PyTorch, or cuda-python) on this machine"


class DeviceBuffers(Protocol):
    """Host <-> device copies on one CUDA stream."""

    stream: int

    def upload(self, array: np.ndarray) -> Any: ...
    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any: ...
    def address(self, buffer: Any) -> int: ...
    def download(self, buffer: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray: ...
    def synchronize(self) -> None: ...


class TorchBuffers:
    def __init__(self) -> None:
        import torch

        self._torch = torch
        self.stream = torch.cuda.current_stream().cuda_stream

    def upload(self, array: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(array)).to("cuda", non_blocking=False)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._torch.empty(shape, dtype=_torch_dtype(self._torch, dtype), device="cuda")

    def address(self, buffer: Any) -> int:
        return int(buffer.data_ptr())

    def download(self, buffer: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return buffer.cpu().numpy()

    def synchronize(self) -> None:
        self._torch.cuda.current_stream().synchronize()


class CudaPythonBuffers:
    """cuda-python's runtime API; every call returns (error, value...)."""

    def __init__(self) -> None:
        self._rt = cudart()
        self.stream = int(self._call(self._rt.cudaStreamCreate()))
        self._allocations: list[Any] = []

    def _call(self, result: Any) -> Any:
        error, *values = result if isinstance(result, tuple) else (result,)
        if int(error) != 0:
            raise StageFailed("check", f"CUDA runtime error {error}")
        return values[0] if len(values) == 1 else values

    def _alloc(self, nbytes: int) -> int:
        pointer = int(self._call(self._rt.cudaMalloc(max(nbytes, 1))))
        self._allocations.append(pointer)
        return pointer

    def upload(self, array: np.ndarray) -> Any:
        host = np.ascontiguousarray(array)
        pointer = self._alloc(host.nbytes)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self._rt.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes, kind, self.stream))
        self.synchronize()  # the host array may be freed once this returns
        return pointer

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self._alloc(int(np.prod(shape)) * np.dtype(dtype).itemsize)

    def address(self, buffer: Any) -> int:
        return int(buffer)

    def download(self, buffer: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        host = np.empty(shape, dtype)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self._rt.cudaMemcpyAsync(host.ctypes.data, buffer, host.nbytes, kind, self.stream))
        self.synchronize()
        return host

    def synchronize(self) -> None:
        self._call(self._rt.cudaStreamSynchronize(self.stream))

    def release(self) -> None:
        for pointer in self._allocations:
            self._rt.cudaFree(pointer)
        self._allocations.clear()


def cudart() -> Any:
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart as runtime  # older cuda-python
        except ImportError as exc:
            raise RuntimeUnavailable(NO_CUDA) from exc
    return runtime


def torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def device_buffers() -> DeviceBuffers:
    """Device memory from a CUDA PyTorch if there is one, else from cuda-python."""
    if torch_cuda():
        return TorchBuffers()
    return CudaPythonBuffers()


def _torch_dtype(torch: Any, dtype: Any) -> Any:
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}[np.dtype(dtype)]
