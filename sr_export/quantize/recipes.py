"""Calibration recipes (``calibration/*.toml``): what INT8 is calibrated on, and how.

A recipe is data, not code, so that the choice behind an INT8 artifact can be
read, reviewed and reproduced. Unknown keys are errors naming the key: a
misspelt ``percentil`` must not silently fall back to a default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.core.resources import list_resources, read_toml_resource

DEFAULT_RECIPE = "default"
METHODS = ("minmax", "percentile", "entropy")
ACTIVATIONS = ("asymmetric", "symmetric")
IMAGE_KINDS = ("hr", "lr")
BUILTIN_SOURCE = "builtin"


@dataclass(frozen=True)
class FinetuneSettings:
    """Quantisation-aware fine-tuning (``[finetune]``): the budget and optimiser, stated in the recipe."""

    steps: int = 400  # Adam steps; the budget, with batch and patch_size
    lr: float = 1e-4  # weights
    scale_lr: float = 1e-3  # activation log step sizes (LSQ)
    learn_scales: bool = True  # False: keep the percentile steps, re-calibrate on the tuned weights
    patch_size: int = 48  # LR crop side, cut from the recipe's calibration patches
    batch: int = 4
    seed: int = 0
    loss: str = "l1"  # on the output, against the teacher's: l1 | mse (PSNR is an MSE measure)

    def to_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        if fields["loss"] == "l1":  # added after the first caches: left out at its default, so they keep their keys
            del fields["loss"]
        return fields


FINETUNE_KEYS = tuple(FinetuneSettings.__dataclass_fields__)
FINETUNE_LOSSES = ("l1", "mse")


@dataclass(frozen=True)
class CalibrationRecipe:
    name: str
    description: str = ""
    # Where the images come from: 'builtin' (scikit-image's sample photos,
    # offline) or a folder; 'hr' images are MATLAB-bicubic downscaled by the
    # model's scale first, 'lr' images are used as they are.
    images: str = BUILTIN_SOURCE
    kind: str = "hr"
    patch_size: int = 64
    patch_count: int = 48
    seed: int = 0
    method: str = "percentile"
    percentile: float = 99.999
    num_bins: int = 2048  # histogram bins for entropy and percentile
    activations: str = "asymmetric"  # uint8 zero-point activations, or symmetric int8
    per_channel: bool = True  # per-output-channel weight scales
    # Keep the first conv, last conv / upsampler, global residual add and
    # output clamp in float (see sr_export.quantize.graph).
    sr_aware: bool = True
    keep_float: tuple[str, ...] = ()  # further node or activation tensor names kept in float
    # Per-channel statistics (activations pooled to one value per channel: channel attention's means, deviations,
    # logits) stay float: a per-tensor uint8 step across channels is coarse there, and they cost next to nothing.
    float_statistics: bool = False
    # Mixed precision: quantise, measure on the calibration patches how much
    # output PSNR each activation tensor gives back in float, keep this many.
    auto_keep_float: int = 0
    # Accuracy budget: the most Y-PSNR (dB) INT8 may lose, measured on `holdout` patches cut after the
    # calibration ones from the same images, never calibrated on (runtimes with accuracy control: OpenVINO).
    max_drop: float | None = None
    holdout: int = 0
    # Quantisation-aware fine-tuning distilled from FP32 on the calibration patches (None: post-training only).
    finetune: FinetuneSettings | None = None
    source: Path | None = field(default=None, compare=False)

    def images_path(self) -> Path | None:
        """The image folder, relative paths resolved against the recipe's own folder."""
        if self.images == BUILTIN_SOURCE:
            return None
        path = Path(self.images).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    def statistics_key(self) -> dict[str, Any]:
        """What the activation statistics depend on (not the float exclusions or the plan)."""
        folder = self.images_path()
        return {
            "images": str(folder.resolve()) if folder else BUILTIN_SOURCE,
            "kind": self.kind,
            "patch_size": self.patch_size,
            "patch_count": self.patch_count,
            "seed": self.seed,
            "method": self.method,
            "percentile": self.percentile if self.method == "percentile" else None,
            "num_bins": self.num_bins if self.method != "minmax" else None,
            "activations": self.activations,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.statistics_key(), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["keep_float"] = list(self.keep_float)
        data["source"] = str(self.source) if self.source else None
        data["finetune"] = self.finetune.to_dict() if self.finetune else None
        return data

    def summary(self) -> str:
        how = f"percentile {self.percentile:g}" if self.method == "percentile" else self.method
        where = "built-in photos" if self.images == BUILTIN_SOURCE else self.images
        parts = [f"{self.patch_count} {self.patch_size}px LR patches from {where}", how,
                 f"{self.activations} activations", "per-channel weights" if self.per_channel else "per-tensor weights"]
        if self.sr_aware:
            parts.append("SR-aware float layers")
        if self.float_statistics:
            parts.append("per-channel statistics in float")
        if self.auto_keep_float:
            parts.append(f"{self.auto_keep_float} most sensitive activations in float")
        if self.finetune is not None:
            parts.append(f"weights fine-tuned for INT8 ({self.finetune.steps} steps distilled from FP32)")
        if self.max_drop is not None:
            parts.append(f"at most {self.max_drop:g} dB Y-PSNR lost on {self.holdout} held-out patches")
        return f"{self.name}: " + ", ".join(parts)


# TOML tables and the recipe fields they hold.
_SCHEMA: dict[str, dict[str, str]] = {
    "": {"name": "name", "description": "description"},
    "source": {"images": "images", "kind": "kind"},
    "patches": {"size": "patch_size", "count": "patch_count", "seed": "seed", "holdout": "holdout"},
    "method": {"name": "method", "percentile": "percentile", "num_bins": "num_bins",
               "activations": "activations", "per_channel": "per_channel"},
    "precision": {"sr_aware": "sr_aware", "keep_float": "keep_float", "float_statistics": "float_statistics",
                  "auto_keep_float": "auto_keep_float",
                  "max_drop": "max_drop"},
}


def recipe_toml(recipe: CalibrationRecipe) -> str:
    """The recipe as a TOML file :func:`load_recipe` reads back equal (image folders made absolute)."""
    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (list, tuple)):
            return "[" + ", ".join(value(i) for i in item) + "]"
        return json.dumps(item) if isinstance(item, str) else repr(item)

    fields = recipe.to_dict()
    folder = recipe.images_path()
    fields["images"] = str(folder.resolve()) if folder else BUILTIN_SOURCE
    lines = []
    for table, keys in _SCHEMA.items():
        entries = [f"{key} = {value(fields[name])}" for key, name in keys.items() if fields.get(name) is not None]
        lines += ([f"\n[{table}]"] if table else []) + entries
    if recipe.finetune is not None:
        lines += ["\n[finetune]"] + [f"{key} = {value(item)}" for key, item in recipe.finetune.to_dict().items()]
    return "\n".join(lines) + "\n"


