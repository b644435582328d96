"""Bad-input matrix, artifact files: every command that reads an artifact x every format x every way a file goes bad.

Each case must end in exactly one ``error:`` line naming the file at fault,
exit status 2 (never 3, never a traceback), and leave the folder exactly as it
was: no file written, none changed. A new reading command joins with one line
in ``READERS``; a new format with one line in ``FORMATS``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"

# Commands that read an artifact: (tool fixture, argv with {artifact}, {good} (a valid ONNX) and {out}).
READERS: dict[str, tuple[str, list[str]]] = {
    "check": ("sr_export", ["check", "{artifact}"]),
    "check --against": ("sr_export", ["check", "{good}", "--against", "{artifact}"]),
    "info": ("sr_export", ["info", "{artifact}"]),
    "eval": ("sr_bench", ["eval", "--artifact", "{artifact}", "--dataset", "builtin"]),
    "speed": ("sr_bench", ["speed", "--artifact", "{artifact}", "--sizes", "16x16", "--runs", "1", "--no-pytorch"]),
    "trt --from": ("sr_export", ["trt", "--from", "{artifact}", "--shape", "16x16", "-o", "{out}/m.engine"]),
    "build --from": ("sr_export", ["build", "--from", "{artifact}", "--target", "cpu", "-o", "{out}"]),
}


def _build(target: str, name: str, **options: object) -> Callable[[Path, object], Path]:
    def make(folder: Path, model: object) -> Path:
        from sr_export import api

        return api.build(model, target, folder / name, check=False, **options).path

    return make


def _crafted_engine(folder: Path, model: object) -> Path:
    """No TensorRT here: an engine-sized blob with the sidecar sr-export writes beside real engines."""
    from sr_export.core.artifacts import ArtifactMetadata, write_sidecar

    path = folder / "m.engine"
    path.write_bytes(os.urandom(4096))
    write_sidecar(path, ArtifactMetadata.for_model(model, format="tensorrt-engine", backend="tensorrt",
                                                   runtimes=("tensorrt",), input_shape=(1, 3, 16, 16)))
    return path


# Every artifact format: how to make a valid one from a tiny model.
FORMATS: dict[str, Callable[[Path, object], Path]] = {
    "onnx": _build("cpu", "m.onnx"),
    "onnx-qdq": _build("cpu-int8", "q.onnx"),
    "tflite": _build("tflite", "m.tflite", shape="16x16"),
    "mlpackage": _build("coreml", "m.mlpackage"),
    "tensorrt-engine": _crafted_engine,
    "openvino-ir": _build("openvino-cpu", "m.xml"),
}
SIDECAR_FORMATS = ("tflite", "mlpackage", "tensorrt-engine", "openvino-ir")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sr_export import api

    model = api.load_model(f"{ESPCN}:ESPCN", scale=2, kwargs={"width": 16})
    folder = tmp_path_factory.mktemp("valid")
    return {name: make(folder, model) for name, make in FORMATS.items()}


def _other_format(artifacts: dict[str, Path], name: str) -> Path:
    return artifacts["tflite" if name.startswith("onnx") else "onnx"]


def _write_bytes(target: Path, data: bytes) -> None:
    target.write_bytes(data)


def _main_file(path: Path) -> Path:
    """The bytes that go bad: the file itself, or a folder artifact's largest file (its weights)."""
    return max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size) if path.is_dir() else path


# Ways an artifact file goes bad: (format, artifact path in a fresh folder, the valid set) -> None.
def _empty(name: str, path: Path, valid: dict[str, Path]) -> None:
    _write_bytes(_main_file(path), b"")


