"""Target profiles: declarative, validated, shipped with the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_export.core.errors import SrExportError
from sr_export.core.sizes import parse_size
from sr_export.runtimes.registry import RUNTIMES as BACKENDS
from sr_export.runtimes.registry import RUNTIMES as KNOWN_BACKENDS
from sr_export.runtimes.registry import get_runtime as get_target
from sr_export.targets.profiles import (
    TargetProfile,
    available_profiles,
    load_profile,
    resource_template,
)


def test_cpu_profile_is_onnxruntime_fp32() -> None:
    profile = load_profile("cpu")
    assert (profile.backend, profile.precision, profile.device) == ("onnxruntime", "fp32", "local")
    assert profile.input_sizes == ((256, 256), (360, 640))
    assert profile.threads is None and profile.warmup >= 1 and profile.runs >= 1


@pytest.mark.parametrize("name", sorted(available_profiles()))
def test_every_shipped_profile_names_a_known_backend(name: str) -> None:
    assert load_profile(name).backend in KNOWN_BACKENDS


def test_the_shipped_profiles_cover_cpu_mobile_nvidia_and_jetson() -> None:
    assert set(available_profiles()) >= {"cpu", "cpu-int8", "tflite-cpu", "coreml", "trt-fp16", "trt-int8",
                                         "jetson-orin-nano", "jetson-agx-orin"}
    nano = load_profile("jetson-orin-nano")
    assert (nano.backend, nano.precision, nano.device) == ("tensorrt", "fp16", "ssh")
    assert nano.access.host == "orin-nano" and nano.access.workdir == "/tmp/sr-bench" and "nvpmodel" in nano.access.power
    assert (360, 640) in nano.input_sizes and (540, 960) in nano.input_sizes
    assert load_profile("cpu-int8").precision == "int8"


def test_the_commented_template_is_a_valid_profile_but_not_a_target() -> None:
    template = resource_template()
    assert "_template" not in available_profiles()
    profile = load_profile(str(template))
    assert profile.device == "ssh" and profile.access.workdir == "/tmp/sr-bench"


def test_a_profile_for_a_backend_this_installation_lacks_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # As with an sr-export build that does not ship the tflite target.
    monkeypatch.delitem(BACKENDS, "tflite")
    profile = TargetProfile(name="tfl", backend="tflite")
    with pytest.raises(SrExportError, match=r"target 'tfl' needs the 'tflite' backend.*sr-export\[tflite\]"):
        profile.require_backend()


def test_profile_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('backend = "onnxruntime"\n[runtime]\nthreads = 1\n[bench]\ninput_sizes = ["32x48"]\nruns = 4\n')
    profile = load_profile(str(path))
    assert (profile.name, profile.threads, profile.input_sizes, profile.runs) == ("mine", 1, ((32, 48),), 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('backend = "onnxruntime"\nspeed = 3\n', "unknown key"),
        ('name = "x"\n', "does not name a backend"),
        ("backend = \n", "cannot read target profile"),
        ('backend = "onnxrt"\n', "backend in .* is 'onnxrt'; choose one of: onnxruntime, tflite"),
        ('backend = "onnxruntime"\nprecision = "fp8"\n', "precision in .* is 'fp8'; choose one of: fp32, fp16, bf16, int8"),
        ('backend = "onnxruntime"\n[bench]\nrun = 3\n', r"unknown key\(s\) bench.run in"),
        ('backend = "onnxruntime"\n[bench]\nruns = "50"\n', "bench.runs in .* must be an integer >= 1, not '50'"),
        ('backend = "onnxruntime"\n[bench]\nruns = true\n', "bench.runs in .* must be an integer"),
        ('backend = "onnxruntime"\n[bench]\nwarmup = -1\n', "bench.warmup in .* must be an integer >= 0"),
        ('backend = "onnxruntime"\n[bench]\ninput_sizes = "256x256"\n', "bench.input_sizes in .* must be a non-empty list"),
        ('backend = "onnxruntime"\n[bench]\ninput_sizes = ["256"]\n', "bench.input_sizes in .*: size '256'"),
        ('backend = "onnxruntime"\n[runtime]\nthreads = 1.5\n', "runtime.threads in .* must be an integer"),
        ('backend = "onnxruntime"\nbench = 3\n', r"bench in .* must be a table \(\[bench\]\)"),
        ('backend = "onnxruntime"\n[devcie]\nkind = "ssh"\n', r"unknown key\(s\) devcie"),
        ('backend = "onnxruntime"\ndevice = "jetson"\n', 'device in .* must be "local" or a \\[device\\] table'),
        ('backend = "onnxruntime"\n[device]\nkind = "telnet"\n', "device.kind in .* is 'telnet'; choose one of: local, ssh"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\n', "device.host in .* is required"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\nhost = "-oProxyCommand=x"\n', "device.host .* must not start"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\nhost = "b"\nport = 70000\n', "device.port in .* <= 65535"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\nhost = "b"\nworkdir = "rel"\n', "device.workdir .* absolute"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\nhost = "b"\nhsot = "c"\n', r"unknown key\(s\) device.hsot"),
        ('backend = "onnxruntime"\n[device]\nkind = "ssh"\nhost = 5\n', "device.host in .* must be a string"),
    ],
)
def test_bad_profiles_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SrExportError, match=message):
        load_profile(str(path))


def test_sizes_are_height_by_width() -> None:
    assert parse_size("360x640") == (360, 640)
    assert parse_size("3x256x128") == (256, 128)
    for bad in ("256", "axb", "0x5", "1x2x3x4"):
        with pytest.raises(SrExportError):
            parse_size(bad)


def test_unknown_backend() -> None:
    with pytest.raises(SrExportError, match="unknown backend 'tensorrt-x'"):
        get_target("tensorrt-x")


def test_an_ssh_profile_keeps_every_access_field(tmp_path: Path) -> None:
    path = tmp_path / "board.toml"
    path.write_text(
        'backend = "tflite"\nprecision = "fp16"\nnotes = "dev kit"\n'
        '[device]\nkind = "ssh"\nhost = "board"\nuser = "ubuntu"\nport = 2222\nkey = "~/.ssh/board"\n'
        'workdir = "~/bench dir"\npython = "/usr/bin/python3"\nconnect_timeout_s = 3\npower = "nvpmodel -m 0"\n'
        '[bench]\ninput_sizes = ["360x640", "540x960"]\nruns = 7\ntimeout_s = 60\n[options]\ndelegate = "xnnpack"\n'
    )
    profile = load_profile(path)
    access = profile.access
    assert (access.kind, access.host, access.user, access.port) == ("ssh", "board", "ubuntu", 2222)
    assert access.key == Path("~/.ssh/board").expanduser() and access.workdir == "~/bench dir"
    assert (access.python, access.connect_timeout_s, access.power) == ("/usr/bin/python3", 3, "nvpmodel -m 0")
    assert profile.input_sizes == ((360, 640), (540, 960)) and (profile.runs, profile.timeout_s) == (7, 60)
    assert profile.options == {"delegate": "xnnpack"} and profile.notes == "dev kit"


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SrExportError, match="target profile .*nope.toml does not exist"):
        load_profile(str(tmp_path / "nope.toml"))


def test_the_devices_runtime_version_reaches_every_build_of_a_runtime_that_fits_files_to_it() -> None:
    from sr_export.targets.profiles import profile_from_dict

    device = {"kind": "local", "runtime": "tflite-runtime==2.14"}
    tflite = profile_from_dict({"name": "pi", "backend": "tflite", "device": device})
    assert tflite.access.runtime == "tflite-runtime==2.14"
    assert tflite.runtime_options().for_runtime == "tflite-runtime==2.14"
    assert profile_from_dict({**{"name": "pi", "backend": "tflite", "device": device},
                              "options": {"for_runtime": "ai-edge-litert==1.4"}}).runtime_options().for_runtime \
        == "ai-edge-litert==1.4"  # the profile's own option wins
    onnx = profile_from_dict({"name": "jetson", "backend": "onnxruntime", "device": device})
    assert not hasattr(onnx.runtime_options(), "for_runtime")  # its files record what they need; nothing to fit
