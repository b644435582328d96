"""Side Python environments with the oldest runtimes sr-export's files must run on, made once and cached.

``tflite-runtime`` 2.14 (the last wheel of that package, what Raspberry Pi and
Coral images carry) needs numpy < 2, so it cannot live in the test
environment; neither can the oldest ONNX Runtime the project supports. Each
gets a virtual environment under ``build/side-envs/`` (ignored by git; set
SR_EXPORT_SIDE_ENVS to put them elsewhere), created from the package
registry on first use (some seconds) and reused while its requirements are
unchanged. A file lock keeps two pytest workers from building one at once.
The environments hold numpy and the runtime only, as a board does: the
artifact runs there through sr-export's self-contained device runner
(:mod:`sr_export.runtimes.elsewhere`).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# name -> (requirements, the newest Python the runtime has wheels for)
SIDE_ENVS: dict[str, tuple[tuple[str, ...], tuple[int, int]]] = {
    "tflite-runtime-2.14": (("tflite-runtime==2.14.0", "numpy<2"), (3, 11)),
    "onnxruntime-1.18": (("onnxruntime==1.18.0", "numpy<2"), (3, 12)),
    "onnxruntime-1.15": (("onnxruntime==1.15.1", "numpy<2"), (3, 11)),
}


def side_envs_folder() -> Path:
    return Path(os.environ.get("SR_EXPORT_SIDE_ENVS", REPO / "build" / "side-envs"))


def side_python(name: str) -> Path:
    """The python of side environment ``name``, created (or re-created for changed requirements) on first use."""
    requirements, newest = SIDE_ENVS[name]
    if sys.version_info[:2] > newest:
        pytest.skip(f"{requirements[0]} has no wheels for Python {sys.version_info[0]}.{sys.version_info[1]} "
                    f"(newest: {newest[0]}.{newest[1]})")
    if not sys.platform.startswith("linux"):
        pytest.skip(f"{requirements[0]} is tested on Linux only (its wheels for this platform are not checked)")
    folder = side_envs_folder() / name
    python = folder / "bin" / "python"
    ready = folder / ".requirements"
    wanted = "\n".join(requirements)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.is_file() and ready.read_text() == wanted and python.is_file():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               *requirements], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"could not create the {name} side environment: {done.stderr.strip().splitlines()[-1:]}")
        ready.write_text(wanted)
    return python


@pytest.fixture(scope="session")
def tflite_214_python() -> Path:
    """A Python with tflite-runtime 2.14.0 and numpy < 2 only."""
    return side_python("tflite-runtime-2.14")


@pytest.fixture(scope="session")
def oldest_onnxruntime_python() -> Path:
    """A Python with the oldest ONNX Runtime sr-export supports (pyproject: onnxruntime>=1.18) and numpy < 2."""
    return side_python("onnxruntime-1.18")


@pytest.fixture(scope="session")
def onnxruntime_115_python() -> Path:
    """A Python with ONNX Runtime 1.15.1 (the oldest the files' metadata names) and numpy < 2."""
    return side_python("onnxruntime-1.15")
