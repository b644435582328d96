"""The README's shell blocks as commands a test runs, in README order, in one working folder per group.

What changes between the README and the run, and nothing else:

- sizes are made small (:data:`SMALL_SIZES`, in flags and in the file names they give), and the two commands
  whose default size is large get a small one: `sr-export tflite` without `--shape`, and suite runs of
  `sr-bench` without `--sizes`;
- `../shared/` is the shared folder (official checkpoints, Set5), `~` the group's home folder;
- the placeholder `NAME,NAME,...` is the plan the `int8-report` line before it printed;
- the files a user brings (their network, checkpoint, images, Caffe files) are made by
  :func:`make_users_files` under the names the README gives them.

A line tagged `[needs: nvidia-gpu]`, `[needs: intel-gpu]`, `[needs: mac]` or `[needs: board]` in its comment runs too: without
the hardware it must stop with the documented refusal (exit 4 naming what to install; exit 2 naming the
OpenVINO devices present; for a board, the profile loaded and the board named as unreachable).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FIXTURES = REPO / "tests" / "fixtures"
TOOLS = ("sr-export", "sr-bench")
SMALL_SIZES = {"64x64": "32x32", "256x256": "48x48", "360x640": "36x64", "540x960": "54x96", "720x1280": "72x128"}
SMALL_SHAPE = "36x64"  # for `sr-export tflite` (its default is 360x640)
SMALL_SUITE_SIZES = "48x48"  # for suite runs (the default suite times 256x256)
NEEDS = re.compile(r"\[needs: ([a-z-]+)\]")
PLAN_PLACEHOLDER = "NAME,NAME,..."
SUGGESTED_PLAN = re.compile(r"suggested plan: --keep-float (\S+)")
BENCH_SUBCOMMANDS = ("history", "compare", "gate", "report", "profile", "eval", "speed", "int8-report", "tune")

# Which test module runs which README sections (the heading a block is under); every section with commands
# belongs to one group, and test_readme_commands checks that none is left out.
GROUPS = {
    "commands": ("Commands",),
    "models": ("Models", "Models that are hard to export", "IDN from the authors' Caffe models"),
    "coreml_tflite": ("Core ML (`sr-export coreml`)", "TFLite (`sr-export tflite`)",
                      "TFLite INT8 (`sr-export tflite --int8`)"),
    "tensorrt": ("TensorRT",),
    "harness": ("Benchmarking on devices, history and CI gates",),
    "int8": ("INT8",),
    "board_runtime": ("The runtime the board has (`--for-runtime`)",),
    "openvino": ("OpenVINO",),
    "executorch": ("ExecuTorch (`--target executorch-xnnpack`)",),
    "tune": ("Choosing what to ship (`sr-bench tune`)",),
}
# Python environments a README line names under ~, as the side environments the tests make (tests/side_envs.py).
USERS_VENVS = {"venvs/tflite214": "tflite-runtime-2.14"}
# What a group needs from another section, as the README line that makes it.
GIVEN = {
    "coreml_tflite": ("sr-export onnx --model erfdn --weights official",),
    "openvino": ("sr-export onnx --model erfdn --weights official",),
}


@dataclass(frozen=True)
class Command:
    section: str
    block_line: int  # the line of README.md where its block starts
    text: str  # as printed, continuation lines joined

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def tool(self) -> str:
        return self.words[0]

    @property
    def needs(self) -> str | None:
        found = NEEDS.search(self.text.partition(" #")[2])
        return found.group(1) if found else None

    @property
    def label(self) -> str:
        return f"README.md:{self.block_line} {self.text.split(' #')[0].strip()[:70]}"


def _headings(lines: list[str]) -> dict[int, str]:
    """Heading text by README line number (1-based), outside fenced blocks."""
    headings, fenced = {}, False
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            headings[number] = line.lstrip("#").strip()
    return headings


def readme_commands() -> list[Command]:
    """Every command line of the README's `sh` blocks, in order, with the section it is under."""
    text = README.read_text()
    headings = _headings(text.splitlines())
    document = Sybil(parsers=[CodeBlockParser(language="sh", evaluator=lambda example: None)]).parse(README)
    found = []
    for example in document.examples():
        section = headings[max(n for n in headings if n < example.line)]
        joined = example.parsed.replace("\\\n", " ")
        for line in joined.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                found.append(Command(section, example.line, " ".join(line.split())))
    return found


def group_commands(group: str) -> list[Command]:
    sections = GROUPS[group]
    return [c for c in readme_commands() if c.section in sections and c.tool in TOOLS]


