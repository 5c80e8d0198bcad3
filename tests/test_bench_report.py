"""benchmarks/_report.py: the section of benchmarks/README.md that a benchmark script writes its figures into."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_report", BENCHMARKS / "_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_report = _load()
replace_section = _report.replace_section

README = """# Benchmarks

**`bench_parse.py`** parses pages.

<!-- bench_parse:start -->
old figures
<!-- bench_parse:end -->

**`bench_fetch.py`** fetches.

<!-- bench_fetch:start -->
fetch figures
<!-- bench_fetch:end -->
"""


def test_replaces_only_the_named_section() -> None:
    out = replace_section(README, "bench_parse", "new figures\n1.23 s")
    assert out == README.replace("old figures", "new figures\n1.23 s")


def test_replacing_again_with_the_same_body_changes_nothing() -> None:
    once = replace_section(README, "bench_fetch", "\nfigures\n\n")
    assert replace_section(once, "bench_fetch", "figures") == once
    assert "<!-- bench_fetch:start -->\nfigures\n<!-- bench_fetch:end -->" in once


def test_a_missing_section_is_appended_at_the_end() -> None:
    out = replace_section(README, "soak", "OK")
    assert out.startswith(README.rstrip())
    assert out.endswith("\n\n<!-- soak:start -->\nOK\n<!-- soak:end -->\n")
    assert replace_section("", "soak", "OK") == "<!-- soak:start -->\nOK\n<!-- soak:end -->\n"


def test_a_name_that_prefixes_another_does_not_match_it() -> None:
    text = "<!-- bench:start -->\nx\n<!-- bench:end -->\n<!-- bench_parse:start -->\ny\n<!-- bench_parse:end -->\n"
    assert replace_section(text, "bench", "z") == text.replace("\nx\n", "\nz\n")


@pytest.mark.parametrize(
    ("damaged", "says"),
    [
        (README.replace("<!-- bench_parse:end -->", ""), "1 '<!-- bench_parse:start -->' and 0"),
        (README.replace("<!-- bench_parse:start -->", ""), "0 '<!-- bench_parse:start -->' and 1"),
        (README + "<!-- bench_parse:start -->\n", "2 '<!-- bench_parse:start -->' and 1"),
        (
            README.replace("<!-- bench_parse:start -->", "@")
            .replace("<!-- bench_parse:end -->", "<!-- bench_parse:start -->")
            .replace("@", "<!-- bench_parse:end -->"),
            "end before start",
        ),
    ],
)
def test_damaged_markers_are_refused_with_what_to_fix(damaged: str, says: str) -> None:
    with pytest.raises(ValueError, match="leave exactly one of each") as caught:
        replace_section(damaged, "bench_parse", "new")
    assert says in str(caught.value)


def test_a_body_holding_a_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="contain one of its section markers"):
        replace_section(README, "bench_parse", "x\n<!-- bench_parse:end -->\ny")


def test_report_prints_and_writes_only_with_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    with _report.report("bench_parse", write=False, readme=readme):
        print("figures 1.0 s")
    assert readme.read_text(encoding="utf-8") == README
    assert capsys.readouterr().out == "figures 1.0 s\n"

    with _report.report("bench_parse", write=True, readme=readme):
        print("figures 2.0 s")
        print("progress", file=sys.stderr)
    out = readme.read_text(encoding="utf-8")
    section = out.split("<!-- bench_parse:start -->")[1].split("<!-- bench_parse:end -->")[0]
    assert "```text\nfigures 2.0 s\n```" in section
    assert "progress" not in section
    assert "UTC" in section
    assert "CPU(s), load average" in section
    assert "capframe at " in section or "not a git checkout" in section
    assert "fetch figures" in out  # other sections untouched
    assert capsys.readouterr().out == "figures 2.0 s\n"


def test_a_run_that_raises_writes_nothing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")

    def interrupted_run() -> None:
        with _report.report("bench_parse", write=True, readme=readme):
            print("half the figures")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted_run()
    assert readme.read_text(encoding="utf-8") == README
