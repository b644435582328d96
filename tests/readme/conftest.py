"""Each group of README commands runs in a working folder of its own, with the user's files in it, a home
folder of its own (so `~`, the results history and `sr-bench compare 1 5` are the group's) and the
session's cache (checkpoints, traces and calibration statistics are shared, as on a user's machine)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from readme_blocks import Command, Workspace, gpu_here, make_users_files, make_users_venvs, openvino_devices

from sr_export.targets.profiles import load_profile


@pytest.fixture(scope="module")
def workspace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Workspace:
    folder = tmp_path_factory.mktemp("readme")
    home = folder / ".home"
    home.mkdir()
    make_users_files(folder, home, shared)
    make_users_venvs(getattr(request.module, "COMMANDS", []), home)
    return Workspace(folder, home, shared)


@pytest.fixture
def run_readme(workspace: Workspace, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]) -> Callable[[Command], None]:
    monkeypatch.chdir(workspace.folder)
    monkeypatch.setenv("HOME", str(workspace.home))
    monkeypatch.setenv("XDG_DATA_HOME", str(workspace.home / ".local" / "share"))

    def run(command: Command) -> None:
        from sr_export.cli import bench_cli, export_cli

        args = workspace.argv(command)
        engines = [a for a in args if a.endswith(".engine") and not a.startswith("-")]
        if command.needs == "nvidia-gpu" and not gpu_here() and args[0] == "check" and \
                not all(Path(e).exists() for e in engines):
            pytest.skip(f"needs {', '.join(engines)}, which only a machine with an NVIDIA GPU and TensorRT builds "
                        "(the trt lines above stop with exit status 4 here)")
        main = export_cli.main if command.tool == "sr-export" else bench_cli.main
        code = main(args)
        captured = capsys.readouterr()
        workspace.heard(captured.out)
        shown = f"`{command.tool} {' '.join(args)}` exited {code}\n" + "\n".join(captured.err.splitlines()[-25:])
        errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
        assert "Traceback" not in captured.err, shown
        if command.needs is None and args[0] == "gate":
            verdict = "gate passed" if code == 0 else "error: regression:"  # exit 1 is a verdict, not a fault
            assert code in (0, 1) and verdict in captured.out + captured.err, shown
        elif command.needs is None:
            assert code == 0, shown
        elif command.needs == "nvidia-gpu" and gpu_here():
            assert code == 0, shown
        elif command.needs == "nvidia-gpu":
            assert code == 4 and len(errors) == 1 and "install sr-export[tensorrt]" in errors[0], shown
        elif command.needs == "intel-gpu" and "GPU" in openvino_devices():
            assert code == 0, shown
        elif command.needs == "intel-gpu":
            assert code == 2 and len(errors) == 1 and "GPU is not present here; devices present:" in errors[0], shown
        elif command.needs == "board":
            boards = [load_profile(name) for name in _targets(args)]
            boards = [profile for profile in boards if profile.access.is_remote]
            assert boards, f"{command.text}: [needs: board] but none of its targets is a remote device"
            assert code == 2 and len(errors) == 1, shown
            assert any(f"'{p.name}'" in errors[0] and p.access.host in errors[0] for p in boards), shown
        else:
            pytest.fail(f"{command.label}: unknown [needs: {command.needs}] (nvidia-gpu, intel-gpu, mac or board)")

    return run


def _targets(args: list[str]) -> list[str]:
    names = []
    for flag, value in zip(args, args[1:]):
        if flag in ("--target", "--targets"):
            names += value.split(",")
    return names