def given_commands(group: str) -> list[Command]:
    everything = {c.text.split(" #")[0].strip(): c for c in readme_commands()}
    missing = [text for text in GIVEN.get(group, ()) if text not in everything]
    assert not missing, f"the README no longer has {missing}"
    return [everything[text] for text in GIVEN.get(group, ())]


def _small(word: str) -> str:
    for large, small in SMALL_SIZES.items():
        word = re.sub(rf"(?<![0-9]){large}(?![0-9])", small, word)
    return word


@dataclass
class Workspace:
    folder: Path
    home: Path
    shared: Path
    plan: str | None = None  # the last --keep-float plan an int8-report printed
    outputs: list[str] = field(default_factory=list)

    def argv(self, command: Command) -> list[str]:
        """The command's arguments as this group runs them (see the module's docstring)."""
        words = command.words
        if command.needs is None and PLAN_PLACEHOLDER in command.text:
            assert self.plan, "NAME,NAME,... stands for the plan of an int8-report line before it"
        args = []
        for word in words[1:]:
            if word.startswith("../shared/"):
                word = str(self.shared / word.removeprefix("../shared/"))
            elif word.startswith("~/"):
                word = str(self.home / word[2:])
            elif word == PLAN_PLACEHOLDER:
                word = self.plan or word
            args.append(_small(word))
        if command.tool == "sr-export" and args[:1] == ["tflite"] and "--shape" not in args:
            args += ["--shape", SMALL_SHAPE]
        suite_run = command.tool == "sr-bench" and not (args and args[0] in BENCH_SUBCOMMANDS)
        if suite_run and "--sizes" not in args:
            args += ["--sizes", SMALL_SUITE_SIZES]
        return args

    def heard(self, output: str) -> None:
        self.outputs.append(output)
        plans = SUGGESTED_PLAN.findall(output)
        if plans:
            self.plan = plans[-1]


def openvino_devices() -> list[str]:
    import openvino

    return list(openvino.Core().available_devices)


def gpu_here() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    import torch

    return torch.cuda.is_available()


def make_users_venvs(commands: list[Command], home: Path) -> None:
    """The environments the commands name under ``~`` (``~/venvs/tflite214``: a Python with tflite-runtime 2.14,
    as on a Raspberry Pi), linked to the side environments the tests create and cache."""
    from side_envs import side_python

    for venv, side_env in USERS_VENVS.items():
        if any(f"~/{venv}/" in command.text for command in commands):
            link = home / venv
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(side_python(side_env).parent.parent)


def make_users_files(folder: Path, home: Path, shared: Path) -> None:
    """What the README's user brings, under the README's names: their networks (a file, a package, a
    TorchScript file, a window-attention net, a U-Net that needs sides in multiples of 16), checkpoints for
    them (.pth and .safetensors), a folder of LR images, the authors' IDN Caffe files."""
    import torch
    from safetensors.torch import save_file

    users = FIXTURES / "readme_user"
    shutil.copy(users / "my_net.py", folder / "my_net.py")
    shutil.copytree(users / "mypackage", folder / "mypackage")
    shutil.copytree(users / "mypackage", home / "code" / "my-sr" / "mypackage")
    (folder / "swinir.py").write_text((FIXTURES / "window_attention.py").read_text() + (
        "\n\nclass SwinIR(WindowSR):\n    \"\"\"A user's Swin-style network, under the name its paper gave it.\"\"\"\n"))
    (folder / "unet.py").write_text((FIXTURES / "published.py").read_text() + (
        "\n\nclass UNet(UnpaddedUNetSR):\n    \"\"\"A user's U-Net: sides must be multiples of 16.\"\"\"\n"))
    torch.manual_seed(0)
    my_net = _load(folder / "my_net.py").MyNet(nf=48)
    torch.save(my_net.state_dict(), folder / "my.pth")
    torch.jit.script(_load(folder / "my_net.py").MyNet(nf=16, scale=2)).save(str(folder / "scripted_net.pt"))
    swinir = _load(folder / "swinir.py").SwinIR()
    save_file({k: v.contiguous() for k, v in swinir.state_dict().items()}, str(folder / "swinir.safetensors"))
    torch.save(swinir.state_dict(), folder / "swinir.pth")
    torch.save(_load(folder / "unet.py").UNet().state_dict(), folder / "unet.pth")
    (folder / "my_lr").mkdir()
    for name in ("baby", "bird"):
        shutil.copy(shared / "datasets" / "Set5" / "LR_bicubic" / "X4" / f"{name}x4.bmp", folder / "my_lr" / f"{name}.bmp")
    for name in ("IDN_x4_deploy.prototxt", "IDN_x4.caffemodel"):
        (folder / name).symlink_to(shared / "weights" / "idn_caffe" / name)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
