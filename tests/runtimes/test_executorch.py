"""The ExecuTorch runtime: .pte programs exported from PyTorch, lowered to XNNPACK, run with ExecuTorch.

Exporting and lowering costs seconds per program, so each program is built
once: official E-RFDN x4 by ``sr-export build`` (then checked, evaluated and
timed by the commands users run), and one dynamic program per zoo
architecture at x4 and per upsampler at x2 and x3 (one block, random weights, small bounds:
what costs export time is the graph's length, not what it computes), each
proven against PyTorch at three sizes (square, odd, not a multiple of 8)
from the one file.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("executorch", reason="executorch not installed (pip install 'sr-export[executorch]')")

from sr_export.core.artifacts import Artifact, sidecar_path  # noqa: E402
from sr_export.core.errors import MissingDependencyError, SrExportError, SrExportWarning, StageFailed  # noqa: E402
from sr_export.runtimes.executorch.runner import ExecuTorchRunner, bounds_of  # noqa: E402
from sr_export.runtimes.open import open_artifact, open_runner  # noqa: E402
from sr_export.runtimes.pytorch import PyTorchRunner  # noqa: E402
from sr_export.runtimes.registry import get_runtime, runtime_for_file  # noqa: E402


def psnr(got: np.ndarray, want: np.ndarray, peak: float) -> float:
    mse = float(np.mean((got.astype(np.float64) - want) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.fixture(scope="module")
def erfdn_pte(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, dict]:
    """Official E-RFDN x4 built by `sr-export build --target executorch-xnnpack` (parity-checked on the way)."""
    from sr_export.cli.export_cli import main

    folder = tmp_path_factory.mktemp("executorch")
    out, report = folder / "erfdn_x4.pte", folder / "build.json"
    assert main(["build", "--target", "executorch-xnnpack", "--model", "erfdn", "--scale", "4",
                 "--weights", "official", "-o", str(out), "--json", str(report)]) == 0
    return open_artifact(out), json.loads(report.read_text())


def test_the_program_records_its_bounds_and_what_xnnpack_runs(erfdn_pte) -> None:
    artifact, report = erfdn_pte
    meta = artifact.metadata
    assert (meta.format, meta.backend, meta.precision) == ("pte", "executorch", "fp32")
    assert meta.input_shape == (1, 3, "height:32..1024", "width:32..1024") and meta.dynamic
    assert bounds_of(meta.input_shape) == ((32, 32), (1024, 1024))
    assert artifact.path.read_bytes()[4:6] == b"ET" and sidecar_path(artifact.path).is_file()
    (summary,) = [note for note in meta.notes if note.startswith("XNNPACK runs")]
    assert "portable kernels run:" in summary
    assert runtime_for_file(artifact.path) == "executorch"
    (step,) = report["steps"]
    assert step["check"]["passed"] and summary in step["metadata"]["notes"]


ZOO = ("imdn", "rfdn", "rfdn-l", "erfdn", "idn")
SMALL_SIZES = ((24, 24), (29, 37), (47, 41))  # square, odd, not a multiple of 8, within 24..48


# Every architecture at x4, and every scale of each kind of upsampler: IMDN's pixel shuffle (the same module
# RFDN, RFDN-L and E-RFDN use, after a body that does not depend on the scale) and IDN's transposed conv.
ZOO_CASES = [*((name, 4) for name in ZOO), *((name, scale) for name in ("imdn", "idn") for scale in (2, 3))]


@pytest.mark.parametrize(("name", "scale"), ZOO_CASES)
def test_every_zoo_architecture_and_upsampler_scale_matches_pytorch_at_three_sizes_from_one_program(
    name: str, scale: int, tmp_path: Path
) -> None:
    """One block of each zoo architecture, random weights: the same ops, shape math and upsampler as the zoo
    model at that scale, at a fraction of the export time (full-depth programs: official E-RFDN x4 above, IMDN
    x2 INT8 in test_executorch_int8). The bounds are small so that memory planning is too."""
    from sr_export import api

    model = api.load_model(name, scale=scale, kwargs={"blocks": 1})
    with warnings.catch_warnings():  # the portable-ops warning (the pixel shuffle's reshapes): asserted elsewhere
        warnings.simplefilter("ignore", SrExportWarning)
        artifact = get_runtime("executorch").from_model(model, tmp_path, options={"min_side": 24, "max_side": 48})
    assert artifact.metadata.dynamic and bounds_of(artifact.metadata.input_shape) == ((24, 24), (48, 48))
    # The conv-split rewrite leaves XNNPACK no channel split to refuse (IMDN's and IDN's blocks stay whole).
    assert not [op for op in artifact.details["ops"]["portable"] if "split" in op]
    runner, reference = ExecuTorchRunner(artifact, threads=1), PyTorchRunner(model)
    rng = np.random.default_rng(scale)
    for size in SMALL_SIZES:
        batch = rng.uniform(0, model.info.data_range, (1, model.info.in_channels, *size)).astype(np.float32)
        got = runner.infer(batch)
        assert got.shape[2:] == (size[0] * scale, size[1] * scale)
        assert psnr(got, reference.infer(batch), model.info.data_range) >= 80, (name, scale, size)


def test_sizes_outside_the_bounds_are_refused_in_one_line(erfdn_pte) -> None:
    runner = ExecuTorchRunner(erfdn_pte[0])
    assert runner.size_bounds == ((32, 32), (1024, 1024))
    with pytest.raises(SrExportError, match=r"takes LR sizes 32x32 to 1024x1024, not 16x40"):
        runner.infer(np.zeros((1, 3, 16, 40), np.float32))


def test_a_fixed_size_program_runs_other_sizes_tiled(tmp_path: Path) -> None:
    from sr_export import api

    model = api.load_model("idn", scale=2, kwargs={"blocks": 1})  # the tiling is under test, not IDN's depth
    artifact = get_runtime("executorch").from_model(model, tmp_path, shape=(48, 48))
    assert artifact.path.name == "idn_x2_48x48.pte" and artifact.metadata.static_hw == (48, 48)
    runner = open_runner(open_artifact(artifact.path), threads=1)
    batch = np.random.default_rng(2).uniform(0, 1, (1, 1, 70, 90)).astype(np.float32)
    assert psnr(runner.infer(batch), PyTorchRunner(model).infer(batch), 1.0) >= 80


def _cli(main, capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sr_export_check_runs_the_program(capsys, erfdn_pte, tmp_path: Path) -> None:
    from sr_export.cli.export_cli import main

    code, _, err = _cli(main, capsys, "check", erfdn_pte[0].path, "--threads", "1", "--json", tmp_path / "p.json")
    assert code == 0, err
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["passed"] and "executorch" in report["candidate"]
    assert min(case["psnr_db"] or float("inf") for case in report["cases"]) >= 100


def test_sr_bench_eval_on_set5_matches_the_reference_number(capsys, erfdn_pte, set5: Path, tmp_path: Path) -> None:
    from sr_export.cli.bench_cli import main

    code, _, err = _cli(main, capsys, "eval", "--artifact", erfdn_pte[0].path, "--dataset", set5,
                        "--json", tmp_path / "e.json")
    assert code == 0, err
    # Official E-RFDN x4 on Set5 is 32.138 dB Y-PSNR in PyTorch (shared/reference/numbers.md); whole images, no tiles.
    assert json.loads((tmp_path / "e.json").read_text())["mean"]["psnr_y"] == pytest.approx(32.138, abs=0.005)


def test_sr_bench_speed_times_the_program(capsys, erfdn_pte) -> None:
    from sr_export.cli.bench_cli import main

    code, out, err = _cli(main, capsys, "speed", "--artifact", erfdn_pte[0].path, "--sizes", "64x64",
                          "--warmup", "1", "--runs", "2", "--no-pytorch", "--threads", "1")
    assert code == 0, err
    assert "executorch" in out


def test_a_damaged_program_is_one_line(erfdn_pte, tmp_path: Path, official_model) -> None:
    artifact = erfdn_pte[0]
    changed = tmp_path / "changed.pte"
    shutil.copy(artifact.path, changed)
    shutil.copy(sidecar_path(artifact.path), sidecar_path(changed))
    with changed.open("r+b") as handle:
        handle.truncate(changed.stat().st_size // 2)
    with pytest.raises(SrExportError, match="changed since sr-export wrote it"):
        open_artifact(changed)
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"\0" * 64)
    with pytest.raises(SrExportError, match="ExecuTorch cannot load .*garbage.pte.*re-export"):
        open_runner(open_artifact(garbage, official_model("erfdn", 4)))


def test_the_runtime_builds_from_pytorch_not_from_onnx(erfdn_pte) -> None:
    from dataclasses import replace

    runtime = get_runtime("executorch")
    assert runtime.build(erfdn_pte[0], None) is erfdn_pte[0]
    as_onnx = Artifact(Path("x.onnx"), replace(erfdn_pte[0].metadata, format="onnx"))
    with pytest.raises(SrExportError, match="exported from PyTorch"):
        runtime.build(as_onnx, None)
    assert "XNNPACK" in runtime.describe()["runtime"]


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(SrExportError, match="min_side .* max_side"):
        get_runtime("executorch").parse_options({"min_side": 64, "max_side": 32})


def test_a_missing_executorch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from sr_export.runtimes.executorch.lower import import_executorch

    real_import = builtins.__import__

    def without(name: str, *args, **kwargs):
        if name.startswith("executorch"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(MissingDependencyError, match=r"sr-export\[executorch\]"):
        import_executorch()


USER_ARCHS = '''
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, padding=1)
        self.tail = nn.Conv2d(8, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.tail(self.body(x).relu()))


class WidthBranch(TinyNet):
    """Shape math torch.export cannot keep dynamic: a branch on the input's width."""

    def forward(self, x):
        y = super().forward(x)
        return y * 2 if x.shape[-1] > 100 else y
