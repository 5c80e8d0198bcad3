"""What the docs show that the code already says, rendered by cog (``cog -r docs/*.md``).

``tests/test_docs.py`` runs ``cog --check``: a page that no longer matches the code fails the suite.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import textwrap

import capframe
from capframe import cli, errors, schemas


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def data_dictionary() -> str:
    """Every table's columns as one markdown table per table."""
    dictionary = schemas.data_dictionary()
    parts = []
    for (table,), columns in dictionary.group_by("table", maintain_order=True):
        rows = [
            f"| `{name}` | {dtype} | {'yes' if nullable else 'no'} | {_cell(description)} |"
            for name, dtype, nullable, description in columns.select(
                "column", "dtype", "nullable", "description"
            ).iter_rows()
        ]
        parts.append(f"### `{table}`\n\n| column | dtype | null | description |\n|---|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


def identifier_types() -> str:
    rows = [f"| `{kind}` | {_cell(where)} |" for kind, where in schemas.IDENTIFIER_TYPES.items()]
    return "| identifier type (API) | columns |\n|---|---|\n" + "\n".join(rows)


def client_options() -> str:
    """The ``Options:`` section of Client's docstring (entries ``    name: text``, continuation lines
    indented 8), with each option's default from the signature."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(capframe.Client).parameters.items()}
    doc = inspect.cleandoc(capframe.Client.__doc__ or "")
    section = re.search(r"^Options:\n((?:(?: {4}.*)?\n?)+)", doc, re.MULTILINE)
    entries: dict[str, str] = {}
    if section:
        name = None
        for line in section.group(1).splitlines():
            if entry := re.match(r"^ {4}(\w+): ?(.*)$", line):
                name = entry.group(1)
                entries[name] = entry.group(2).strip()
            elif name and line.startswith(" " * 8):
                entries[name] += " " + line.strip()
            elif not line.strip():
                continue
            else:
                break
    if not entries:  # no section yet: the options and their defaults, without descriptions
        entries = dict.fromkeys(defaults, "")
    rows = [
        f"| `{name}` | {_default(defaults.get(name, inspect.Parameter.empty))} | {_cell(text)} |"
        for name, text in entries.items()
    ]
    return "| option | default | description |\n|---|---|---|\n" + "\n".join(rows)


def _default(value: object) -> str:
    return "required" if value is inspect.Parameter.empty else f"`{value!r}`"


def cli_help(*command: str) -> str:
    """``capframe [command] --help``, as printed (at 100 columns, so the page is the same everywhere)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli._parser(width=100).parse_args([*command, "--help"])
    return "```text\n" + out.getvalue().rstrip() + "\n```"


def error_tree() -> str:
    """The tree drawn in ``capframe/errors.py``'s docstring."""
    doc = inspect.cleandoc(errors.__doc__ or "")
    start = doc.rindex("\n", 0, doc.index("CapframeError")) + 1
    tree = textwrap.dedent(doc[start : doc.index("Messages never")]).strip()
    return "```text\n" + tree + "\n```"
