"""The README's promises that are not doctests: the quickstart commands and CI running the same one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart.*?```console\n(.*?)```", text, re.S)
    assert block, "the README has a Quickstart with a console block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_is_exactly_two_commands_the_demo_and_the_tests() -> None:
    demo, tests = quickstart()
    assert demo.endswith("python -m capframe demo")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart()[1] in ci
