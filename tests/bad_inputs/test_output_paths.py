"""Bad-input matrix, output paths: every command that writes x every kind of path it must not write.

A file sr-export did not write is replaced only with ``--force``; a device,
a pipe or a folder in the way never; a read-only file only with ``--force``.
Each refusal is one ``error:`` line naming the path, exit status 2, and the
folder is left exactly as it was. A new writing command joins with one line in
``WRITERS``.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
TINY = ["--model", f"{ESPCN}:ESPCN", "--scale", "2", "--model-kwargs", '{"width": 16}']

# Commands that write a file: (tool fixture, argv with {out} (the path under test) and {onnx} (a valid
# artifact), the suffix the output has).
WRITERS: dict[str, tuple[str, list[str], str]] = {
    "onnx -o": ("sr_export", ["onnx", *TINY, "-o", "{out}"], ".onnx"),
    "tflite -o": ("sr_export", ["tflite", *TINY, "--shape", "16x16", "-o", "{out}"], ".tflite"),
    "coreml -o": ("sr_export", ["coreml", *TINY, "-o", "{out}"], ".mlpackage"),
    "trt -o": ("sr_export", ["trt", *TINY, "--shape", "16x16", "-o", "{out}"], ".engine"),
    "build -o": ("sr_export", ["build", "--from", "{onnx}", "--target", "cpu", "-o", "{out}"], ".onnx"),
    "info --json": ("sr_export", ["info", "{onnx}", "--json", "{out}"], ".json"),
    "check --junit": ("sr_export", ["check", "{onnx}", "--junit", "{out}"], ".xml"),
    "check --json": ("sr_export", ["check", "{onnx}", "--json", "{out}"], ".json"),
    "speed --plot": ("sr_bench", ["speed", "--artifact", "{onnx}", "--sizes", "16x16", "--runs", "1",
                                  "--no-pytorch", "--plot", "{out}"], ".png"),
    "history --json": ("sr_bench", ["history", "--db", "{db}", "--json", "{out}"], ".json"),
}


def _foreign_file(path: Path) -> Path:
    path.write_text("the user's own notes\n")
    return path


def _folder_in_the_way(path: Path) -> Path:
    path.mkdir()
    (path / "keep.txt").write_text("the user's\n")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _device(path: Path) -> Path:
    """A character device: a null device of the test's own where allowed (root), so a writer that wrongly
    replaced it could never take the machine's /dev/null with it; elsewhere /dev/null, which no user may replace."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return Path("/dev/null")
    return path


def _read_only_of_ours(path: Path) -> Path:
    """A file sr-export wrote (recorded in its ledger), then made read-only by its owner."""
    from sr_export.core.provenance import record_written

    path.write_text("written by sr-export\n")
    record_written(path)
    path.chmod(0o444)
    return path


# What can be in the way: (a path in a fresh folder) -> the path to pass.
FAULTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "a file sr-export did not write": (_foreign_file, "--force"),
    "a folder": (_folder_in_the_way, "folder"),
    "a fifo": (_fifo, "not a regular file"),
    "a device": (_device, "not a regular file"),
    "a read-only file": (_read_only_of_ours, "read-only"),
}


@pytest.fixture(scope="module")
def valid_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr_export import api

    model = api.load_model(f"{ESPCN}:ESPCN", scale=2, kwargs={"width": 16})
    return api.build(model, "cpu", tmp_path_factory.mktemp("valid") / "m.onnx", check=False).path


def _snapshot(folder: Path) -> dict[str, tuple[str, int, int, int]]:
    entries = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        kind = "dir" if path.is_dir() else "file" if path.is_file() else "other"
        entries[str(path.relative_to(folder))] = (kind, info.st_size, info.st_mtime_ns, info.st_mode)
    return entries


def _args(argv: list[str], out: Path, onnx: Path, folder: Path) -> list[str]:
    fields = {"{out}": str(out), "{onnx}": str(onnx), "{db}": str(folder / "history.sqlite")}
    return [fields.get(a, a) for a in argv]


