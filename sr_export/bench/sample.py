"""The patch behind the report's visual comparison strip (bicubic | each target | HR).

Numbers hide banding, ringing and colour shifts; a crop of the same patch
through every target shows them. The patch is fixed (a built-in photo with
fur and fine texture) so strips from different runs line up.
"""

from __future__ import annotations

import io

import numpy as np

from sr_export.core.model_info import ModelInfo
from sr_export.runtimes.base import Inferring

SAMPLE_IMAGE = "chelsea"
SAMPLE_HR = 144  # divisible by 2, 3 and 4


def sample_pair(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 RGB: the HR patch and its MATLAB-bicubic downscale."""
    from sr_export.data.images import builtin_image
    from sr_export.data.matlab_resize import downscale

    image = builtin_image(SAMPLE_IMAGE)
    top, left = 40, 90  # the cat's face: whiskers and fur
    hr = np.ascontiguousarray(image[top:top + SAMPLE_HR, left:left + SAMPLE_HR])
    hr = hr[: SAMPLE_HR // scale * scale, : SAMPLE_HR // scale * scale]
    return downscale(hr, scale), hr


def bicubic(scale: int) -> np.ndarray:
    from sr_export.data.matlab_resize import upscale

    lr, _ = sample_pair(scale)
    return upscale(lr, scale)


def render_sample(runner: Inferring, info: ModelInfo) -> bytes:
    """The runner's output on the sample patch, as PNG bytes."""
    from sr_export.bench.evaluate import super_resolve

    lr, _ = sample_pair(info.scale)
    return png_bytes(super_resolve(runner, lr, info))


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_image(data: bytes) -> np.ndarray:
    from sr_export.data.images import image_from_bytes

    return image_from_bytes(data, "the report's sample PNG")
