"""LR patches to calibrate INT8 on, made the way SR benchmarks make LR images.

Calibration must see what the network sees in use: LR images made by
MATLAB-bicubic downscaling (or given LR images), cut into patches. It must
never see the images the result is evaluated on, or the reported INT8 loss is
flattering; a folder is compared with the evaluation dataset by pixel
content, so a renamed or re-encoded copy is caught too.

A recipe's folder is checked from the image headers before anything
expensive (:func:`check_calibration_images`): a missing or empty folder, a
file that is not a readable image, or no image large enough for a patch is
one line naming the folder or file. An image too small for a patch while
others are large enough is skipped, with a warning: the patches are random
crops of whatever is large enough, so leaving it out changes nothing else.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_export.core.errors import SrExportError
from sr_export.core.model_info import ModelInfo
from sr_export.data.images import ImageHeader, list_images, mod_crop, no_images_message, probe_image, read_image
from sr_export.data.matlab_resize import downscale
from sr_export.data.tensors import image_to_batch
from sr_export.quantize.recipes import CalibrationRecipe

# scikit-image's bundled photos (no download): colour scenes, plus grey
# textures whose fine detail is what SR layers amplify most. None of them is
# a built-in evaluation photo (sr_export.data.images.BUILTIN_IMAGES), so the
# default calibration never sees what `sr-export check` scores.
BUILTIN_CALIBRATION_IMAGES = (
    "motorcycle_left", "motorcycle_right", "immunohistochemistry", "hubble_deep_field",
    "camera", "brick", "grass", "gravel", "coins",
)


@dataclass(frozen=True)
class CalibrationPatches:
    """A recipe's LR patches, for any model of one scale."""

    patches: np.ndarray  # (N, H, W, 3) uint8 RGB LR patches
    sources: tuple[str, ...]  # image each patch was cut from
    boxes: tuple[tuple[int, int], ...] = ()  # (top, left) of each patch in its LR image

    def batches(self, info: ModelInfo) -> list[np.ndarray]:
        """One (1, C, H, W) float32 batch per patch, in the model's data range."""
        return [image_to_batch(patch, info) for patch in self.patches]


@dataclass(frozen=True, eq=False)
class CalibrationSet:
    """What every INT8 build calibrates on: a recipe's LR patches as batches for one model.

    An iterable of (1, C, H, W) float32 batches in the model's data range. The
    patches are made on first use (downscaling photos is the slow part), so a
    build whose calibration comes from a cache never makes them.
    :attr:`identity` names the set without making it (for cache keys);
    :attr:`content_hash` is the hash of the batches themselves.
    """

    recipe: CalibrationRecipe
    info: ModelInfo
    count: int | None = None  # the first N patches only (sensitivity scans use a few)
    input_hw: tuple[int, int] | None = None  # a fixed-size graph's LR size: every batch is fitted to it

    @functools.cached_property
    def patches(self) -> CalibrationPatches:
        made = make_calibration_set(self.recipe, self.info.scale)
        if self.count is None:
            return made
        return CalibrationPatches(made.patches[: self.count], made.sources[: self.count])

    @functools.cached_property
    def batches(self) -> list[np.ndarray]:
        made = self.patches.batches(self.info)
        return made if self.input_hw is None else [fit_batch(batch, self.input_hw) for batch in made]

    def at_size(self, input_hw: tuple[int, int] | None) -> CalibrationSet:
        """The same patches for a graph that takes only ``input_hw`` (None: any size, the patches as cut)."""
        hw = tuple(input_hw) if input_hw is not None else None
        if hw == self.input_hw:
            return self
        fitted = CalibrationSet(self.recipe, self.info, self.count, hw)
        if "patches" in self.__dict__:
            fitted.__dict__["patches"] = self.patches
        return fitted

    @functools.cached_property
    def held_out(self) -> HeldOutPatches:
        """The recipe's held-out patches and their HR originals (for an accuracy budget, ``max_drop``)."""
        return make_held_out(self.recipe, self.info.scale)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)

    def __len__(self) -> int:
        return min(self.recipe.patch_count, self.count) if self.count is not None else self.recipe.patch_count

    def subset(self, count: int) -> CalibrationSet:
        """The first ``count`` batches (the same patches, cut in the same order)."""
        count = max(1, min(count, len(self)))
        subset = CalibrationSet(self.recipe, self.info, count, self.input_hw)
        if "patches" in self.__dict__:  # already made: cut them instead of making them again
            made = self.patches
            subset.__dict__["patches"] = CalibrationPatches(made.patches[:count], made.sources[:count])
        return subset

    @property
    def identity(self) -> dict[str, Any]:
        """What the batches depend on: the recipe's patches (and, for a folder, its files), the scale and encoding."""
        return {"recipe": self.recipe.statistics_key(), "images": _folder_fingerprint(self.recipe.images_path()),
                "scale": self.info.scale, "channels": self.info.in_channels, "color": self.info.color,
                "data_range": self.info.data_range, "count": self.count,
                **({"input_hw": list(self.input_hw)} if self.input_hw is not None else {})}

    @functools.cached_property
    def content_hash(self) -> str:
        """sha256 of the batches (shapes and float32 values)."""
        digest = hashlib.sha256()
        for batch in self.batches:
            digest.update(str(batch.shape).encode())
            digest.update(np.ascontiguousarray(batch, np.float32).tobytes())
        return digest.hexdigest()