'''


@pytest.fixture
def user_package(tmp_path: Path):
    name = f"etuser_{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "app"
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "archs.py").write_text(USER_ARCHS)
    yield folder, name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def test_a_users_model_builds_as_a_dynamic_program(sr_export, user_package, tmp_path: Path) -> None:
    folder, name = user_package
    out = tmp_path / "tiny.pte"
    # Its pixel shuffle's reshapes have symbolic sizes, which XNNPACK does not take: said, not silent.
    with pytest.warns(SrExportWarning, match=r"2 op\(s\) stay on ExecuTorch's portable kernels.*aten.view_copy x2"):
        result = sr_export("build", "--target", "executorch-xnnpack", "--model", f"{name}.archs:TinyNet",
                           "--app-dir", folder, "--scale", "2", "-o", out)
    assert result.code == 0, result.err
    meta = open_artifact(out).metadata
    assert meta.dynamic and any("portable kernels run: aten.view_copy x2" in note for note in meta.notes)


def test_the_cli_prints_that_warning_as_one_line_and_other_libraries_warnings_as_python_does() -> None:
    from sr_export.cli.common import one_line_warnings

    with one_line_warnings():
        ours = warnings.formatwarning("tiny x2: 2 op(s) stay on ...", SrExportWarning, "build.py", 180)
        theirs = warnings.formatwarning("old API", DeprecationWarning, "lib.py", 3, "")
    assert ours == "warning: tiny x2: 2 op(s) stay on ...\n"
    assert theirs.startswith("lib.py:3: DeprecationWarning: old API")
    assert warnings.formatwarning("x", SrExportWarning, "build.py", 1, "").startswith("build.py:1:")  # restored


def test_shape_math_export_refuses_is_one_line_with_a_hint_and_leaves_nothing(
    sr_export, user_package, tmp_path: Path
) -> None:
    folder, name = user_package
    out = tmp_path / "out"
    result = sr_export("build", "--target", "executorch-xnnpack", "--model", f"{name}.archs:WidthBranch",
                       "--app-dir", folder, "--scale", "2", "-o", out)
    assert result.code != 0
    assert "torch.export refused" in result.err and "--shape" in result.err
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(StageFailed):
        from sr_export import api
        from sr_export.runtimes.executorch.lower import export_program, sample_input

        model = api.load_model(f"{name}.archs:WidthBranch", app_dir=folder, scale=2)
        export_program(model.module, sample_input(3, (64, 64), 1.0), (32, 1024))


ESPCN = Path(__file__).resolve().parents[1] / "fixtures" / "espcn.py"


def test_sr_bench_times_a_program_on_an_ssh_device(sr_bench, ssh_server, tmp_path: Path) -> None:
    """The remote runner's ExecuTorch session, against the test sshd on 127.0.0.1."""
    device = tmp_path / "device"
    device.mkdir()
    profile = tmp_path / "et-remote.toml"
    profile.write_text(
        'name = "et-loopback"\nbackend = "executorch"\n[options]\nmin_side = 16\nmax_side = 64\n'
        '[bench]\ninput_sizes = ["24x40"]\nwarmup = 1\nruns = 2\ntimeout_s = 300\n'
        f"[device]\nkind = \"ssh\"\nhost = {json.dumps(ssh_server.alias)}\n"
        f"ssh_config = {json.dumps(str(ssh_server.config))}\nworkdir = {json.dumps(str(device))}\n"
        f"python = {json.dumps(sys.executable)}\nconnect_timeout_s = 5\n"
    )
    db = tmp_path / "history.sqlite"
    result = sr_bench("--target", profile, "--models", f"{ESPCN}:ESPCN", "--scale", "3", "--db", db,
                      "--out-dir", tmp_path / "out")
    assert result.code == 0, result.err
    (run,) = json.loads(sr_bench("history", "--db", db, "--json", "-").out)
    assert run["target"] == "et-loopback" and run["device"]["access"]["host"] == "sr-device"
    assert run["device"]["runtime"].startswith("executorch")
    assert run["sizes"][0]["input_hw"] == [24, 40] and run["psnr_y"] is not None  # images above 64 px: tiled
