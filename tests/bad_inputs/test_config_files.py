"""Bad config files (calibration recipes, target profiles, benchmark suites) on every command that reads one:
one `error:` line naming the file and what is wrong with it, exit 2, before any model is loaded or exported,
nothing written, the file left as it was.

READERS maps each command that reads a config file to its arguments ({config} is the file); FAULTS are what
can be wrong with a file. A new command or config kind joins with one line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ESPCN = f"{REPO / 'tests' / 'fixtures' / 'espcn.py'}:ESPCN"


@dataclass(frozen=True)
class Kind:
    what: str  # how the messages call it
    valid: Path  # a bundled file the faults start from
    wrong_type: tuple[str, str, str]  # (text in the valid file, its replacement with a bad type, the key named)


KINDS = {
    "recipe": Kind("calibration recipe", REPO / "calibration" / "default.toml",
                   ("count = ", 'count = "many" #', "count")),
    "profile": Kind("target", REPO / "targets" / "cpu.toml", ("runs = ", 'runs = "ten" #', "runs")),
    "trt profile": Kind("target", REPO / "targets" / "trt-fp16.toml",
                        ("workspace_mb = ", 'workspace_mb = "lots" #', "workspace_mb")),
    "suite": Kind("suite", REPO / "benchmarks" / "suites" / "default.toml", ("scale = 2", 'scale = "two"', "scale")),
}

# (tool, arguments, kind): {config} is the bad file, {onnx} a real ONNX file.
READERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "onnx --int8 --calib": ("sr_export", ("onnx", "--model", ESPCN, "--int8", "--calib", "{config}",
                                          "-o", "out.onnx"), "recipe"),
    "build --calib": ("sr_export", ("build", "--from", "{onnx}", "--target", "cpu-int8", "--calib", "{config}",
                                    "-o", "out"), "recipe"),
    "trt --int8 --calib": ("sr_export", ("trt", "--from", "{onnx}", "--int8", "--calib", "{config}",
                                         "--shape", "16x16", "-o", "out.engine"), "recipe"),
    "tflite --int8 --calib": ("sr_export", ("tflite", "--model", ESPCN, "--int8", "--calib", "{config}",
                                            "-o", "out.tflite"), "recipe"),
    "int8-report --calib": ("sr_bench", ("int8-report", "--model", ESPCN, "--calib", "{config}",
                                         "--dataset", "builtin", "-o", "out"), "recipe"),
    "build --target": ("sr_export", ("build", "--from", "{onnx}", "--target", "{config}", "-o", "out"), "profile"),
    "trt --target": ("sr_export", ("trt", "--from", "{onnx}", "--target", "{config}", "-o", "out.engine"),
                     "trt profile"),
    "sr-bench --target": ("sr_bench", ("--target", "{config}", "-o", "out", "--no-history"), "profile"),
    "sr-bench --targets": ("sr_bench", ("--targets", "cpu,{config}", "-o", "out", "--no-history"), "profile"),
    "sr-bench --suite": ("sr_bench", ("--suite", "{config}", "-o", "out", "--no-history"), "suite"),
}


def _write(text: str | bytes) -> Callable[[Path, Kind], Path]:
    def make(path: Path, kind: Kind) -> Path:
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path
    return make


def _missing(path: Path, kind: Kind) -> Path:
    return path


def _folder(path: Path, kind: Kind) -> Path:
    path.mkdir()
    return path


def _fifo(path: Path, kind: Kind) -> Path:
    os.mkfifo(path)
    return path


def _edited(edit: Callable[[str], str]) -> Callable[[Path, Kind], Path]:
    def make(path: Path, kind: Kind) -> Path:
        path.write_text(edit(kind.valid.read_text()))
        return path
    return make


def _key_in_first_table(text: str) -> str:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("["))
    return "\n".join([*lines[: first + 1], "bogus_setting = 1", *lines[first + 1:]]) + "\n"


def _wrong_type(path: Path, kind: Kind) -> Path:
    old, new, _ = kind.wrong_type
    text = kind.valid.read_text()
    assert old in text, f"{kind.valid} changed: update KINDS"
    path.write_text(text.replace(old, new, 1))
    return path


# fault -> (make the file, what the message must say; "{key}": the kind's wrong-typed key)
FAULTS: dict[str, tuple[Callable[[Path, Kind], Path], str]] = {
    "missing": (_missing, "does not exist"),
    "empty": (_write(""), "is empty"),
    "blank": (_write("   \n"), "is empty"),
    "only comments": (_write("# name = \"mine\"\n"), "sets nothing"),
    "binary": (_write(bytes(range(256)) * 8), "not UTF-8"),
    "not TOML": (_write("name = \n[[[\n"), "not valid TOML"),
    "a folder": (_folder, "is a folder"),
    "a fifo": (_fifo, "not a regular file"),
    "unknown key": (_edited(lambda text: "bogus = 1\n" + text), "bogus"),
    "unknown table": (_edited(lambda text: text + "\n[bogus]\nx = 1\n"), "bogus"),
    "unknown key in a table": (_edited(_key_in_first_table), "bogus_setting"),
    "wrong type": (_wrong_type, "{key}"),
}


@pytest.fixture(scope="module")
def real_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr_export import api

    model = api.load_model(ESPCN, scale=2, kwargs={"width": 8})
    return api.build(model, "cpu", tmp_path_factory.mktemp("onnx") / "m.onnx", check=False).path


def _snapshot(folder: Path) -> dict[str, tuple[bool, int, int]]:
    return {str(p.relative_to(folder)): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("reader", READERS)
def test_a_bad_config_file_is_one_line_naming_it_before_any_work(
    reader: str, fault: str, real_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    tool, argv, kind_name = READERS[reader]
    kind = KINDS[kind_name]
    make, says = FAULTS[fault]
    says = says.replace("{key}", kind.wrong_type[2])
    monkeypatch.chdir(tmp_path)
    config = make(tmp_path / "config.toml", kind)
    before = _snapshot(tmp_path)
    fields = {"{onnx}": str(real_onnx)}
    args = [a.replace("{config}", str(config)) if "{config}" in a else fields.get(a, a) for a in argv]
    started = time.monotonic()
    result = request.getfixturevalue(tool)(*args)
    elapsed = time.monotonic() - started
    assert result.code == 2, result.err
    line = result.error()
    assert str(config) in line and says in line, line
    assert _snapshot(tmp_path) == before  # nothing written, the file untouched
    assert elapsed < 20, f"refused only after {elapsed:.0f} s: the file must be read before any export"


@pytest.mark.parametrize("kind", KINDS)
def test_the_valid_files_the_faults_start_from_are_valid(kind: str) -> None:
    from sr_export.bench.suite import load_suite
    from sr_export.quantize.recipes import load_recipe
    from sr_export.targets.profiles import load_profile

    loader = {"recipe": load_recipe, "profile": load_profile, "trt profile": load_profile, "suite": load_suite}
    assert loader[kind](str(KINDS[kind].valid)) is not None
