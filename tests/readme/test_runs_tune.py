"""The README's commands in the sections of group 'tune' (readme_blocks.GROUPS) run as printed, in order, on
small sizes, and do what the README says (see readme_blocks for what the run changes)."""

from __future__ import annotations

import pytest
from readme_blocks import group_commands

COMMANDS = group_commands("tune")


@pytest.mark.parametrize("command", COMMANDS, ids=[c.label for c in COMMANDS])
def test_the_readme_command_does_what_it_says(command, run_readme) -> None:
    run_readme(command)