def available_recipes() -> dict[str, Path]:
    return list_resources("calibration")


def load_recipe(name_or_path: str | Path) -> CalibrationRecipe:
    """A recipe by name (``calibration/<name>.toml``) or from a .toml file."""
    data, path = read_toml_resource(name_or_path, "calibration", what="calibration recipe")
    return recipe_from_dict(data, source=path)


def recipe_from_dict(data: dict[str, Any], source: Path | None = None) -> CalibrationRecipe:
    where = f" in {source}" if source else ""
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key == "finetune" and isinstance(value, dict):
            fields["finetune"] = _finetune_settings(value, where)
            continue
        if isinstance(value, dict):
            if key not in _SCHEMA or key == "":
                allowed = ", ".join([*(k for k in _SCHEMA if k), "finetune"])
                raise SrExportError(f"unknown table [{key}]{where}; allowed: {allowed}")
            table, prefix = value, f"{key}."
        else:
            table, prefix, key = {key: value}, "", ""
        for name, item in table.items():
            if name not in _SCHEMA[key]:
                allowed = ", ".join(prefix + k for k in _SCHEMA[key])
                raise SrExportError(f"unknown key '{prefix}{name}'{where}; allowed here: {allowed}")
            fields[_SCHEMA[key][name]] = item
    fields.setdefault("name", source.stem if source else "custom")
    return _validated(fields, where, source)


