"""Every command the README shows is one the tools accept: each `sr-export` / `sr-bench` line of its shell
blocks (read with Sybil) parses with the tool's own argument parser, so a renamed flag, a removed option or a
value the tool would refuse breaks this test; the listing commands are run. The INT8 figures the README
quotes are the ones in the results file the benchmark script writes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOOLS = ("sr-export", "sr-bench")
# Arguments that name files the parser checks exist (--from, check's artifact, ...): made as empty
# placeholders in a scratch folder, since parsing never reads them.
FILE_SUFFIXES = (".onnx", ".tflite", ".engine", ".pth", ".pt", ".safetensors", ".caffemodel", ".prototxt",
                 ".toml", ".json", ".py")
NOISE_DB = 0.005  # the results file and the README round the same measurement to 3 decimals


def commands(code: str) -> list[str]:
    """The command lines of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def readme_examples() -> list[Example]:
    document = Sybil(parsers=[CodeBlockParser(language="sh", evaluator=lambda example: None)]).parse(README)
    return list(document.examples())


def tool_lines() -> list[tuple[int, str]]:
    return [(example.line, line) for example in readme_examples() for line in commands(example.parsed)
            if line.split()[0] in TOOLS]


def parser_for(tool: str):
    """The tool's parser, taking flags only as spelled in full (argparse would read --size as --sizes)."""
    import argparse

    from sr_export.cli import bench_cli, export_cli

    parser = (export_cli if tool == "sr-export" else bench_cli).build_parser()
    todo = [parser]
    while todo:
        current = todo.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return parser


def test_the_readme_has_shell_blocks_full_of_commands() -> None:
    lines = tool_lines()
    assert len(readme_examples()) >= 10 and len(lines) >= 50, len(lines)
    assert {line.split()[0] for _, line in lines} == set(TOOLS)


@pytest.mark.parametrize(("line_number", "command"), tool_lines(),
                         ids=[f"README.md block at line {n}: {c[:60]}" for n, c in tool_lines()])
def test_every_readme_command_is_accepted_by_its_tool(line_number: int, command: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    words = [word for word in shlex.split(command, comments=True) if word != "..."]  # "..." elides flags
    for word in words[1:]:
        if word.lower().endswith(FILE_SUFFIXES) and not word.startswith("-") and "/" not in word.strip("./"):
            (tmp_path / word).touch()
        elif word.endswith(".mlpackage"):
            (tmp_path / word).mkdir(exist_ok=True)
    try:
        parser_for(words[0]).parse_args(words[1:])
    except SystemExit as exit_:
        pytest.fail(f"README.md, block at line {line_number}: `{command}` is refused by {words[0]} (exit {exit_.code}): "
                    f"{capsys.readouterr().err.strip()}")


@pytest.mark.parametrize("command", ["sr-export models", "sr-export runtimes"])
def test_the_readmes_listing_commands_run(command: str, sr_export) -> None:
    assert command in README.read_text()
    result = sr_export(*command.split()[1:])
    assert result.code == 0 and result.out.strip(), result.err


def _drops(text: str, pattern: str) -> dict[tuple[str, str], float]:
    return {(model, recipe): float(drop) for model, recipe, drop in re.findall(pattern, text, re.MULTILINE)}


def test_the_int8_figures_the_readme_quotes_are_the_results_files() -> None:
    readme = README.read_text()
    results = (REPO / "benchmarks" / "results" / "int8_set5.md").read_text()
    legacy = results.split("## On the dynamo exporter's graph")[0]
    # README: | E-RFDN x4 | `default` | 0.207 dB | 2.29x | 2.42x | 2.62x | 2.65x |
    row = r"^\| (E-RFDN x4|IMDN x4) \| `(default|mixed|qat)` \| "
    quoted = {(model, recipe): (float(drop), ratios) for model, recipe, drop, ratios in re.findall(
        row + r"\**([\d.]+) dB\** \| ([\d.x |]+)\|$", readme, re.MULTILINE)}
    # Results: | E-RFDN x4 | `default` | 32.138 | 31.931 | 0.207 | 2.29x | 2.42x | 2.62x | 2.65x | 0 | 39 | 0 |
    kernels = (REPO / "benchmarks" / "results" / "int8_set5_ort_kernels.md").read_text()
    measured = {(model, recipe): (float(drop), ratios) for model, recipe, drop, ratios in re.findall(
        row + r"[\d.]+ \| [\d.]+ \| ([\d.]+) \| ((?:[\d.]+x \| ){4})", kernels, re.MULTILINE)}
    assert len(quoted) == 6 and set(quoted) <= set(measured), (quoted, measured)
    for key, (drop, ratios) in quoted.items():
        assert drop == measured[key][0], (key, quoted[key], measured[key])
        assert re.findall(r"[\d.]+x", ratios) == re.findall(r"[\d.]+x", measured[key][1]), (key, ratios)
    # The legacy graph's drops before the rewrites, quoted in prose.
    before = _drops(legacy, r"^\| (E-RFDN x4|IMDN x4) \| \**(default|mixed)\** \| onnxruntime \| [\d.]+ \| [\d.]+ "
                            r"\| \**([\d.]+)\**")
    assert (f"({before[('E-RFDN x4', 'default')]:.3f} / {before[('E-RFDN x4', 'mixed')]:.3f} dB for\nE-RFDN, "
            f"{before[('IMDN x4', 'default')]:.3f} / {before[('IMDN x4', 'mixed')]:.3f} dB for IMDN)") in readme
    dynamo = {("erfdn x4", "default"): 0.179, ("erfdn x4", "mixed"): 0.100}
    for (model, recipe), drop in dynamo.items():
        assert f"{drop:.3f}" in readme
        row = re.search(rf"^\| {model} \| {recipe} \| onnxruntime \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|",
                        results.split("## On the dynamo exporter's graph")[1], re.MULTILINE)
        assert row and abs(float(row.group(1)) - drop) <= NOISE_DB


def test_the_openvino_figures_the_readme_quotes_are_the_results_file() -> None:
    readme = README.read_text().split("## OpenVINO", 1)[1].split("\n## ", 1)[0]
    results = (REPO / "benchmarks" / "results" / "openvino_set5.md").read_text()
    # README: | E-RFDN x4 | OpenVINO BF16 | 32.130 | 0.008 | 2.26x | 2.12x |
    quoted = re.findall(r"^\| ((?:E-RFDN|IMDN) x4) \| ([^|]+?) \| ([\d.]+) \| (-?[\d.]+) \| ([\d.]+)x \| ([\d.]+)x \|$",
                        readme, re.MULTILINE)
    # Results: | E-RFDN x4 | OpenVINO BF16 | 32.130 | 0.008 | 573.7 / 589.9 | 2.26x | 2068.2 / 2069.7 | 2.12x |
    measured = {(m, r): (psnr, drop, s256, s360) for m, r, psnr, drop, s256, s360 in re.findall(
        r"^\| ((?:E-RFDN|IMDN) x4) \| ([^|]+?) \| ([\d.]+) \| (-?[\d.]+) \| [\d.]+ / [\d.]+ \| ([\d.]+)x \| "
        r"[\d.]+ / [\d.]+ \| ([\d.]+)x \|$", results, re.MULTILINE)}
    assert len(quoted) == len(measured) == 10, (quoted, measured)
    for model, runner, *figures in quoted:
        assert measured[(model, runner)] == tuple(figures), (model, runner)
