"""`sr-bench` on a device reached over SSH: a real sshd on 127.0.0.1 (see tests/sshd_server.py)."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"
NASTY = "dev ice; $(touch PWNED) `touch PWNED2`"


def write_profile(folder: Path, server, *, runs: int = 2) -> Path:
    device = folder / NASTY
    device.mkdir(parents=True, exist_ok=True)
    path = folder / "remote.toml"
    path.write_text(
        'name = "loopback"\nbackend = "onnxruntime"\n'
        f"[bench]\ninput_sizes = [\"16x16\"]\nwarmup = 1\nruns = {runs}\ntimeout_s = 120\n"
        f"[device]\nkind = \"ssh\"\nhost = {json.dumps(server.alias)}\n"
        f"ssh_config = {json.dumps(str(server.config))}\nworkdir = {json.dumps(str(device))}\n"
        f"python = {json.dumps(sys.executable)}\nconnect_timeout_s = 5\n"
    )
    return path


def test_sr_bench_on_an_ssh_target_fills_the_history(sr_bench, ssh_server, tmp_path: Path) -> None:
    profile = write_profile(tmp_path, ssh_server)
    db = tmp_path / "history.sqlite"
    result = sr_bench("--target", profile, "--models", f"{ESPCN}:ESPCN", "--scale", "3", "--db", db,
                      "--exporter", "legacy", "--out-dir", tmp_path / "out")
    assert result.code == 0, result.err
    assert "loopback" in result.out and "espcn x3" in result.out
    history = sr_bench("history", "--db", db, "--json", "-")
    (run,) = json.loads(history.out)
    assert run["target"] == "loopback" and run["device"]["access"]["host"] == "sr-device"
    assert run["conditions"]["where"] == "sr-device" and run["device"]["runtime"].startswith("onnxruntime")
    assert run["sizes"][0]["input_hw"] == [16, 16] and run["psnr_y"] is not None


def test_killing_the_ssh_server_mid_run_is_one_line_and_keeps_the_history_whole(
    sr_bench, doomed_ssh_server, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite"
    local = sr_bench("--target", "cpu", "--models", f"{ESPCN}:ESPCN", "--scale", "3", "--sizes", "16x16",
                     "--runs", "1", "--warmup", "0", "--db", db, "--exporter", "legacy", "--out-dir", tmp_path / "o")
    assert local.code == 0, local.err
    profile = write_profile(tmp_path, doomed_ssh_server, runs=1_000_000)
    device = tmp_path / NASTY

    def kill_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(device.glob("run-*/espcn*.onnx")):
                time.sleep(2.0)  # the runner has started timing
                doomed_ssh_server.kill()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_once_running)
    killer.start()
    result = sr_bench("--target", profile, "--models", f"{ESPCN}:ESPCN", "--scale", "3", "--db", db,
                      "--exporter", "legacy", "--out-dir", tmp_path / "out")
    killer.join()
    assert result.code == 2
    assert "lost the connection to sr-device during the run" in result.error()
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("SELECT target FROM runs").fetchall() == [("cpu",)]
