"""Images in every mode Pillow reads: converted by one rule with the right scaling, or refused with a reason.

The rule is in sr_export/data/images.py's docstring. Each image here is made
with known pixels, so the test checks the values the reader returns, not just
that it returned something. The same reader serves calibration folders,
``--images`` and dataset folders; the command-line cases at the end go
through each of them.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_export.core.errors import SrExportError
from sr_export.data.images import list_images, probe_image, read_image, to_rgb8

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESPCN = f"{FIXTURES / 'espcn.py'}:ESPCN"
MISSING_MODEL = f"{FIXTURES / 'no_such_model.py'}:Nope"  # fails to load: anything checked before it is up front

# A 16-bit ramp over the whole range (0 and 65535 included), 16 x 64 so it also fits a dataset and a patch.
RAMP_16 = np.linspace(0, 65535, 16 * 64).round().astype(np.uint16).reshape(16, 64)
RAMP_16_AS_8 = np.rint(RAMP_16 / 257.0).astype(np.uint8)  # the right 8-bit value of each 16-bit level
RNG = np.random.default_rng(16)


def grey3(plane: np.ndarray) -> np.ndarray:
    return np.repeat(plane[..., None], 3, axis=2)


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit-per-channel colour PNG (RGB or RGBA), written by hand: Pillow cannot write one."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, {3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


@dataclass(frozen=True)
class Case:
    """An image file made in a folder, and the uint8 RGB the reader must return for it."""

    make: Callable[[Path], tuple[Path, np.ndarray]]
    tolerance: int = 0  # LSBs
    alpha: bool = False  # the reader notes that it drops transparency


def _bilevel(folder: Path) -> tuple[Path, np.ndarray]:
    bits = (np.indices((8, 8)).sum(axis=0) % 2).astype(bool)
    Image.fromarray(bits).save(folder / "bilevel.png")
    return folder / "bilevel.png", grey3(np.where(bits, 255, 0).astype(np.uint8))


def _grey(folder: Path) -> tuple[Path, np.ndarray]:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    Image.fromarray(ramp).save(folder / "grey.png")
    return folder / "grey.png", grey3(ramp)


def _grey_alpha(folder: Path) -> tuple[Path, np.ndarray]:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    Image.fromarray(np.stack([ramp, ramp[:, ::-1]], axis=2), mode="LA").save(folder / "grey_alpha.png")
    return folder / "grey_alpha.png", grey3(ramp)


PALETTE = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]


def _palette(folder: Path, transparency: bool) -> tuple[Path, np.ndarray]:
    indices = (np.arange(32).reshape(4, 8) % 4).astype(np.uint8)
    image = Image.fromarray(indices, mode="L").convert("P")
    image.putpalette(PALETTE)
    image.putdata(indices.flatten().tolist())
    path = folder / ("palette_transparent.png" if transparency else "palette.png")
    image.save(path, **({"transparency": 0} if transparency else {}))
    return path, np.array(PALETTE, np.uint8).reshape(4, 3)[indices]


def _palette_with_transparency(folder: Path) -> tuple[Path, np.ndarray]:
    return _palette(folder, True)


def _rgba(folder: Path) -> tuple[Path, np.ndarray]:
    rgb = RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    alpha = np.zeros((16, 24, 1), np.uint8)  # fully transparent: the colours still come back as stored
    alpha[:8] = 255
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(folder / "rgba.png")
    return folder / "rgba.png", rgb


def _grey16(folder: Path) -> tuple[Path, np.ndarray]:
    Image.fromarray(RAMP_16).save(folder / "grey16.png")  # mode I;16
    return folder / "grey16.png", grey3(RAMP_16_AS_8)


def _grey16_big_endian(folder: Path) -> tuple[Path, np.ndarray]:
    Image.frombytes("I;16B", (64, 16), RAMP_16.astype(">u2").tobytes()).save(folder / "grey16b.tif")
    return folder / "grey16b.tif", grey3(RAMP_16_AS_8)


def _rgb16(folder: Path) -> tuple[Path, np.ndarray]:
    pixels = np.stack([RAMP_16, RAMP_16[:, ::-1], RAMP_16 // 3], axis=2)
    return write_png16(folder / "rgb16.png", pixels), np.rint(pixels / 257.0).astype(np.uint8)


def _rgba16(folder: Path) -> tuple[Path, np.ndarray]:
    pixels = np.stack([RAMP_16, RAMP_16[:, ::-1], RAMP_16 // 3, RAMP_16[::-1]], axis=2)
    return write_png16(folder / "rgba16.png", pixels), np.rint(pixels[..., :3] / 257.0).astype(np.uint8)


def _cmyk(folder: Path) -> tuple[Path, np.ndarray]:
    cmyk = RNG.integers(0, 256, (16, 24, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(folder / "cmyk.tif")
    ink = cmyk.astype(np.float64)
    expected = (255 - ink[..., :3]) * (255 - ink[..., 3:]) / 255  # naive CMYK, no colour management
    return folder / "cmyk.tif", np.rint(expected).astype(np.uint8)


def _ycbcr(folder: Path) -> tuple[Path, np.ndarray]:
    ycc = np.stack([np.full((16, 32), 120), np.tile(np.arange(64, 192, 16), (16, 4)), np.full((16, 32), 150)],
                   axis=2).astype(np.uint8)
    Image.fromarray(ycc, mode="YCbCr").save(folder / "ycbcr.tif")
    y, cb, cr = (ycc[..., i].astype(np.float64) for i in range(3))
    rgb = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                    y + 1.772 * (cb - 128)], axis=2)  # JPEG's (JFIF) full-range YCbCr
    return folder / "ycbcr.tif", np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _single_pixel(folder: Path) -> tuple[Path, np.ndarray]:
    pixel = np.array([[[10, 20, 30]]], np.uint8)
    Image.fromarray(pixel).save(folder / "one.png")
    return folder / "one.png", pixel


def _strip(shape: tuple[int, int]) -> Callable[[Path], tuple[Path, np.ndarray]]:
    def make(folder: Path) -> tuple[Path, np.ndarray]:
        pixels = RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)
        path = folder / f"strip_{shape[0]}x{shape[1]}.png"
        Image.fromarray(pixels).save(path)
        return path, pixels

    return make


CASES = {
    "1 (bilevel)": Case(_bilevel),
    "L": Case(_grey),
    "LA": Case(_grey_alpha, alpha=True),
    "P": Case(lambda folder: _palette(folder, False)),
    "P with transparency": Case(_palette_with_transparency, alpha=True),
    "RGBA": Case(_rgba, alpha=True),
    "I;16 (16-bit grey PNG)": Case(_grey16),
    "I;16B (16-bit grey TIFF)": Case(_grey16_big_endian),
    "16-bit RGB PNG": Case(_rgb16, tolerance=1),  # Pillow keeps the high byte: within 1 LSB of v / 257
    "16-bit RGBA PNG": Case(_rgba16, tolerance=1, alpha=True),
    "CMYK": Case(_cmyk, tolerance=1),
    "YCbCr": Case(_ycbcr, tolerance=1),
    "1x1": Case(_single_pixel),
    "1x4000": Case(_strip((1, 4000))),
    "4000x1": Case(_strip((4000, 1))),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_mode_is_read_as_rgb8_with_the_right_scaling(case: Case, tmp_path: Path) -> None:
    path, expected = case.make(tmp_path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == expected.shape
    difference = np.abs(image.astype(int) - expected.astype(int))
    assert difference.max() <= case.tolerance, f"off by up to {difference.max()} LSB"
    header = probe_image(path)
    assert (header.height, header.width) == expected.shape[:2]
    assert bool(header.notes) == case.alpha and all("alpha" in note for note in header.notes)


def test_a_16_bit_grey_image_spans_the_8_bit_range_instead_of_saturating(tmp_path: Path) -> None:
    # The case: convert("RGB") clipped every level above 255, so 99.6 % of the pixels became white.
    path, _ = _grey16(tmp_path)
    image = read_image(path)
    assert image.min() == 0 and image.max() == 255
    assert (image == 255).mean() < 0.01
    assert np.unique(image).size > 200  # a ramp, not two levels


def test_a_16_bit_grey_png_that_older_pillow_opens_as_mode_i_is_scaled_the_same() -> None:
    image = Image.fromarray(RAMP_16.astype(np.int32))
    image.format = "PNG"  # what Pillow releases before I;16 PNG support report for a 16-bit grey PNG
    np.testing.assert_array_equal(to_rgb8(image), grey3(RAMP_16_AS_8))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((32, 64, 3), np.uint8)  # stored 64 wide, 32 high: left half black, right half white
    stored[:, 32:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    image = read_image(tmp_path / "rotated.jpg")
    assert image.shape == (64, 32, 3)  # as viewers show it: 32 wide, 64 high
    assert image[:28].mean() < 10 and image[36:].mean() > 245  # the stored left half is now on top
    header = probe_image(tmp_path / "rotated.jpg")
    assert (header.width, header.height) == (32, 64)


@pytest.mark.parametrize(("mode", "pixels", "reason"), [
    ("I", RAMP_16.astype(np.int32) * 1000, "32-bit integer pixels (mode I)"),
    ("F", RAMP_16.astype(np.float32) / 65535, "32-bit float pixels (mode F)"),
])
def test_images_with_no_defined_white_level_are_refused_with_the_reason(
    mode: str, pixels: np.ndarray, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{mode}.tif"
    Image.fromarray(pixels, mode=mode).save(path)
    for read in (read_image, probe_image):
        with pytest.raises(SrExportError) as raised:
            read(path)
        message = str(raised.value)
        assert str(path) in message and reason in message and "save it as an 8- or 16-bit PNG" in message


def _truncated_png(path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:400])


# Files that are not readable images, each with what the one line must say.
UNREADABLE: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "empty file": ("empty.png", lambda path: path.write_bytes(b""), "is empty (0 bytes)"),
    "not an image": ("notes.jpg", lambda path: path.write_text("holiday notes\n"), "cannot read image"),
    "corrupt": ("noise.png", lambda path: path.write_bytes(RNG.bytes(2000)), "cannot read image"),
    "truncated": ("cut.png", _truncated_png, "cannot read image"),
    "a folder named like an image": ("album.png", lambda path: path.mkdir(), "is not a file"),
}


@pytest.mark.parametrize(("name", "make", "says"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_file_is_one_error_naming_it(
    name: str, make: Callable[[Path], None], says: str, tmp_path: Path
) -> None:
    make(tmp_path / name)
    with pytest.raises(SrExportError) as raised:
        read_image(tmp_path / name)
    assert str(tmp_path / name) in str(raised.value) and says in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_folder_named_like_an_image_is_refused_and_hidden_files_are_left_out(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"\0\5\26\7")  # macOS metadata beside a copied photo
    assert list_images(tmp_path) == [tmp_path / "a.png"]
    (tmp_path / "album.png").mkdir()
    with pytest.raises(SrExportError, match="album.png is named like an image but is not a file"):
        list_images(tmp_path)


# Through the command line: `sr-bench eval --dataset`, `sr-export check --images`, `--int8 --calib`.


def _dataset_of_odd_images(folder: Path) -> Path:
    """Every convertible mode large enough to score at x2, and the 8-bit image each must become."""
    hr = folder / "HR"
    hr.mkdir(parents=True)
    for make in (_grey16, _rgb16, _rgba, _cmyk, _ycbcr):
        path, expected = make(hr)
        Image.fromarray(expected).save(hr / f"{path.stem}_as_8bit.png")
    return folder


def test_eval_scores_each_odd_mode_exactly_as_its_8_bit_version(tmp_path: Path, sr_bench) -> None:
    dataset = _dataset_of_odd_images(tmp_path / "odd")
    result = sr_bench("eval", "--model", ESPCN, "--scale", "2", "--dataset", dataset, "--json", "-")
    assert result.code == 0, result.err
    scores = {image["name"]: image for image in json.loads(result.out)["images"]}
    assert len(scores) == 10
    for name in ("grey16", "rgba"):  # read exactly as their 8-bit versions
        assert scores[name] == {**scores[f"{name}_as_8bit"], "name": name}
    # Within 1 LSB of them (Pillow's high byte of 16-bit colour; its CMYK and YCbCr rounding): nearly the same.
    for name in ("rgb16", "cmyk", "ycbcr"):
        for metric in ("psnr_y", "psnr_rgb"):
            assert scores[name][metric] == pytest.approx(scores[f"{name}_as_8bit"][metric], abs=0.5)


BAD_DATASET_FILES: dict[str, tuple[str, Callable[[Path], None]]] = {
    **{kind: (name, make) for kind, (name, make, _) in UNREADABLE.items()},
    "1x1": ("dot.png", lambda path: Image.new("RGB", (1, 1)).save(path)),
    "1x4000": ("line.png", lambda path: Image.new("RGB", (4000, 1)).save(path)),
    "15x15 at x2": ("small.png", lambda path: Image.new("RGB", (15, 15)).save(path)),
    "float TIFF": ("depth.tif", lambda path: Image.new("F", (32, 32), 0.5).save(path)),
}


@pytest.mark.parametrize(("name", "make"), BAD_DATASET_FILES.values(), ids=BAD_DATASET_FILES.keys())
def test_eval_refuses_a_dataset_image_it_cannot_read_or_score_by_name(
    name: str, make: Callable[[Path], None], tmp_path: Path, sr_bench
) -> None:
    hr = tmp_path / "set" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(hr / "fine.png")
    make(hr / name)
    result = sr_bench("eval", "--model", ESPCN, "--scale", "2", "--dataset", tmp_path / "set")
    assert result.code == 2, result.err
    assert name in result.error()


@pytest.fixture(scope="module")
def espcn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr_export.export.onnx import ExportOptions, save_export
    from sr_export.models.loader import ModelRequest, load_model

    model = load_model(ModelRequest(ESPCN, scale=2))
    return save_export(model, ExportOptions(exporter="legacy", simplify=False), tmp_path_factory.mktemp("espcn")).path


def test_check_runs_on_odd_images_at_their_converted_values(espcn_onnx: Path, tmp_path: Path, sr_export) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for make in (_grey16, _palette_with_transparency, _strip((1, 400)), _single_pixel):
        make(folder)
    result = sr_export("check", espcn_onnx, "--images", folder, "--json", "-")
    assert result.code == 0, result.err
    inputs = {case["name"] for case in json.loads(result.out)["cases"]}
    assert inputs == {"grey16-16x64", "palette_transparent-4x8", "strip_1x400-1x256", "one-1x1"}


def test_check_refuses_a_float_image_in_images_by_name(espcn_onnx: Path, tmp_path: Path, sr_export) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    _grey16(folder)
    Image.new("F", (32, 32), 0.5).save(folder / "depth.tif")
    result = sr_export("check", espcn_onnx, "--images", folder)
    assert result.code == 2
    assert "depth.tif" in result.error() and "mode F" in result.error()


def _recipe(tmp_path: Path, folder: Path, size: int = 24) -> Path:
    recipe = tmp_path / "rec.toml"
    recipe.write_text(f'[source]\nimages = "{folder.as_posix()}"\n[patches]\nsize = {size}\ncount = 2\n',
                      encoding="utf-8")
    return recipe


# Calibration folders that cannot give a patch, and what the one line names.
BAD_CALIBRATION_FOLDERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (lambda folder: None, "calibration image folder not found"),
    "empty but for notes": (lambda folder: folder.mkdir() or (folder / "README.txt").write_text("x"),
                            "no calibration images"),
    "one 1x1 image": (lambda folder: folder.mkdir() or Image.new("RGB", (1, 1)).save(folder / "dot.png"),
                      "dot.png (1x1)"),
    "a text file named x.png": (lambda folder: folder.mkdir() or (folder / "x.png").write_text("hello"), "x.png"),
    "an empty x.png": (lambda folder: folder.mkdir() or (folder / "x.png").write_bytes(b""), "x.png"),
    "a folder named x.png": (lambda folder: (folder / "x.png").mkdir(parents=True), "x.png"),
    "a float TIFF": (lambda folder: folder.mkdir() or Image.new("F", (64, 64)).save(folder / "d.tif"), "mode F"),
}


@pytest.mark.parametrize(("make", "says"), BAD_CALIBRATION_FOLDERS.values(), ids=BAD_CALIBRATION_FOLDERS.keys())
def test_a_bad_calibration_folder_fails_before_the_model_is_even_loaded(
    make: Callable[[Path], None], says: str, tmp_path: Path, sr_export
) -> None:
    folder = tmp_path / "calib"
    make(folder)
    output = tmp_path / "out.onnx"
    result = sr_export("onnx", "--model", MISSING_MODEL, "--scale", "2", "--int8", "--calib",
                       _recipe(tmp_path, folder), "-o", output)
    assert result.code == 2
    assert says in result.error() and "no_such_model" not in result.error()
    assert not output.exists()


def test_a_1x1_calibration_image_is_a_one_line_refusal_not_an_internal_error(tmp_path: Path, sr_export) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    output = tmp_path / "out.onnx"
    result = sr_export("onnx", "--model", ESPCN, "--scale", "2", "--int8", "--calib", _recipe(tmp_path, folder),
                       "-o", output)
    assert result.code == 2
    assert "no image in calibration folder" in result.error() and "dot.png (1x1)" in result.error()
    assert not output.exists()


def test_calibration_images_too_small_at_the_models_scale_fail_before_the_export(
    tmp_path: Path, sr_export, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --scale (ESPCN's own default is x3): the first check cannot know it, so the build checks again
    # before exporting.
    monkeypatch.setattr("sr_export.bench.build._export", lambda *args: pytest.fail("exported before the check"))
    folder = tmp_path / "calib"
    folder.mkdir()
    Image.fromarray(RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "photo.png")
    output = tmp_path / "out.onnx"
    result = sr_export("onnx", "--model", ESPCN, "--int8", "--calib", _recipe(tmp_path, folder), "-o", output)
    assert result.code == 2
    assert "after x3 downscaling" in result.error() and "photo.png (40x40)" in result.error()
    assert not output.exists()


def test_a_truncated_calibration_image_is_found_before_the_export(
    tmp_path: Path, sr_export, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its header reads fine; its pixels are decoded (to compare with the evaluation images) before the export.
    monkeypatch.setattr("sr_export.bench.build._export", lambda *args: pytest.fail("exported before the check"))
    folder = tmp_path / "calib"
    folder.mkdir()
    _truncated_png(folder / "cut.png")
    output = tmp_path / "out.onnx"
    result = sr_export("onnx", "--model", ESPCN, "--scale", "2", "--int8", "--calib", _recipe(tmp_path, folder),
                       "-o", output)
    assert result.code == 2
    assert "cannot read image" in result.error() and "cut.png" in result.error()
    assert not output.exists()


def test_a_too_small_calibration_image_beside_usable_ones_is_skipped_with_a_warning(
    tmp_path: Path, sr_export
) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / "photo.png")
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    Image.new("RGBA", (64, 64)).save(folder / "sticker.png")
    result = sr_export("onnx", "--model", MISSING_MODEL, "--scale", "2", "--int8", "--calib",
                       _recipe(tmp_path, folder), "-o", tmp_path / "out.onnx")
    warnings = " ".join(result.err.split())  # the console wraps long lines
    assert "warning: calibration image dot.png (1x1) is smaller than" in warnings and "skipped" in warnings
    assert "warning: calibration image sticker.png: its alpha channel" in warnings
    assert "no_such_model" in result.error()  # the warnings came before the model was loaded


def test_int8_report_checks_the_calibration_folder_before_loading_the_model(tmp_path: Path, sr_bench) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    result = sr_bench("int8-report", "--model", MISSING_MODEL, "--scale", "2", "--calib", _recipe(tmp_path, folder),
                      "--dataset", "builtin", "-o", tmp_path / "out")
    assert result.code == 2 and "no calibration images" in result.error()
    assert not (tmp_path / "out").exists()
