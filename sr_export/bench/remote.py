"""Running the device runner on a device: this machine, or one reached with OpenSSH.

The OpenSSH client is used (not a Python SSH stack) so the user's own
``~/.ssh/config`` applies: host aliases, ProxyJump, agents, keys. Every
profile value that reaches the remote shell is quoted with :func:`shlex.quote`
and every local command is an argument list, so host names and folders with
``;``, spaces or ``$(...)`` are data, never code.

A run copies the artifacts, ``device_runner.py`` and the runtime's device
session module (declared by the runtime plugin) into a fresh folder under the
profile's working directory, runs it, streams its ``@progress`` lines, reads
the one JSON result it prints at the end, and removes the folder.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_export.core.errors import SrExportError
from sr_export.runtimes.base import DeviceSession
from sr_export.targets.profiles import DeviceAccess

RUNNER = Path(__file__).with_name("device_runner.py")
_CHUNK = 1 << 20

Progress = Callable[[str], None]


class DeviceError(SrExportError):
    """The device could not be reached, or the run on it did not finish."""


@dataclass(frozen=True)
class SshDevice:
    access: DeviceAccess

    @property
    def label(self) -> str:
        return f"{self.access.user + '@' if self.access.user else ''}{self.access.host}"

    def ssh_args(self, remote_command: str) -> list[str]:
        args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.access.connect_timeout_s}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-T"]
        if self.access.ssh_config is not None:
            args += ["-F", str(self.access.ssh_config)]
        if self.access.port:
            args += ["-p", str(self.access.port)]
        if self.access.key:
            args += ["-i", str(self.access.key), "-o", "IdentitiesOnly=yes"]
        if self.access.user:
            args += ["-l", self.access.user]
        # '--' ends ssh's options: the host is never read as one.
        return [*args, "--", str(self.access.host), remote_command]

    def _check(self, remote_command: str, what: str, *, stdin: Any = None, timeout: float = 60,
               hint_on_timeout: str = "") -> str:
        try:
            done = subprocess.run(self.ssh_args(remote_command), stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise DeviceError("the OpenSSH client 'ssh' is not installed (apt-get install openssh-client)") from exc
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(f"{what} on {self.label} timed out after {timeout:.0f} s{hint_on_timeout}") from exc
        if done.returncode != 0:
            raise DeviceError(f"{what} on {self.label} failed: {_ssh_reason(done.returncode, done.stderr)}")
        return done.stdout.decode(errors="replace")

    def make_dir(self, folder: str) -> None:
        self._check(f"mkdir -p -- {remote_path(folder)}", "creating the working folder")

    def copy(self, source: Path, folder: str, progress: Callable[[int, int], None] | None = None,
             name: str | None = None) -> None:
        """Stream ``source`` to ``folder`` on the device (as ``name``); a cut copy never leaves a file under the
        final name."""
        name = name or source.name
        target = remote_path(f"{folder.rstrip('/')}/{name}")
        partial = remote_path(f"{folder.rstrip('/')}/.{name}.part")
        command = f"cat > {partial} && mv -f -- {partial} {target}"
        try:
            proc = subprocess.Popen(self.ssh_args(command), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
        except FileNotFoundError as exc:
            raise DeviceError("the OpenSSH client 'ssh' is not installed (apt-get install openssh-client)") from exc
        total, sent = source.stat().st_size, 0
        try:
            with source.open("rb") as handle:
                assert proc.stdin is not None
                while chunk := handle.read(_CHUNK):
                    proc.stdin.write(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(sent, total)
        except BrokenPipeError:
            pass  # the exit status below says why
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except BrokenPipeError:
                pass
        try:
            proc.wait(timeout=max(60.0, total / 1e6))
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise DeviceError(f"copying {source.name} to {self.label} timed out") from exc
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
        if proc.returncode != 0:
            raise DeviceError(f"copying {source.name} to {self.label} failed: {_ssh_reason(proc.returncode, err)}")

    def remove_dir(self, folder: str) -> None:
        self._check(f"rm -rf -- {remote_path(folder)}", "removing the working folder", timeout=30)

    def run_runner(self, folder: str, python: str, progress: Progress | None, timeout: float) -> dict[str, Any]:
        command = f"cd {remote_path(folder)} && exec {shlex.quote(python)} device_runner.py job.json"
        return _stream(self.ssh_args(command), progress, timeout, where=self.label, ssh=True)


def preflight(access: DeviceAccess) -> None:
    """Fail in seconds, before any export, when the device cannot be reached or has no such Python."""
    if not access.is_remote:
        return
    device = SshDevice(access)
    # ssh gives up on connecting after connect_timeout_s itself; a run past that connected and then stalled.
    found = device._check(f"command -v {shlex.quote(access.python)} || echo MISSING", "reaching the device",
                          timeout=access.connect_timeout_s + 30,
                          hint_on_timeout=" (ssh connected but no answer came; try 'ssh <host> true': a login "
                                          "shell stuck in its start-up files, e.g. ~/.bashrc, does this)")
    if found.strip().endswith("MISSING"):
        raise DeviceError(f"{device.label} has no '{access.python}' on its PATH (device.python in the profile)")


def device_identity(access: DeviceAccess) -> str:
    """The device a profile reaches, as ``user@host:port`` once ssh has applied its configuration.

    ``ssh -G`` prints that configuration and connects nowhere, so two aliases of one board come out as
    one device and two ports on one address as two. Where ssh cannot say, the profile's own fields do.
    """
    if not access.is_remote:
        return "this machine"
    args = SshDevice(access).ssh_args("")[:-1]  # every option and the host, no remote command
    settings: dict[str, str] = {}
    try:
        done = subprocess.run([args[0], "-G", *args[1:]], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0:
        for line in done.stdout.splitlines():
            key, _, value = line.partition(" ")
            settings.setdefault(key.lower(), value.strip())
    host = settings.get("hostname") or access.host
    port = settings.get("port") or access.port or 22
    user = settings.get("user") or access.user
    return f"{user + '@' if user else ''}{host}:{port}"


def remote_path(path: str) -> str:
    """``path`` quoted for a POSIX shell; a leading ``~/`` still means the remote home folder."""
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _ssh_reason(code: int, stderr: bytes | str) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "no message"
    if code == 255:
        return f"ssh could not connect or lost the connection ({last})"
    return f"exit status {code} ({last})"


def _stream(args: Sequence[str], progress: Progress | None, timeout: float, *, where: str,
            ssh: bool, cwd: Path | None = None) -> dict[str, Any]:
    """Run the device runner, forward its progress lines, and return its JSON result."""
    try:
        proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=cwd)
    except FileNotFoundError as exc:
        raise DeviceError(f"cannot start {args[0]}: {exc.strerror}") from exc
    other_lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("@progress ") and progress is not None:
                progress(line[len("@progress "):].strip())
            elif line.strip():
                other_lines.append(line.strip())

    chunks: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        chunks.append(proc.stdout.read())

    # Each pipe has exactly one reader: communicate() would read stderr too, racing read_stderr for the
    # progress lines and for the last line that says why a run stopped.
    readers = [threading.Thread(target=read, daemon=True) for read in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise DeviceError(f"the run on {where} did not finish within {timeout:.0f} s (bench.timeout_s)") from exc
    finally:
        if proc.poll() is None:  # Ctrl-C or another error while waiting: do not leave the run behind
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None and not any(r.is_alive() for r in readers):
                pipe.close()
    stdout = "".join(chunks)
    lines = [line for line in stdout.splitlines() if line.strip()]
    result: dict[str, Any] | None = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if isinstance(result, dict) and result.get("ok") is False:
        raise DeviceError(f"on {where}: {result.get('error')}")
    if proc.returncode == 255 and ssh:
        raise DeviceError(f"lost the connection to {where} during the run: {_ssh_reason(255, chr(10).join(other_lines))}")
    if proc.returncode != 0 or not isinstance(result, dict):
        last = other_lines[-1] if other_lines else "no output"
        raise DeviceError(f"the device runner on {where} stopped (exit status {proc.returncode}): {last}")
    return result


# The device runner once named TensorRT's side after its tool.
_RUNTIME_ALIASES = {"trtexec": "tensorrt"}


def device_session(runtime: str) -> DeviceSession:
    """The runtime's device-side session (from its descriptor); a one-line error for runtimes without one."""
    from sr_export.runtimes.registry import get_runtime

    name = _RUNTIME_ALIASES.get(runtime, runtime)
    session = get_runtime(name).device_session
    if session is None:
        raise SrExportError(f"the {name} runtime has no device session: sr-bench cannot time its artifacts on a "
                            "device; time them where their runtime lives (sr-bench speed --artifact on that machine)")
    return session