def fit_batch(batch: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """A (1, C, H, W) patch at a fixed-size graph's ``input_hw``: centre-cropped where the patch is larger,
    mirrored outward (as the photo would continue, without a seam) where it is smaller."""
    height, width = input_hw
    _n, _c, h, w = batch.shape
    top, left = max(0, (h - height) // 2), max(0, (w - width) // 2)
    batch = batch[:, :, top:top + height, left:left + width]
    pad_h, pad_w = max(0, height - batch.shape[2]), max(0, width - batch.shape[3])
    if pad_h or pad_w:
        batch = np.pad(batch, ((0, 0), (0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                       mode="symmetric")
    return np.ascontiguousarray(batch)


@dataclass(frozen=True)
class CalibrationImages:
    """A recipe's image folder as its headers describe it (no pixels decoded)."""

    recipe: CalibrationRecipe
    scale: int | None  # None: the model's scale is not known yet (only sure misfits are found)
    usable: tuple[ImageHeader, ...]
    too_small: tuple[ImageHeader, ...]

    def warnings(self) -> list[str]:
        """One line per image that is skipped or read with a caveat."""
        lines = [f"calibration image {header.describe()} is smaller than recipe {self.recipe.name}'s "
                 f"{self.recipe.patch_size} px patches{self._lr_text(header)}; skipped" for header in self.too_small]
        lines += [f"calibration image {header.path.name}: {note}" for header in self.usable for note in header.notes]
        return lines

    def _lr_text(self, header: ImageHeader) -> str:
        if self.recipe.kind == "lr" or self.scale is None:
            return ""
        return f" after x{self.scale} downscaling ({header.width // self.scale}x{header.height // self.scale})"


def fits_patch(height: int, width: int, recipe: CalibrationRecipe, scale: int | None) -> bool:
    """Whether an image of this size yields a patch: its LR version (``side // scale`` for HR images) holds one.

    With ``scale`` unknown, only images too small at every scale fail.
    """
    divisor = scale if recipe.kind == "hr" and scale else 1
    return min(height // divisor, width // divisor) >= recipe.patch_size


def check_calibration_images(recipe: CalibrationRecipe, scale: int | None = None) -> CalibrationImages | None:
    """Check a recipe's folder before any export or decoding: every file's header, every image's size.

    None for the built-in photos. Raises, naming the folder or file, when the
    folder is missing or empty, a file is not a readable image, or no image
    is large enough for one patch; images too small while others fit are
    returned in ``too_small`` (skipped, see :meth:`CalibrationImages.warnings`).
    """
    folder = recipe.images_path()
    if folder is None:
        return None
    where = f" (recipe {recipe.source or recipe.name})"
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "not found"
        raise SrExportError(f"calibration image folder {state}: {folder}{where}")
    paths = list_images(folder)
    if not paths:
        raise SrExportError(no_images_message(folder, "calibration images") + where)
    headers = [probe_image(path) for path in paths]
    usable = tuple(h for h in headers if fits_patch(h.height, h.width, recipe, scale))
    too_small = tuple(h for h in headers if h not in usable)
    if not usable:
        largest = max(headers, key=lambda h: h.min_side)
        after = f" after x{scale} downscaling" if recipe.kind == "hr" and scale else ""
        raise SrExportError(
            f"no image in calibration folder {folder} is large enough for {recipe.patch_size}x{recipe.patch_size} "
            f"px patches{after} (largest: {largest.describe()}){where}; use larger images or lower patches.size"
        )
    return CalibrationImages(recipe, scale, usable, too_small)


def _folder_fingerprint(folder: Path | None) -> list[Any] | None:
    """Names, sizes and modification times of a calibration folder's images: changed images, new key."""
    if folder is None or not folder.is_dir():
        return None
    return [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in list_images(folder)]


def builtin_calibration_image(name: str) -> np.ndarray:
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        image = left if name.endswith("left") else right
    else:
        image = getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def source_images(recipe: CalibrationRecipe) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB image) for every image the recipe names."""
    folder = recipe.images_path()
    if folder is None:
        return [(name, builtin_calibration_image(name)) for name in BUILTIN_CALIBRATION_IMAGES]
    if not folder.is_dir():
        raise SrExportError(f"calibration image folder not found: {folder} (recipe {recipe.name})")
    paths = list_images(folder)
    if not paths:
        raise SrExportError(no_images_message(folder, "calibration images") + f" (recipe {recipe.name})")
    return [(p.name, read_image(p)) for p in paths]


def lr_images(recipe: CalibrationRecipe, scale: int) -> list[tuple[str, np.ndarray]]:
    """The recipe's LR images that hold a patch (smaller ones could not give one, and may downscale to nothing)."""
    images = [(name, image) for name, image in source_images(recipe)
              if fits_patch(image.shape[0], image.shape[1], recipe, scale)]
    if recipe.kind == "lr":
        return images
    return [(name, downscale(mod_crop(image, scale), scale)) for name, image in images]


def make_calibration_set(
    recipe: CalibrationRecipe, scale: int, images: Sequence[tuple[str, np.ndarray]] | None = None
) -> CalibrationPatches:
    """``recipe.patch_count`` random LR patches, reproducible from ``recipe.seed``.

    ``images`` are the recipe's LR images when the caller already made them
    (:func:`lr_images`); downscaling large photos is the slow part.

    Patches are dealt to the images in turn (in a seeded order), so one
    large photo does not crowd out the rest.
    """
    size = recipe.patch_size
    images = images if images is not None else lr_images(recipe, scale)
    usable = [(name, lr) for name, lr in images if min(lr.shape[:2]) >= size]
    if not usable:
        raise SrExportError(
            f"no calibration image is at least {size}x{size} px after x{scale} downscaling; "
            "lower patches.size in the recipe or use larger images"
        )
    rng = np.random.default_rng(recipe.seed)
    order = rng.permutation(len(usable))
    picks = [int(order[i % len(usable)]) for i in range(recipe.patch_count)]
    patches, sources, boxes = [], [], []
    for index in picks:
        name, lr = usable[index]
        top = int(rng.integers(0, lr.shape[0] - size + 1))
        left = int(rng.integers(0, lr.shape[1] - size + 1))
        patches.append(lr[top : top + size, left : left + size])
        sources.append(name)
        boxes.append((top, left))
    return CalibrationPatches(np.stack(patches), tuple(sources), tuple(boxes))


@dataclass(frozen=True)
class HeldOutPatches:
    """Patches of the recipe's images that calibration never sees, with their HR originals: where an accuracy
    budget (``precision.max_drop``) is measured. Never evaluation images: those are refused as calibration
    images in the first place (:func:`check_no_overlap`)."""

    lr: np.ndarray  # (N, h, w, 3) uint8 LR patches
    hr: np.ndarray  # (N, h * scale, w * scale, 3) uint8: the HR pixels the LR patch was downscaled from
    sources: tuple[str, ...]
    shared: float = 0.0  # mean fraction of a held-out patch's pixels that a calibration patch also holds

    def __len__(self) -> int:
        return len(self.lr)

    def batches(self, info: ModelInfo) -> list[np.ndarray]:
        return [image_to_batch(patch, info) for patch in self.lr]

    def y_psnr(self, index: int, output: np.ndarray, info: ModelInfo) -> float:
        """Y-PSNR (BT.601, peak 255, ``scale`` pixels shaved) of one patch's network output against its HR patch,
        after rounding to 8 bits as every evaluation does."""
        from sr_export.data.color import y_channel
        from sr_export.data.tensors import batch_to_image

        shave = info.scale
        got = y_channel(batch_to_image(output, info, self.lr[index])).astype(np.float64)[shave:-shave, shave:-shave]
        want = y_channel(self.hr[index]).astype(np.float64)[shave:-shave, shave:-shave]
        mse = float(np.mean((got - want) ** 2))
        return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))


def make_held_out(recipe: CalibrationRecipe, scale: int) -> HeldOutPatches:
    """``recipe.holdout`` LR/HR patch pairs from the recipe's HR images, never calibration patches.

    Cut with a random stream of their own (the calibration set is unchanged by holding out), images taken
    in turn; of 16 candidate positions per patch the one sharing the fewest pixels with the calibration
    patches of its image is kept. Small photos at large scales are all but covered by calibration patches
    (the built-in ones at x4), so held-out patches may share pixels with calibration ones:
    :attr:`HeldOutPatches.shared` says how many.
    """
    if recipe.kind != "hr" or recipe.holdout < 1:
        raise SrExportError(f"recipe {recipe.name} holds out no patches with HR originals "
                            "(patches.holdout >= 1 and source.kind = \"hr\" are needed)")
    size = recipe.patch_size
    pairs = [(name, hr, downscale(hr, scale)) for name, hr in
             ((name, mod_crop(image, scale)) for name, image in source_images(recipe)
              if fits_patch(image.shape[0], image.shape[1], recipe, scale))]
    calibration = make_calibration_set(recipe, scale, [(name, lr) for name, _hr, lr in pairs])
    taken: dict[str, list[tuple[int, int]]] = {}
    for name, box in zip(calibration.sources, calibration.boxes):
        taken.setdefault(name, []).append(box)

    def shared(name: str, top: int, left: int) -> float:
        mask = np.zeros((size, size), bool)
        for t, le in taken.get(name, []):
            mask[max(t - top, 0):max(t - top + size, 0), max(le - left, 0):max(le - left + size, 0)] = True
        return float(mask.mean())

    rng = np.random.default_rng([recipe.seed, 1])
    usable = [pair for pair in pairs if min(pair[2].shape[:2]) >= size]
    order = rng.permutation(len(usable))
    lr_patches, hr_patches, sources, overlaps = [], [], [], []
    for index in range(recipe.holdout):
        name, hr, lr = usable[int(order[index % len(usable)])]
        candidates = [(int(rng.integers(0, lr.shape[0] - size + 1)), int(rng.integers(0, lr.shape[1] - size + 1)))
                      for _ in range(16)]
        top, left = min(candidates, key=lambda box: shared(name, *box))
        overlaps.append(shared(name, top, left))
        taken.setdefault(name, []).append((top, left))
        lr_patches.append(lr[top : top + size, left : left + size])
        hr_patches.append(hr[top * scale : (top + size) * scale, left * scale : (left + size) * scale])
        sources.append(name)
    return HeldOutPatches(np.stack(lr_patches), np.stack(hr_patches), tuple(sources), float(np.mean(overlaps)))


def content_hash(image: np.ndarray) -> str:
    """Hash of the decoded pixels (shape included): the same picture under any name or format."""
    digest = hashlib.sha256(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def dataset_hashes(dataset: str | Path, scale: int) -> set[str]:
    """Content hashes of an evaluation dataset's HR images (as read and mod-cropped) and LR images."""
    from sr_export.data.datasets import BUILTIN, builtin_dataset
    from sr_export.data.images import BUILTIN_IMAGES, builtin_image

    if str(dataset) == BUILTIN:
        photos = [builtin_image(name) for name in BUILTIN_IMAGES]
        crops = [pair.hr for pair in builtin_dataset(scale)] + [pair.lr for pair in builtin_dataset(scale)]
        return {content_hash(image) for image in photos + crops}
    root = Path(dataset)
    if not root.is_dir():
        return set()
    hashes = set()
    for path in _all_images(root):
        image = read_image(path)
        hashes.update({content_hash(image), content_hash(mod_crop(image, scale))})
    return hashes


def _all_images(root: Path) -> Iterable[Path]:
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        yield from list_images(folder)


def overlapping_images(recipe: CalibrationRecipe, datasets: Sequence[str | Path], scale: int) -> list[str]:
    """Names of the recipe's images whose pixels also appear in any of ``datasets``."""
    folder = recipe.images_path()
    if folder is None or not datasets:
        return []
    evaluation: set[str] = set()
    for dataset in datasets:
        evaluation |= dataset_hashes(dataset, scale)
    overlap = []
    for name, image in source_images(recipe):
        if {content_hash(image), content_hash(mod_crop(image, scale))} & evaluation:
            overlap.append(name)
    return overlap


def check_no_overlap(
    recipe: CalibrationRecipe, datasets: Sequence[str | Path], scale: int, *, allow: bool = False
) -> list[str]:
    """Refuse a calibration folder that holds evaluation images; with ``allow``, return them to be flagged."""
    overlap = overlapping_images(recipe, datasets, scale)
    if overlap and not allow:
        shown = ", ".join(overlap[:5]) + (" ..." if len(overlap) > 5 else "")
        raise SrExportError(
            f"calibration folder {recipe.images_path()} contains {len(overlap)} image(s) of the evaluation "
            f"dataset ({shown}); INT8 scores would be flattering. Use other images "
            "(or --allow-calibration-overlap to proceed, flagged in the report)"
        )
    return overlap
