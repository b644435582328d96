"""A real OpenSSH server on 127.0.0.1 for the remote-device tests (import its fixtures).

The tests start it with a throw-away host key and client key, log in as the
current user, and use a separate folder as the "device". Nothing is mocked:
sr-bench talks to it with the ordinary ssh client. ``make ci-deps`` installs
openssh-server where it is missing.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def why_no_sshd() -> str | None:
    if not SSHD.is_file():
        return f"{SSHD} is missing (install openssh-server: make ci-deps)"
    for tool in ("ssh", "ssh-keygen"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"the OpenSSH client tool {tool} is missing (install openssh-client)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (the per-connection sshd children and what they run)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class SshServer:
    folder: Path
    port: int
    alias: str
    config: Path  # client config (ssh -F) defining the alias
    key: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.folder / 'host_key'}\n"
            f"PidFile {self.folder / 'sshd.pid'}\nAuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n"
            # bash sources ~/.bashrc for a top-level shell run by sshd; SHLVL=1 makes the session's shell level 2,
            # so the test machine's rc files stay out of the device under test. Without it, pyenv's rehash in
            # root's .bashrc ran in every session, and a test killing a session mid-rehash left its lock behind:
            # every later login on the machine then waited 60 s for it.
            "SetEnv SHLVL=1\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
        self.process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / "sshd.log", "ab"), start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not start listening within 10 s")

    def config_with_alias(self, alias: str, path: Path) -> Path:
        """A client config naming this server ``alias`` (quoted, so any characters may appear)."""
        text = self.config.read_text().splitlines()
        path.write_text("\n".join([f'Host "{alias}"', *text[1:]]) + "\n")
        return path

    def kill(self) -> None:
        """Kill the server and every session it serves, as a crash or a pulled cable would end them."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def make_server(folder: Path, alias: str = "sr-device") -> SshServer:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = _free_port()
    config = folder / "ssh_config"
    config.write_text(
        f'Host "{alias}"\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n'
        f"  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile {folder / 'known_hosts'}\n  LogLevel ERROR\n"
    )
    server = SshServer(folder, port, alias, config, folder / "client_key")
    server.start()
    return server


def _server_or_skip(folder: Path, alias: str = "sr-device") -> SshServer:
    reason = why_no_sshd()
    if reason:
        pytest.skip(f"no OpenSSH server to test the remote path against: {reason}")
    return make_server(folder, alias)


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory):
    """One sshd for the session's remote tests; stopped at the end."""
    server = _server_or_skip(tmp_path_factory.mktemp("sshd"))
    yield server
    server.kill()


@pytest.fixture(scope="session")
def second_ssh_server(tmp_path_factory: pytest.TempPathFactory):
    """Another sshd on 127.0.0.1, with its own port, host key and client key: a second device."""
    server = _server_or_skip(tmp_path_factory.mktemp("sshd2"), alias="sr-device-2")
    yield server
    server.kill()


@pytest.fixture
def doomed_ssh_server(tmp_path: Path):
    """An sshd of its own, for a test that kills it mid-run."""
    server = _server_or_skip(tmp_path / "sshd")
    yield server
    server.kill()