def job_document(*, runtime: str, artifact: str, precision: str, sizes: Sequence[tuple[int, int]], warmup: int,
                 runs: int, threads: int | None, scale: int, in_channels: int, data_range: float,
                 input_name: str = "input", plan: Sequence[tuple[tuple[int, int], str]] | None = None,
                 session_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the device runner does: which session runs which artifact at which sizes, and how often.

    ``plan`` pairs each size with its own artifact (fixed-size formats: one file per size); by
    default ``artifact`` runs at every size. ``session_params`` go to the runtime's session.
    """
    session = device_session(runtime)
    source = session.file()
    entries = plan if plan is not None else [(tuple(size), artifact) for size in sizes]
    return {"runtime": runtime, "artifact": artifact, "precision": precision, "sizes": [list(s) for s in sizes],
            "plan": [{"size": list(size), "artifact": name} for size, name in entries],
            "warmup": warmup, "runs": runs, "threads": threads, "scale": scale, "in_channels": in_channels,
            "data_range": data_range, "input_name": input_name,
            "session": {"file": f"session_{_RUNTIME_ALIASES.get(runtime, runtime)}.py", "class": session.cls,
                        "params": {**session.params, **(session_params or {})}},
            "session_source": str(source)}


def device_runtime(access: DeviceAccess, runtime: str) -> str | None:
    """The release of ``runtime`` the device's Python has ("tflite_runtime 2.14.0"), as the runtime's own probe
    says it; None where the runtime is not asked (no probe) or the device has none."""
    from sr_export.runtimes.registry import get_runtime, runtime_names

    probe = get_runtime(runtime).version_probe if runtime in runtime_names() else None
    if probe is None:
        return None
    if access.is_remote:
        found = SshDevice(access)._check(f"{shlex.quote(access.python)} -c {shlex.quote(probe)}",
                                         "asking the runtime version", timeout=access.connect_timeout_s + 60)
    else:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
        found = done.stdout
    lines = found.strip().splitlines()
    return lines[-1].strip() if lines else None


def refuse_too_new(artifacts: Sequence[Path], found: str | None, where: str, runtime: str) -> None:
    """One line, before anything is copied, when the device's runtime is older than an artifact needs."""
    from sr_export.core.artifacts import read_metadata
    from sr_export.runtimes.registry import get_runtime

    if not found:
        return
    for path in artifacts:
        metadata = read_metadata(path)
        reason = get_runtime(runtime).too_old_for(metadata.runtime_requirements, found) if metadata else None
        if reason:
            raise DeviceError(f"{path.name} cannot run on {where}: it {reason}")


def run_on_device(access: DeviceAccess, artifacts: Path | Sequence[Path], job: dict[str, Any], *, timeout: float,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Copy the artifacts, the runner and the runtime's session to the device, run ``job`` there, clean up.

    First the device is asked which version of the runtime it has; an artifact that needs a newer one
    stops the run there, in one line, before anything is copied."""
    artifacts = [artifacts] if isinstance(artifacts, Path) else list(artifacts)
    where = SshDevice(access).label if access.is_remote else "this machine"
    runtime = str(job.get("runtime", ""))
    refuse_too_new(artifacts, device_runtime(access, runtime), where, runtime)
    job = dict(job)
    session = Path(job.pop("session_source"))
    session_name = job["session"]["file"]
    if "artifact" in job and len(artifacts) == 1:
        job["artifact"] = artifacts[0].name
    files = [(artifact, artifact.name) for artifact in artifacts] + [(session, session_name)]
    if not access.is_remote:
        with tempfile.TemporaryDirectory(prefix="sr-bench-run-") as folder:
            work = Path(folder)
            for source, name in files:
                (work / name).symlink_to(source.resolve())
            (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
            # A copy, as a device gets: run from sr_export/bench/, its modules (profile.py) would shadow the
            # standard library's for everything the runtime imports.
            shutil.copyfile(RUNNER, work / RUNNER.name)
            args = [sys.executable, str(work / RUNNER.name), str(work / "job.json")]
            return _stream(args, progress, timeout, where="this machine", ssh=False, cwd=work)
    device = SshDevice(access)
    folder = f"{access.workdir.rstrip('/')}/run-{uuid.uuid4().hex[:12]}"
    say = progress or (lambda _text: None)
    say(f"connecting to {device.label}")
    device.make_dir(folder)
    try:
        with tempfile.TemporaryDirectory(prefix="sr-bench-job-") as local:
            job_file = Path(local) / "job.json"
            job_file.write_text(json.dumps(job), encoding="utf-8")
            for source, name in [(RUNNER, RUNNER.name), (job_file, job_file.name), *files]:
                device.copy(source, folder, lambda sent, total, name=name:
                            say(f"copying {name} {sent / 1e6:.1f}/{total / 1e6:.1f} MB"), name=name)
        return device.run_runner(folder, access.python, progress, timeout)
    finally:
        try:
            device.remove_dir(folder)
        except DeviceError:
            pass  # the connection is gone; the run's own error says so
