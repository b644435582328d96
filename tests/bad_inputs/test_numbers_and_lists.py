"""Bad numbers and lists on every command of both tools: one `error:` line naming the option, exit 2,
before any model or artifact is loaded, and nothing written.

The table maps each command (the arguments it needs) and option to the kind of value it takes; a new
command or option joins with one line. `test_every_checked_option_is_in_the_table` fails when an option
is added with a plain int/float type or left out of the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sr_export.cli import bench_cli, export_cli

# Bad values per kind of option. Every value is passed as --option=VALUE, so '-1' and '-5x5' reach the
# option instead of reading as another flag.
COUNT = ("nan", "inf", "-1", "1e12", "99999999999999999999", "2.5", "")  # 0 allowed (none / skip)
POSITIVE = (*COUNT, "0")
THRESHOLD = ("nan", "inf", "-inf", "-1", "")
PERCENT = ("nan%", "inf%", "-5%", "nan", "-0.1", "")
POSITIVE_FLOAT = ("nan", "inf", "-1", "0", "1e12", "")
SIZE = ("0x0", "-5x5", "5x-5", "99999x99999", "16385x1", "8193x8193", "nanxnan", "1e3x1e3", "", "x")
SIZES = (",", "32x32,,", ",32x32", "", "0x0,32x32", "32x32,99999x99999")
CHW = ("0x64x64", "3x0x64", "99999x3x3", "3x99999x99999", "", "3x")
NAMES = ("", ",", "a,,b", " , ")
RANGE = ("64x64:32x32", "0x0:32x32", "32x32:99999x99999", ":", "")

# Options every command that loads a model has (common.add_model_arguments, common.add_export_arguments):
# one parser function, so every bad value on `onnx` and one of each on the other commands.
MODEL_OPTIONS = {"--scale": POSITIVE, "--data-range": POSITIVE_FLOAT, "--in-channels": POSITIVE,
                 "--pad-to": POSITIVE}
OPSET = {"--opset": ("nan", "0", "6", "-18", "1e12", ""), "--export-timeout": POSITIVE_FLOAT}
MODEL = {"--scale": ("0",), "--data-range": ("nan",), "--in-channels": ("-1",), "--pad-to": ("1e12",),
         "--opset": ("inf",), "--export-timeout": ("0",)}
MODEL_NO_OPSET = {k: v for k, v in MODEL.items() if k not in ("--opset", "--export-timeout")}


@dataclass(frozen=True)
class Command:
    tool: str  # "sr-export" or "sr-bench"
    argv: tuple[str, ...]  # the command and what it needs to parse (paths relative to the test's folder)
    options: dict[str, tuple[str, ...]]  # option (or positional metavar) -> bad values


ARTIFACT = "model.onnx"  # a file that exists (--from wants one); never a real ONNX: nothing may read it

COMMANDS = {
    "onnx": Command("sr-export", ("onnx", "--model", "imdn", "-o", "out.onnx"),
                    {**MODEL_OPTIONS, **OPSET, "--shape": SIZE, "--keep-float": NAMES}),
    "coreml": Command("sr-export", ("coreml", "--model", "imdn", "-o", "out.mlpackage"),
                      {**MODEL_NO_OPSET, "--shape": SIZE, "--shapes": SIZES, "--range": RANGE}),
    "tflite": Command("sr-export", ("tflite", "--model", "imdn", "-o", "out.tflite"),
                      {**MODEL_NO_OPSET, "--shape": SIZE}),
    "check": Command("sr-export", ("check", ARTIFACT, "--json", "out.json"),
                     {**MODEL_NO_OPSET, "--sizes": SIZES, "--threads": POSITIVE, "--tile-overlap": COUNT}),
    "trt": Command("sr-export", ("trt", "--from", ARTIFACT, "-o", "out.engine"),
                   {**MODEL, "--shape": SIZE, "--min": SIZE, "--opt": SIZE, "--max": SIZE,
                    "--workspace": (*POSITIVE, "15")}),
    "build": Command("sr-export", ("build", "--target", "cpu", "--from", ARTIFACT, "-o", "out"),
                     {**MODEL, "--shape": SIZE}),
    "sr-bench": Command("sr-bench", ("-o", "out", "--no-history"),
                        {"--export-timeout": POSITIVE_FLOAT, "--sizes": SIZES, "--warmup": COUNT, "--runs": POSITIVE, "--scale": POSITIVE,
                         "--models": NAMES, "--targets": NAMES, "--target": ("", ",", "cpu,,tflite")}),
    "history": Command("sr-bench", ("history", "--db", "history.sqlite"),
                       {"--limit": POSITIVE, "--run": POSITIVE}),
    "compare": Command("sr-bench", ("compare", "--db", "history.sqlite"), {"RUN_A": POSITIVE, "RUN_B": POSITIVE}),
    "gate": Command("sr-bench", ("gate", "--db", "history.sqlite", "--baseline", "1", "--json", "out.json"),
                    {"--max-slowdown": PERCENT, "--max-psnr-drop": THRESHOLD, "--run": POSITIVE}),
    "report": Command("sr-bench", ("report", "--db", "history.sqlite", "-o", "out"), {"--run": POSITIVE}),
    "profile": Command("sr-bench", ("profile", "--model", "imdn", "--json", "out.json"),
                       {**MODEL_NO_OPSET, "--input": CHW, "--export-timeout": ("0", "nan")}),
    "eval": Command("sr-bench", ("eval", "--model", "imdn", "--dataset", "builtin", "--json", "out.json"),
                    {**MODEL_NO_OPSET, "--threads": POSITIVE, "--tile-overlap": COUNT}),
    "speed": Command("sr-bench", ("speed", "--model", "imdn", "--json", "out.json"),
                     {**MODEL, "--sizes": SIZES, "--warmup": COUNT, "--runs": POSITIVE,
                      "--threads": POSITIVE, "--tile-overlap": COUNT}),
    "int8-report": Command("sr-bench", ("int8-report", "--model", "imdn", "--dataset", "builtin", "-o", "out"),
                           {**MODEL, "--sensitivity-patches": COUNT, "--suggest": COUNT, "--frontier": COUNT,
                            "--runs": COUNT, "--threads": POSITIVE, "--speed-size": SIZE, "--keep-float": NAMES}),
    "tune": Command("sr-bench", ("tune", "--model", "imdn", "-o", "out", "--no-history"),
                    {"--scale": ("0",), "--max-drop": THRESHOLD, "--sizes": SIZES, "--tiles": SIZES,
                     "--warmup": COUNT, "--runs": POSITIVE, "--candidates": NAMES, "--recipes": NAMES}),
}
# Commands with no numeric or list option: nothing to refuse here (their files are other tables' business).
NO_NUMBERS = {"sr-export": {"import-caffe", "info", "runtimes", "models"}, "sr-bench": set()}


def _cases() -> list[object]:
    return [pytest.param(command, option, value, id=f"{name} {option}={value!r}")
            for name, command in COMMANDS.items() for option, values in command.options.items() for value in values]


def _argv(command: Command, option: str, value: str) -> list[str]:
    if option.startswith("-"):
        return [*command.argv, f"{option}={value}"]
    # Positionals (compare RUN_A RUN_B): the bad one in its place, a good run number in the others.
    positionals = [name for name in command.options if not name.startswith("-")]
    return [*command.argv, *(value if name == option else "1" for name in positionals)]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as the working directory (default outputs land here), holding only ARTIFACT."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ARTIFACT).write_bytes(b"not an ONNX file")
    return tmp_path


@pytest.mark.parametrize(("command", "option", "value"), _cases())
def test_a_bad_number_or_list_is_one_line_naming_the_option(request, workdir: Path, command: Command,
                                                            option: str, value: str) -> None:
    run = request.getfixturevalue("sr_export" if command.tool == "sr-export" else "sr_bench")
    result = run(*_argv(command, option, value))
    assert result.code == 2, result.err
    assert option in result.error()
    assert sorted(p.name for p in workdir.iterdir()) == [ARTIFACT]
    assert (workdir / ARTIFACT).read_bytes() == b"not an ONNX file"


def test_an_inverted_trt_profile_is_explained_with_the_flags_given(sr_export, workdir: Path) -> None:
    result = sr_export("trt", "--from", ARTIFACT, "--min", "128x128", "--max", "64x64", "-o", "out.engine")
    assert result.code == 2
    line = result.error()
    assert "--min 128x128" in line and "--max 64x64" in line and "--opt" not in line
    alone = sr_export("trt", "--from", ARTIFACT, "--max", "16x16", "-o", "out.engine")
    assert alone.code == 2 and "default --min 32x32" in alone.error() and "--opt" not in alone.error()
    assert sorted(p.name for p in workdir.iterdir()) == [ARTIFACT]


@pytest.mark.parametrize(("argv", "message"), [
    (("onnx", "--model", "imdn", "--shape", "99999x99999"),
     "--shape 99999x99999 is larger than the largest size sr-export handles (H, W <= 16384"),
    (("onnx", "--model", "imdn", "--shape", "0x0"), "--shape 0x0: sizes must be positive"),
    (("onnx", "--model", "imdn", "--shape=-5x5"), "--shape -5x5: sizes must be positive"),
    (("check", ARTIFACT, "--threads", "0"), "--threads must be a whole number from 1 to 1024, got '0'"),
])
def test_the_issue_examples_say_what_is_wrong(sr_export, workdir: Path, argv: tuple[str, ...], message: str) -> None:
    result = sr_export(*argv)
    assert result.code == 2 and message in result.error()


def test_gate_refuses_a_nan_bound_instead_of_passing(sr_bench, workdir: Path) -> None:
    for flag, value in (("--max-slowdown", "nan%"), ("--max-psnr-drop", "nan")):
        result = sr_bench("gate", "--baseline", "b.json", flag, value)
        assert result.code == 2 and flag in result.error() and "finite" in result.error()


def _parsers() -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for tool, module in (("sr-export", export_cli), ("sr-bench", bench_cli)):
        top = module.build_parser()
        yield tool, tool, top
        for action in top._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, parser in action.choices.items():
                    yield tool, name, parser


def test_every_checked_option_is_in_the_table() -> None:
    from sr_export.cli import common, coreml_cli

    checked = (common.WholeNumber, common.FiniteNumber)
    checked_functions = {common.size_argument, common.sizes_argument, common.chw_argument, common.name_list,
                         common.percent_argument, coreml_cli.range_argument}
    missing, unchecked = [], []
    for tool, name, parser in _parsers():
        tabled = COMMANDS.get(name)
        for action in parser._actions:
            label = action.option_strings[-1] if action.option_strings else action.metavar
            if action.type in (int, float):
                unchecked.append(f"{name} {label}")
            elif isinstance(action.type, checked) or action.type in checked_functions:
                if tabled is None or tabled.tool != tool or label not in tabled.options:
                    if not (action.option_strings and any(o in (tabled.options if tabled else {})
                                                           for o in action.option_strings)):
                        missing.append(f"{name} {label}")
        if tabled is None and name != tool and name not in NO_NUMBERS[tool]:
            missing.append(f"{name} (a command with no row)")
    assert not unchecked, f"options typed as plain int/float (NaN, 0, -1 pass): {unchecked}"
    assert not missing, f"checked options missing from the bad-input table: {missing}"
