"""Every command in the README is run by some test: each section with `sr-export`/`sr-bench` lines belongs to
one group of tests/readme/test_runs_*.py; the other lines (make, pip, pytest) name targets, extras and test
files that exist; and every `[needs: ...]` tag is one the runner knows."""

from __future__ import annotations

import re

from readme_blocks import GROUPS, REPO, TOOLS, readme_commands

from sr_export.core.resources import tomllib

KNOWN_NEEDS = {"nvidia-gpu", "intel-gpu", "mac", "board"}


def test_every_section_with_commands_is_run_by_exactly_one_group() -> None:
    sections = {c.section for c in readme_commands() if c.tool in TOOLS}
    grouped = [section for group in GROUPS.values() for section in group]
    assert len(grouped) == len(set(grouped))
    assert sections == set(grouped), f"not run: {sections - set(grouped)}; gone from the README: {set(grouped) - sections}"
    for group in GROUPS:
        assert (REPO / "tests" / "readme" / f"test_runs_{group}.py").is_file(), group


def test_every_needs_tag_is_known() -> None:
    tags = {c.needs for c in readme_commands() if c.needs}
    assert tags <= KNOWN_NEEDS, tags - KNOWN_NEEDS
    assert "nvidia-gpu" in tags and "board" in tags


def test_make_pip_and_pytest_lines_name_what_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    others = [c for c in readme_commands() if c.tool not in TOOLS]
    assert {c.tool for c in others} == {"make", "pip"}, {c.tool for c in others}
    for command in others:
        words = command.words
        if command.tool == "make":
            assert re.search(rf"^{words[1]}:", makefile, re.MULTILINE), command.text
        else:
            requirement = next(w for w in words if w.startswith(("sr-export[", ".[")))
            assert set(requirement.split("[")[1].rstrip("]").split(",")) <= set(extras), command.text
            tests = [w for w in words if w.startswith("tests/")]
            assert all((REPO / t).is_file() for t in tests), command.text
    assert "make test" in (REPO / ".ci" / "run").read_text()  # CI runs the README's test command
