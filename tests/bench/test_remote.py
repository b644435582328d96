"""Remote devices over SSH, against a real sshd on 127.0.0.1 (nothing mocked).

The "device" is a separate folder whose path is full of shell syntax; its
runtime is this venv's Python with ONNX Runtime.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from sr_export.bench.remote import DeviceError, job_document, run_on_device
from sr_export.targets.profiles import load_profile

ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
NASTY = "dev ice; $(touch PWNED) `touch PWNED2`"


@pytest.fixture(scope="module")
def espcn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sr_export.export.onnx import ExportOptions, save_export
    from sr_export.models.loader import ModelRequest, load_model

    model = load_model(ModelRequest(f"{ESPCN}:ESPCN", scale=3))
    return save_export(model, ExportOptions(exporter="legacy"), tmp_path_factory.mktemp("espcn")).path


def write_profile(folder: Path, server, *, host: str | None = None, python: str = sys.executable,
                  runs: int = 2, timeout_s: int = 120) -> Path:
    device = folder / NASTY
    device.mkdir(parents=True, exist_ok=True)
    path = folder / "remote.toml"
    path.write_text(
        'name = "loopback"\nbackend = "onnxruntime"\n'
        f"[bench]\ninput_sizes = [\"16x16\"]\nwarmup = 1\nruns = {runs}\ntimeout_s = {timeout_s}\n"
        f"[device]\nkind = \"ssh\"\nhost = {json.dumps(host or server.alias)}\n"
        f"ssh_config = {json.dumps(str(server.config))}\nworkdir = {json.dumps(str(device))}\n"
        f"python = {json.dumps(python)}\nconnect_timeout_s = 5\n"
    )
    return path


def job(artifact: Path, runtime: str = "onnxruntime", runs: int = 2) -> dict:
    return job_document(runtime=runtime, artifact=artifact.name, precision="fp32", sizes=[(16, 16), (12, 20)],
                        warmup=1, runs=runs, threads=1, scale=3, in_channels=3, data_range=1.0)


def no_code_ran(folder: Path) -> bool:
    """No PWNED file appeared: where a local or remote shell would have run the injected command."""
    places = [*folder.rglob("PWNED*"), *Path.cwd().glob("PWNED*"), *Path.home().glob("PWNED*")]
    return not places


def test_a_run_over_ssh_copies_runs_collects_and_cleans_up(ssh_server, espcn_onnx: Path, tmp_path: Path) -> None:
    # The device's Python, reached through a folder full of shell syntax too.
    wrapper = tmp_path / "py $(touch PWNED); x" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    profile = load_profile(write_profile(tmp_path, ssh_server, python=str(wrapper)))
    lines: list[str] = []
    result = run_on_device(profile.access, espcn_onnx, job(espcn_onnx), timeout=120, progress=lines.append)

    assert result["ok"] and [s["input_hw"] for s in result["sizes"]] == [[16, 16], [12, 20]]
    first = result["sizes"][0]
    assert first["output_hw"] == [48, 48] and first["inference"]["runs"] == 2
    assert first["inference"]["min_ms"] <= first["inference"]["median_ms"] <= first["inference"]["p99_ms"]
    assert first["end_to_end"]["median_ms"] > 0 and first["peak_rss_mb"] > 10
    assert result["device"]["runtime"].startswith("onnxruntime ") and result["device"]["cpu_count"] >= 1
    assert any(line.startswith("copying espcn") for line in lines) and "12x20 run 2/2" in lines
    device = tmp_path / NASTY
    assert device.is_dir() and not list(device.iterdir())  # the run's folder is gone
    assert no_code_ran(tmp_path)


def test_every_progress_line_of_the_runner_reaches_the_caller(espcn_onnx: Path) -> None:
    # stderr carries the progress lines and the line that says why a run stopped; it must have one reader.
    from sr_export.targets.profiles import DeviceAccess

    document = job_document(runtime="onnxruntime", artifact=espcn_onnx.name, precision="fp32", sizes=[(8, 8)],
                            warmup=0, runs=300, threads=1, scale=3, in_channels=3, data_range=1.0)
    lines: list[str] = []
    run_on_device(DeviceAccess(), espcn_onnx, document, timeout=120, progress=lines.append)
    assert [line for line in lines if " run " in line] == [f"8x8 run {i}/300" for i in range(1, 301)]


def test_the_device_identity_is_where_ssh_connects(tmp_path: Path) -> None:
    # Two aliases of one board are one device; one address with two ports is two. ssh -G resolves
    # the configuration without connecting, so no server is needed.
    from sr_export.bench.remote import device_identity
    from sr_export.targets.profiles import DeviceAccess

    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client is not installed (install openssh-client)")
    config = tmp_path / "ssh_config"
    config.write_text('Host "board" "board-again"\n  HostName 127.0.0.1\n  Port 2201\n  User alice\n')

    def identity(**fields: object) -> str:
        return device_identity(DeviceAccess(kind="ssh", ssh_config=config, **fields))

    assert identity(host="board") == identity(host="board-again") == "alice@127.0.0.1:2201"
    assert identity(host="127.0.0.1", port=2202, user="alice") == "alice@127.0.0.1:2202"
    assert identity(host="board", user="bob") == "bob@127.0.0.1:2201"  # the profile's own fields win, as in ssh


def test_a_host_alias_full_of_shell_syntax_is_only_ever_a_name(ssh_server, espcn_onnx: Path, tmp_path: Path) -> None:
    alias = "box; $(touch PWNED) x"
    config = ssh_server.config_with_alias(alias, tmp_path / "ssh_config")
    path = write_profile(tmp_path, ssh_server, host=alias)
    path.write_text(path.read_text().replace(json.dumps(str(ssh_server.config)), json.dumps(str(config))))
    profile = load_profile(path)
    try:
        result = run_on_device(profile.access, espcn_onnx, job(espcn_onnx), timeout=120)
    except DeviceError as exc:  # OpenSSH 9.6+ and Debian's 9.2 refuse such names on the command line
        assert "hostname contains invalid characters" in str(exc) and "\n" not in str(exc)
    else:  # older clients take the name as written and look it up in the config
        assert result["ok"]
    assert no_code_ran(tmp_path)


def test_a_missing_runtime_on_the_device_is_one_clear_line(ssh_server, espcn_onnx: Path, tmp_path: Path) -> None:
    # The "device" (this machine's venv) has ONNX Runtime and LiteRT, but no TensorRT.
    if shutil.which("trtexec") or Path("/usr/src/tensorrt/bin/trtexec").exists():
        pytest.skip("this machine has trtexec, so no runtime is missing on the test device")
    profile = load_profile(write_profile(tmp_path, ssh_server))
    with pytest.raises(DeviceError, match=r"^on sr-device: trtexec is not on PATH nor in /usr/src/tensorrt/bin"):
        run_on_device(profile.access, espcn_onnx, job(espcn_onnx, runtime="trtexec"), timeout=120)
    assert not list((tmp_path / NASTY).iterdir())


def test_a_device_nobody_answers_on_is_one_clear_line(ssh_server, espcn_onnx: Path, tmp_path: Path) -> None:
    path = write_profile(tmp_path, ssh_server)
    config = tmp_path / "dead_config"
    config.write_text(ssh_server.config.read_text().replace(f"Port {ssh_server.port}", "Port 1"))
    path.write_text(path.read_text().replace(json.dumps(str(ssh_server.config)), json.dumps(str(config))))
    # The first thing asked of a device is its runtime's version (issue 21), so that is what fails.
    with pytest.raises(DeviceError, match="asking the runtime version on sr-device failed: ssh could not connect"):
        run_on_device(load_profile(path).access, espcn_onnx, job(espcn_onnx), timeout=120)


def test_a_run_past_its_timeout_is_stopped_and_cleaned_up(ssh_server, espcn_onnx: Path, tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, ssh_server))
    with pytest.raises(DeviceError, match="did not finish within 3 s"):
        run_on_device(profile.access, espcn_onnx, job(espcn_onnx, runs=1_000_000), timeout=3)
    assert not list((tmp_path / NASTY).iterdir())


def test_preflight_names_a_python_the_device_lacks(ssh_server, tmp_path: Path) -> None:
    from sr_export.bench.remote import preflight

    profile = load_profile(write_profile(tmp_path, ssh_server, python="python-that-is-not-there"))
    with pytest.raises(DeviceError, match="sr-device has no 'python-that-is-not-there' on its PATH"):
        preflight(profile.access)
    preflight(load_profile(write_profile(tmp_path, ssh_server)).access)  # the venv's Python is there