def _truncated(name: str, path: Path, valid: dict[str, Path]) -> None:
    target = _main_file(path)
    _write_bytes(target, target.read_bytes()[: target.stat().st_size // 2])


def _corrupt(name: str, path: Path, valid: dict[str, Path]) -> None:
    target = _main_file(path)
    data = bytearray(target.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 512] = bytes(range(256)) * 2
    data[:8] = b"\x00\xff" * 4
    _write_bytes(target, bytes(data))


def _wrong_format(name: str, path: Path, valid: dict[str, Path]) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    _write_bytes(path, _main_file(_other_format(valid, name)).read_bytes())


def _a_folder(name: str, path: Path, valid: dict[str, Path]) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.mkdir()
    (path / "readme.txt").write_text("not an artifact")


def _a_fifo(name: str, path: Path, valid: dict[str, Path]) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.mkfifo(path)


FILE_FAULTS: dict[str, Callable[[str, Path, dict[str, Path]], None]] = {
    "empty": _empty,
    "truncated": _truncated,
    "corrupt": _corrupt,
    "wrong format": _wrong_format,
    "a folder": _a_folder,
    "a fifo": _a_fifo,
}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sidecar_text(text: str) -> Callable[[str, Path, dict[str, Path]], None]:
    def fault(name: str, path: Path, valid: dict[str, Path]) -> None:
        _sidecar(path).write_text(text, encoding="utf-8")

    return fault


def _sidecar_edit(**changes: object) -> Callable[[str, Path, dict[str, Path]], None]:
    def fault(name: str, path: Path, valid: dict[str, Path]) -> None:
        document = json.loads(_sidecar(path).read_text())
        document.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del document[key]
        _sidecar(path).write_text(json.dumps(document))

    return fault


def _sidecar_missing(name: str, path: Path, valid: dict[str, Path]) -> None:
    _sidecar(path).unlink()


def _sidecar_binary(name: str, path: Path, valid: dict[str, Path]) -> None:
    _sidecar(path).write_bytes(bytes(range(256)))


# Metadata sidecars (formats without a metadata slot) that are missing, empty, not JSON or wrong in schema.
SIDECAR_FAULTS: dict[str, Callable[[str, Path, dict[str, Path]], None]] = {
    "missing": _sidecar_missing,
    "empty": _sidecar_text(""),
    "not json": _sidecar_text("{not json"),
    "binary": _sidecar_binary,
    "a list": _sidecar_text("[1, 2]"),
    "an empty object": _sidecar_text("{}"),
    "no scale": _sidecar_edit(scale=None),
    "scale not a number": _sidecar_edit(scale="x"),
    "scale zero": _sidecar_edit(scale=0),
    "data range NaN": _sidecar_edit(data_range=float("nan")),
    "content hash of another file": _sidecar_edit(content_sha256="0" * 64),
}


def _onnx_props(value: str) -> Callable[[str, Path, dict[str, Path]], None]:
    def fault(name: str, path: Path, valid: dict[str, Path]) -> None:
        import onnx

        proto = onnx.load(str(path))
        for prop in proto.metadata_props:
            if prop.key == "sr_export":
                prop.value = value
        onnx.save(proto, str(path))

    return fault


# The same for metadata embedded in ONNX files.
EMBEDDED_FAULTS: dict[str, Callable[[str, Path, dict[str, Path]], None]] = {
    "not json": _onnx_props("{not json"),
    "an empty object": _onnx_props("{}"),
    "a string": _onnx_props('"imdn"'),
}

CASES = (
    [(fmt, f"file {fault}", FILE_FAULTS[fault]) for fmt in FORMATS for fault in FILE_FAULTS]
    + [(fmt, f"sidecar {fault}", SIDECAR_FAULTS[fault]) for fmt in SIDECAR_FORMATS for fault in SIDECAR_FAULTS]
    + [(fmt, f"metadata {fault}", EMBEDDED_FAULTS[fault]) for fmt in ("onnx", "onnx-qdq") for fault in EMBEDDED_FAULTS]
)


def _snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``folder``: kind, size and modification time (a changed or new file shows)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "file" if path.is_file() else "other"
        entries[str(path.relative_to(folder))] = (kind, info.st_size if kind == "file" else 0, info.st_mtime_ns)
    return entries


@pytest.fixture
def bad_artifact(request: pytest.FixtureRequest, artifacts: dict[str, Path], tmp_path: Path):
    fmt, _label, fault = request.param
    folder = tmp_path / "case"
    folder.mkdir()
    valid = artifacts[fmt]
    for source in [valid, _sidecar(valid)]:
        if source.is_dir():
            shutil.copytree(source, folder / source.name)
        elif source.exists():
            shutil.copy2(source, folder / source.name)
    path = folder / valid.name
    fault(fmt, path, artifacts)
    return path


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("bad_artifact", CASES, indirect=True, ids=[f"{fmt}-{label}" for fmt, label, _ in CASES])
def test_a_bad_artifact_is_refused_in_one_line_and_nothing_changes(
    reader: str, bad_artifact: Path, artifacts: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tool, argv = READERS[reader]
    out = tmp_path / "out"
    before = _snapshot(tmp_path)
    args = [a.format(artifact=bad_artifact, good=artifacts["onnx"], out=out) for a in argv]
    result = request.getfixturevalue(tool)(*args)
    message = result.error()  # exactly one 'error:' line, no traceback
    assert result.code == 2, result.err
    assert bad_artifact.name in message
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_valid_artifacts_read_cleanly(fmt: str, artifacts: dict[str, Path], sr_export) -> None:
    """The control for the matrix above: what it breaks is readable before it is broken."""
    result = sr_export("info", artifacts[fmt], "--json", "-")
    assert result.code == 0, result.err
    assert json.loads(result.out)["format"] == fmt


def test_an_engine_without_tensorrt_is_exit_4_not_a_parse_error(artifacts: dict[str, Path], sr_export) -> None:
    result = sr_export("check", artifacts["tensorrt-engine"])
    assert result.code == 4, result.err
    assert "TensorRT" in result.error()


def test_debug_changes_what_is_printed_never_the_exit_status(
    artifacts: dict[str, Path], tmp_path: Path, sr_export, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    quiet = sr_export("check", empty)
    monkeypatch.setenv("SR_EXPORT_DEBUG", "1")
    loud = sr_export("check", empty)
    assert (quiet.code, loud.code) == (2, 2)
    assert "Traceback" in loud.err and "Traceback" not in quiet.err
    assert "is empty" in quiet.error()