def _finetune_settings(table: dict[str, Any], where: str) -> FinetuneSettings:
    """``[finetune]``: integers >= 1 (seed >= 0), positive learning rates, a boolean ``learn_scales``."""
    for name, value in table.items():
        if name not in FINETUNE_KEYS:
            raise SrExportError(f"unknown key 'finetune.{name}'{where}; allowed here: "
                                + ", ".join(f"finetune.{k}" for k in FINETUNE_KEYS))
        if name == "learn_scales":
            if not isinstance(value, bool):
                raise SrExportError(f"finetune.learn_scales = {value!r}{where} must be true or false")
        elif name == "loss":
            if value not in FINETUNE_LOSSES:
                raise SrExportError(f"finetune.loss = {value!r}{where} must be one of {', '.join(FINETUNE_LOSSES)}")
        elif name in ("lr", "scale_lr"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
                raise SrExportError(f"finetune.{name} = {value!r}{where} must be a number in (0, 1)")
        elif isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
            raise SrExportError(f"finetune.{name} = {value!r}{where} must be an integer >= {0 if name == 'seed' else 1}")
    return FinetuneSettings(**{k: float(v) if k in ("lr", "scale_lr") else v for k, v in table.items()})


def _validated(fields: dict[str, Any], where: str, source: Path | None) -> CalibrationRecipe:
    def choice(key: str, allowed: tuple[str, ...]) -> None:
        if key in fields and fields[key] not in allowed:
            raise SrExportError(f"{key} '{fields[key]}'{where} is not one of {', '.join(allowed)}")

    choice("method", METHODS)
    choice("activations", ACTIVATIONS)
    choice("kind", IMAGE_KINDS)
    for key, low in (("patch_size", 8), ("patch_count", 1), ("num_bins", 16), ("auto_keep_float", 0), ("seed", 0),
                     ("holdout", 0)):
        if key in fields and (not isinstance(fields[key], int) or isinstance(fields[key], bool) or fields[key] < low):
            raise SrExportError(f"{key} = {fields[key]!r}{where} must be an integer >= {low}")
    if "percentile" in fields:
        value = fields["percentile"]
        if not isinstance(value, (int, float)) or not 50.0 < float(value) <= 100.0:
            raise SrExportError(f"percentile = {value!r}{where} must be a number in (50, 100]")
        fields["percentile"] = float(value)
    if "max_drop" in fields:
        value = fields["max_drop"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 10.0:
            raise SrExportError(f"precision.max_drop = {value!r}{where} must be a number of dB in (0, 10)")
        fields["max_drop"] = float(value)
    for key in ("per_channel", "sr_aware", "float_statistics"):
        if key in fields and not isinstance(fields[key], bool):
            raise SrExportError(f"{key} = {fields[key]!r}{where} must be true or false")
    if "keep_float" in fields:
        names = fields["keep_float"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SrExportError(f"keep_float{where} must be a list of node names")
        fields["keep_float"] = tuple(names)
    if not isinstance(fields.get("images", BUILTIN_SOURCE), str):
        raise SrExportError(f"source.images{where} must be 'builtin' or a folder path")
    recipe = CalibrationRecipe(**fields, source=source)
    if recipe.max_drop is not None and (recipe.holdout < 1 or recipe.kind != "hr"):
        raise SrExportError(f"precision.max_drop{where} is measured in Y-PSNR on held-out patches against their HR "
                            "originals: it needs patches.holdout >= 1 and source.kind = \"hr\"")
    return recipe