def _is_folder_output(suffix: str) -> bool:
    return suffix == ".mlpackage"


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("writer", WRITERS)
def test_what_must_not_be_replaced_is_refused_in_one_line_and_left_as_it_was(
    writer: str, fault: str, valid_onnx: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tool, argv, suffix = WRITERS[writer]
    make, says = FAULTS[fault]
    if fault == "a folder" and _is_folder_output(suffix):
        says = "--force"  # a folder output: a folder that is not sr-export's
    out = make(tmp_path / f"out{suffix}")
    before = _snapshot(tmp_path)
    result = request.getfixturevalue(tool)(*_args(argv, out, valid_onnx, tmp_path))
    message = result.error()
    assert result.code == 2, result.err
    assert str(out) in message and says in message
    after = {k: v for k, v in _snapshot(tmp_path).items() if k != "history.sqlite"}
    assert after == before


def test_force_replaces_a_file_sr_export_did_not_write(valid_onnx: Path, tmp_path: Path, sr_export) -> None:
    out = _foreign_file(tmp_path / "meta.json")
    assert sr_export("info", valid_onnx, "--json", out).code == 2
    assert out.read_text() == "the user's own notes\n"
    result = sr_export("info", valid_onnx, "--json", out, "--force")
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["model"] == "espcn"


def test_a_file_sr_export_wrote_is_replaced_without_force(valid_onnx: Path, tmp_path: Path, sr_export) -> None:
    out = tmp_path / "meta.json"
    assert sr_export("info", valid_onnx, "--json", out).code == 0
    result = sr_export("info", valid_onnx, "--json", out)
    assert result.code == 0, result.err


def test_a_file_changed_since_sr_export_wrote_it_is_the_users(valid_onnx: Path, tmp_path: Path, sr_export) -> None:
    out = tmp_path / "meta.json"
    assert sr_export("info", valid_onnx, "--json", out).code == 0
    out.write_text('{"edited": "by the user"}\n')
    result = sr_export("info", valid_onnx, "--json", out)
    assert result.code == 2 and "--force" in result.error()
    assert json.loads(out.read_text()) == {"edited": "by the user"}


def test_an_artifact_copied_from_elsewhere_counts_as_sr_exports(valid_onnx: Path, tmp_path: Path, sr_export) -> None:
    """Its embedded metadata says who wrote it, whatever the ledger on this machine knows."""
    out = tmp_path / "m.onnx"
    out.write_bytes(valid_onnx.read_bytes())
    result = sr_export("build", "--from", valid_onnx, "--target", "cpu", "--no-check", "-o", out)
    assert result.code == 0, result.err


def test_the_onnx_export_beside_an_engine_never_replaces_the_users_file(tmp_path: Path, sr_export,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's row: `echo data > imdn_x2.onnx; sr-export trt W --shape 48x48` replaced the user's file."""
    monkeypatch.chdir(tmp_path)
    users = _foreign_file(tmp_path / "espcn_x2_16x16.onnx")  # a fixed-size export's name carries its size
    result = sr_export("trt", *TINY, "--shape", "16x16")
    assert result.code == 2 and "espcn_x2_16x16.onnx" in result.error() and "--force" in result.error()
    assert users.read_text() == "the user's own notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["espcn_x2_16x16.onnx"]


def test_outputs_are_checked_before_the_model_is_loaded(tmp_path: Path, sr_export) -> None:
    """`sr-export coreml -o existing-file.mlpackage` used to fail after half a minute of conversion."""
    out = _foreign_file(tmp_path / "m.mlpackage")
    result = sr_export("coreml", "--model", "no-such-model", "-o", out)
    assert result.code == 2 and str(out) in result.error()  # not "unknown model": the output came first


def test_a_size_limited_disk_names_the_file_and_leaves_nothing(valid_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "big.onnx"

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # the graph is about 16 KiB

    done = subprocess.run(
        [sys.executable, "-c", "import sys; from sr_export.cli.export_cli import main; sys.exit(main(sys.argv[1:]))",
         "build", "--from", str(valid_onnx), "--target", "cpu",
         "--no-check", "-o", str(out)],
        preexec_fn=limit_file_size, capture_output=True, text=True, timeout=300, check=False,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, done.stderr
    assert errors == [f"error: cannot write {out}: File too large"], done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc file system here")
def test_a_folder_nothing_can_be_written_to_is_named(valid_onnx: Path, sr_export) -> None:
    # /proc refuses new files even to root: the build's scratch folder cannot be made there.
    result = sr_export("build", "--from", valid_onnx, "--target", "cpu", "-o", "/proc/sr-export-test.onnx")
    assert result.code == 2, result.err
    assert "cannot write into /proc" in result.error() and "-o" in result.error()
