"""Importing TensorRT, and describing the platform an engine is built or run on.

Where the bindings or libnvinfer are missing, TensorRT is *unavailable*
(exit status 4): the prepared ONNX is still proven and written, and the
engine is built where a GPU is.
"""

from __future__ import annotations

from typing import Any

from sr_export.core.errors import RuntimeUnavailable
from sr_export.runtimes.tensorrt.cuda_buffers import NO_CUDA, cudart, torch_cuda
from sr_export.runtimes.tensorrt.manifest import Platform

NOT_INSTALLED = "TensorRT not installed: install sr-export[tensorrt] on a machine with an NVIDIA GPU"


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or RuntimeUnavailable (exit 4) saying where to build."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: bindings present, libnvinfer missing
        raise RuntimeUnavailable(NOT_INSTALLED) from exc
    return trt


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def current_platform(trt: Any) -> Platform:
    """This machine's TensorRT release and GPU 0, the way manifests record them."""
    if torch_cuda():
        import torch

        major, minor = torch.cuda.get_device_capability(0)
        return Platform(str(trt.__version__), torch.cuda.get_device_name(0), f"{major}.{minor}")
    runtime = cudart()
    error, props = runtime.cudaGetDeviceProperties(0)
    if int(error) != 0:
        raise RuntimeUnavailable(NO_CUDA)
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return Platform(str(trt.__version__), name.rstrip("\x00"), f"{props.major}.{props.minor}")
