"""Benchmark figures written into benchmarks/README.md by the scripts themselves, never copied by hand.

Each script wraps its run in ``report(name, write=args.write)``: what it prints on stdout is shown as
usual and, with ``--write``, also replaces the section of benchmarks/README.md between
``<!-- name:start -->`` and ``<!-- name:end -->`` (appended at the end of the file if absent), under
a line giving the command, the date, the commit, the CPU count and the load average. Progress lines
belong on stderr, so that only figures land in the README. A run that raises writes nothing.

Standard library only: the unit tests import this module without capframe's dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["README", "add_write_flag", "replace_section", "report", "revision"]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "benchmarks" / "README.md"


def add_write_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write",
        action="store_true",
        help="also write the figures into this script's section of benchmarks/README.md (default: print only)",
    )


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` holding ``body``; the section is appended if ``text`` has none.

    Raises ValueError when the markers are damaged (one without the other, twice, or end before
    start), or when ``body`` holds one of them: a README edited by hand is repaired by hand.
    """
    start, end = markers(name)
    if start in body or end in body:
        raise ValueError(f"the figures for {name!r} contain one of its section markers")
    block = f"{start}\n{body.strip(chr(10))}\n{end}"
    counts = text.count(start), text.count(end)
    if counts == (0, 0):
        return f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"
    first, last = text.find(start), text.find(end)
    if counts != (1, 1) or last < first:
        order = " (end before start)" if counts == (1, 1) else ""
        raise ValueError(
            f"the README has {counts[0]} {start!r} and {counts[1]} {end!r}{order}: "
            "leave exactly one of each, start first, and rerun"
        )
    return text[:first] + block + text[last + len(end) :]


def revision() -> str:
    """The checkout being measured: commit, and whether capframe/ has uncommitted changes."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "capframe")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"capframe at {head}{' + uncommitted changes' if dirty else ''}"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def _command() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


class _Tee(io.TextIOBase):
    """stdout as usual, and a copy of it."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def report(name: str, *, write: bool, readme: Path = README) -> Iterator[None]:
    """Print as usual; with ``write``, put what was printed into ``readme``'s section ``name`` at the end."""
    started = datetime.datetime.now(datetime.UTC)
    header = (
        f"`{_command()}` on {started:%Y-%m-%d %H:%M} UTC, {revision()}; "
        f"{os.cpu_count()} CPU(s), load average {_load()} (1 / 5 / 15 min) at the start"
    )
    tee = _Tee(sys.stdout)  # type: ignore[arg-type]
    with contextlib.redirect_stdout(tee):
        yield
    if not write:
        return
    body = (
        f"<!-- written by the command below with --write (benchmarks/_report.py): edits here are overwritten -->\n"
        f"{header}, {_load()} at the end; it printed:\n\n```text\n{tee.copy.getvalue().strip(chr(10))}\n```"
    )
    readme.write_text(replace_section(readme.read_text(encoding="utf-8"), name, body), encoding="utf-8")
    print(f"figures written into {readme} (section {name})", file=sys.stderr)
