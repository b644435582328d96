"""Running an artifact with another Python environment's runtime (``sr-export check --runtime-python PATH``).

A board's runtime is often older than the one sr-export proves with (the
last ``tflite-runtime`` is 2.14 and needs numpy < 2), and cannot be
installed beside it. :class:`ElsewhereRunner` starts that environment's
Python on the self-contained device runner (:mod:`sr_export.bench.device_runner`,
standard library and numpy only) in its serving mode, with the runtime
plugin's device session beside it: the same code sr-bench runs on a board.
Batches go to it as .npy files, one request per line; the runtime version
it reports names the runner.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.runtimes.base import Runner, Runtime

RUNNER = Path(__file__).resolve().parents[1] / "bench" / "device_runner.py"
REPLY = "@reply "


class ElsewhereRunner(Runner):
    """``runtime``'s device session for ``artifact``, run by the Python at ``python``."""

    def __init__(self, artifact: Artifact, runtime: Runtime, python: Path, threads: int | None = None) -> None:
        super().__init__()
        if runtime.device_session is None:
            raise SrExportError(f"the {runtime.name} runtime has no device session to run in another Python; "
                                "check it in this environment")
        if not Path(python).is_file():
            raise SrExportError(f"--runtime-python {python} is not a file; give the python executable of the "
                                "environment whose runtime should run the artifact")
        self.artifact, self.runtime, self.python, self.threads = artifact, runtime, Path(python), threads
        self.versions: dict[str, Any] = {}
        self.activate()
        where = self.versions.get("runtime") or runtime.name
        self.name = f"{runtime.name} ({where}, {self.python})"

    def _activate(self) -> None:
        session = self.runtime.device_session
        assert session is not None
        self._folder = Path(tempfile.mkdtemp(prefix="sr-export-elsewhere-"))
        shutil.copy(RUNNER, self._folder / RUNNER.name)
        shutil.copy(session.file(), self._folder / "session.py")
        job = {"mode": "serve", "runtime": self.runtime.name, "artifact": str(Path(self.artifact.path).resolve()),
               "threads": self.threads,
               "session": {"file": "session.py", "class": session.cls,
                           "params": {**session.params, **self.runtime.device_job(self.artifact, None)}}}
        (self._folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        self._stderr: IO[bytes] = open(self._folder / "stderr.txt", "wb")  # noqa: SIM115 - closed in _deactivate
        self._process = subprocess.Popen(
            [str(self.python), str(self._folder / RUNNER.name), str(self._folder / "job.json")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, cwd=self._folder)
        try:
            self.versions = dict(self._answer().get("versions") or {})
        except SrExportError:
            self._deactivate()
            raise

    def _answer(self) -> dict[str, Any]:
        """The runner's next reply; its one-line error as an SrExportError."""
        assert self._process.stdout is not None
        for line in self._process.stdout:
            text = line.strip()
            if text.startswith(REPLY):
                return dict(json.loads(text[len(REPLY):]))
            if text.startswith("{"):  # the runner's final error record
                record = json.loads(text)
                if not record.get("ok", False):
                    raise SrExportError(f"{self.python}: {record.get('error', 'the runner failed')}")
        self._process.wait()
        tail = (self._folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SrExportError(f"{self.python} stopped running {Path(self.artifact.path).name} "
                            f"(exit {self._process.returncode}): {tail[0]}")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        assert self._process.stdin is not None
        source, target = self._folder / "input.npy", self._folder / "output.npy"
        np.save(source, np.ascontiguousarray(batch, dtype=np.float32))
        self._process.stdin.write(json.dumps({"input": str(source), "output": str(target)}) + "\n")
        self._process.stdin.flush()
        self._answer()
        return np.load(target).astype(np.float32)

    def _deactivate(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._stderr.close()
        shutil.rmtree(self._folder, ignore_errors=True)
