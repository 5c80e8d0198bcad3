"""The command line: the library's features, one command each.

    capframe demo                                  fetch from the embedded sandbox, summarise, write parquet
    capframe customers --ids ids.txt --source INSTORE -o customers.parquet
    capframe children --parent mobile:917799889933 -o children.parquet
    capframe sandbox --port 8080                   serve the emulator on loopback for other tools
    capframe snapshot info report-snapshot         what a cache_dir holds (also: verify, prune --older-than 30d)

Credentials come from CAPILLARY_* variables, or ``--sandbox`` uses the emulator.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import functools
import os
import re
import stat
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import AnyStr, TextIO

import polars as pl

from capframe import __version__, _args, _export
from capframe._children import ASSOCIATIONS, SORT_ORDERS
from capframe._client import Client
from capframe._fetch import fetch_children_tables, fetch_customer_tables
from capframe._inert import visible, visible_table
from capframe._snapshot import MOST_DAYS, Snapshot
from capframe._tables import ChildrenTables, CustomerLookupTables, CustomerTables
from capframe.errors import CapframeError, CapframeWarning, InvalidArgumentError

__all__ = ["main"]

_CONFIGURE = (
    "set CAPILLARY_HOST (a cluster alias eu, apac, apac2, us, cn or a base URL) and "
    "CAPILLARY_USERNAME/CAPILLARY_PASSWORD (Basic auth: till code and password) or "
    "CAPILLARY_CLIENT_KEY/CAPILLARY_CLIENT_SECRET (OAuth); or pass --sandbox for the embedded emulator"
)
_ENV_HELP = f"Credentials: {_CONFIGURE}."
# The library's remedy for missing credentials names Python arguments (client=, username and password,
# Client.sandbox()); what precedes it says what is wrong.
_PYTHON_REMEDY = re.compile(r"client=|Client\.sandbox\(\)|\bpass username|from_env")
_REMEDY_START = re.compile(r": (?P<lead>to fetch them, )?(?:set CAPILLARY_HOST|pass username).*", re.DOTALL)


def _for_the_command_line(exc: CapframeError) -> str:
    """An error in a CLI user's terms: a remedy naming Python arguments becomes the command line's
    variables and --sandbox; what went wrong is kept as the library said it."""
    message = str(exc)
    if not _PYTHON_REMEDY.search(message):
        return message
    remedy = _REMEDY_START.search(message)
    if remedy is None:  # a wording not known here: the command line's remedy still reaches the user
        return f"{message}; on the command line, {_CONFIGURE}"
    what = message[: remedy.start()]
    if "USERNAME" not in remedy.group().upper():  # only the host is in question: a snapshot of several
        return f"{what}: set CAPILLARY_HOST to say which one"
    return f"{what}: {remedy['lead'] or ''}{_CONFIGURE}"


# The library's warnings point at a Python accessor; the command line's table of the same rows.
_ACCESSOR = re.compile(r"fetch_\w+_tables\(\.\.\.\)\.failed_(?P<table>parents|lookups)")


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object, **__: object
) -> None:
    """capframe's warnings as a command line says things: no file and line of capframe's code, a
    remedy in options, control characters from data shown as escapes; other warnings as Python shows them."""
    if not issubclass(category, CapframeWarning):
        _python_show_warning(message, category, filename, lineno)
        return
    text = _ACCESSOR.sub(lambda m: f"--table {m['table']} (or the {m['table']} sheet of -o FILE.xlsx)", str(message))
    print(f"capframe: warning: {visible(text)}", file=sys.stderr)


_python_show_warning = warnings.showwarning


# An ids file is untrusted input, read whole: bounded so that /dev/zero, an endless pipe or a runaway
# export is an error, not a machine out of memory. A million ids (the scale capframe is measured at)
# take 10 MB as plain lines, and a CSV export with other columns at most a few hundred bytes a row.
MAX_IDS_BYTES = 128 << 20
MAX_IDS_LINES = 2_000_000


def _read_ids(source: str, stdin: TextIO, column: str | None = None) -> list[int]:
    """Ids separated by commas, spaces or new lines (lines starting with # are comments), or a CSV
    file's column: the one ``column`` names, else ``customer_id``, else its only named column."""
    text = _bounded(stdin.read(MAX_IDS_BYTES + 1), "stdin") if source == "-" else _text_of(source)
    text = text.removeprefix("\ufeff")
    if text.count("\n") > MAX_IDS_LINES:
        raise InvalidArgumentError(
            f"{'stdin' if source == '-' else f'--ids {source}'} has more than {MAX_IDS_LINES:,} lines, the most capframe reads as"
            " an ids file: split the ids into several files and run once per file (with --cache-dir, a run reads"
            " again what another fetched)"
        )
    lines = [(number, line.split("#", 1)[0].strip()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    header = lines[0][1] if lines else ""
    if lines and (column is not None or _is_header(header)):
        ids = _ids_of_column(source, lines, column)
    else:
        ids = [_id(source, number, token) for number, line in lines for token in re.split(r"[\s,;]+", line) if token]
    if not ids:
        raise InvalidArgumentError(
            f"{'stdin' if source == '-' else source} holds no customer ids: give a file with one id per line,"
            " or a CSV file with a customer_id column"
        )
    return ids


def _read_values(source: str, stdin: TextIO, column: str | None) -> list[str]:
    """Identifier values, one a line (lines starting with # are comments), or with ``column`` a CSV
    file's column. A value keeps its text (leading zeros, ``+``, inner spaces): only lines split it."""
    text = _bounded(stdin.read(MAX_IDS_BYTES + 1), "stdin") if source == "-" else _text_of(source)
    lines = [(number, line.strip()) for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if column is None:
        numbered = lines
    else:
        names = _cells(lines[0][1], _delimiter(lines[0][1])) if lines else []
        if column not in names:
            raise InvalidArgumentError(
                f"{source}: its header names the columns {', '.join(names)}: no column {column!r}"
            )
        at = names.index(column)
        cells = [(number, _cells(line, _delimiter(lines[0][1]))) for number, line in lines[1:]]
        numbered = [(number, row[at] if at < len(row) else "") for number, row in cells]
    where = "stdin" if source == "-" else source
    if not numbered:
        raise InvalidArgumentError(f"{where} holds no identifier values: give one a line")
    # The library's rule, checked here so that a bad value is named by its line (never shown: personal data).
    return [_args.identifier_value(value, f"{where}: line {number}") for number, value in numbered]


def _delimiter(header: str) -> str:
    """Tabs, else semicolons (Excel's CSV where the comma is a decimal mark), else commas."""
    return "\t" if "\t" in header else ";" if ";" in header and "," not in header else ","


def _cells(line: str, delimiter: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter))]


def _is_header(line: str) -> bool:
    """Names such as customer_id, some perhaps empty (pandas' index); a missing value such as NaN is no name."""
    names = [name for name in _cells(line, _delimiter(line)) if name]
    return bool(names) and all(re.fullmatch(r"[A-Za-z_][\w .-]*", name) and not _is_missing(name) for name in names)


def _text_of(source: str) -> str:
    """The text of an ids file as spreadsheets save it: UTF-8 (with or without a BOM) or UTF-16 with a BOM."""
    try:
        if stat.S_ISCHR(mode := os.stat(source).st_mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            raise InvalidArgumentError(
                f"--ids {source} is a device, not a file: give the path of a file of customer ids (or - for stdin)"
            )
        with open(source, "rb") as file:  # a FIFO (a shell's <(...)) too, as far as the bound
            data = _bounded(file.read(MAX_IDS_BYTES + 1), f"--ids {source}")
    except FileNotFoundError:
        raise InvalidArgumentError(f"--ids {source}: no such file: give the path of a file of customer ids") from None
    except IsADirectoryError:
        raise InvalidArgumentError(f"--ids {source} is a folder: give the path of a file of customer ids") from None
    except OSError as exc:
        raise InvalidArgumentError(f"--ids {source} cannot be read ({exc.strerror}): check its permissions") from None
    try:
        return data.decode("utf-16") if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else data.decode()
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"--ids {source} is not a text file (UTF-8 or UTF-16): save the ids as CSV or plain text"
        ) from None


def _bounded(data: AnyStr, name: str) -> AnyStr:
    """``data`` read with a bound of MAX_IDS_BYTES + 1: more than the bound is an error."""
    if len(data) > MAX_IDS_BYTES:
        raise InvalidArgumentError(
            f"{name} holds more than {MAX_IDS_BYTES >> 20} MiB, the most capframe reads as an ids file: give a file"
            " of customer ids (one a line, or a CSV column), split into several files if it is that long"
        )
    return data


_MISSING = {"nan", "na", "n/a", "null", "none", "<na>", "nat"}


def _is_missing(token: str) -> bool:
    return token.strip('"').lower() in _MISSING


def _id(source: str, number: int, token: str) -> int:
    """The id on line ``number`` of the file: checked here, so that a bad one is named by its line."""
    token = token.strip().strip('"')
    if (customer_id := _args.id_of_text(token)) is not None:  # the library's rule: the same ids in both
        return customer_id
    where = f"{'stdin' if source == '-' else source}: line {number}"
    if not token or _is_missing(token):
        raise InvalidArgumentError(
            f"{where}: {token or 'an empty value'!r} is a missing value, not a customer id"
            " (pandas writes a missing id as NaN or leaves it empty): drop the rows without an id"
            " (DataFrame.dropna) and write the file again"
        )
    raise InvalidArgumentError(
        f"{where}: {token[:20]!r} is not a customer id: customer ids are positive integers below 2**63;"
        " correct or remove that line"
    )


def _ids_of_column(source: str, lines: list[tuple[int, str]], column: str | None) -> list[int]:
    """A CSV file (a header line, then rows, separated by commas, semicolons or tabs): the ids of one column."""
    delimiter = _delimiter(lines[0][1])
    names = _cells(lines[0][1], delimiter)
    named = [name for name in names if name]  # pandas writes its index under an empty name
    if column is None:
        column = "customer_id" if "customer_id" in names else named[0] if len(named) == 1 else None
    if column is None or column not in names:
        raise InvalidArgumentError(
            f"{source}: its header names the columns {', '.join(named)}: "
            + ("say which holds the customer ids with --column NAME" if column is None else f"no column {column!r}")
        )
    index = names.index(column)
    ids = []
    for number, line in lines[1:]:
        cells = _cells(line, delimiter)
        ids.append(_id(source, number, cells[index] if index < len(cells) else ""))
    return ids


def _parent(text: str) -> tuple[str, str] | int:
    if text.isdigit():
        return int(text)
    kind, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: use TYPE:VALUE such as mobile:917799889933, or a customer id")
    return kind, value


_KEY_COLUMNS = {
    "customers": ["customer_id", "success", "error_code", "first_name", "loyalty_type", "lifetime_purchases"],
    "children": ["parent_type", "customer_id", "first_name", "role_code", "no_of_children"],
}
_SHOWN_ROWS = 10


def _output_kind(output: str | None) -> str:
    """What ``-o`` writes: ``summary`` (no -o: nothing), ``stdout``, ``workbook``, ``folder`` or ``file``."""
    if output is None:
        return "summary"
    if output == "-":
        return "stdout"
    suffix = Path(output).suffix.lower()
    if suffix == ".xlsx":
        return "workbook"
    if not suffix or output.endswith(("/", os.sep)) or Path(output).is_dir():
        return "folder"
    return "file"


_WRITES = {
    "summary": "without -o nothing is written",
    "stdout": "-o - writes one table as CSV",
    "workbook": "-o {} writes every table to a workbook",
    "folder": "-o {} writes every table to a folder",
    "file": "-o {} writes one table, in the format its suffix names",
}


def _refuse_conflicts(args: argparse.Namespace, names: Sequence[str]) -> None:
    """Options that contradict each other, or do nothing for the output asked, are refused before
    anything is fetched: a silent choice would write what was not asked for."""
    kind = _output_kind(args.output)
    writes = _WRITES[kind].format(args.output)
    if args.format is not None and kind != "folder":
        raise InvalidArgumentError(
            f"--format {args.format} chooses the files of -o FOLDER, but {writes}: drop --format, or give -o a"
            " folder (a path ending in /)"
        )
    if args.table is not None and kind not in ("stdout", "file"):
        raise InvalidArgumentError(
            f"--table {args.table} chooses the one table of -o FILE or -o -, but {writes}:"
            " drop --table, or give -o a .parquet, .csv or .ndjson file"
        )
    if args.table is not None and args.table not in names:
        raise InvalidArgumentError(f"--table {args.table}: use one of {', '.join(names)}")
    suffix = Path(args.output).suffix.lower() if kind == "file" else ""
    writes_csv = kind == "stdout" or suffix == ".csv" or (kind == "folder" and args.format == "csv")
    if not args.spreadsheet_safe and not writes_csv:
        raise InvalidArgumentError(
            f"--no-spreadsheet-safe changes CSV files only, and no CSV is written ({writes}): drop"
            f" --no-spreadsheet-safe{', or add --format csv' if kind == 'folder' else ''}"
        )
    if getattr(args, "max_age", None) is not None and getattr(args, "cache_dir", None) is None:
        raise InvalidArgumentError(
            "--max-age says when the units of a snapshot are too old, and without --cache-dir there is no"
            " snapshot: add --cache-dir DIR, or drop --max-age"
        )


def _write(tables: CustomerTables | ChildrenTables, args: argparse.Namespace, out: TextIO) -> str | None:
    """Write what ``-o`` asks for; say what was written (None: nothing was)."""
    output: str = args.output
    kind = _output_kind(output)
    if kind == "summary":
        return None
    name = args.table or tables.NAMES[0]  # checked by _refuse_conflicts
    if kind == "stdout":
        frame = _export.csv_ready(tables.tables()[name], args.spreadsheet_safe)
        out.write(frame.write_csv(datetime_format=_export.CSV_DATETIME_FORMAT))
        return "the table as CSV on stdout"
    if kind == "workbook":
        tables.write_excel(output)
        return f"every table to {output}, one sheet each"
    if kind == "folder":
        written = (
            tables.write_csv(output, spreadsheet_safe=args.spreadsheet_safe)
            if args.format == "csv"
            else tables.write_parquet(output)
        )
        return f"every table to {output.rstrip('/' + os.sep)}/ ({', '.join(path.name for path in written.values())})"
    frame = tables.tables()[name]
    _export.write_table(frame, output, spreadsheet_safe=args.spreadsheet_safe)
    return f"{name} ({frame.height:,} rows) to {output}"


def _summarise(tables: CustomerTables | ChildrenTables, written: str | None, out: TextIO) -> None:
    """What a terminal has room for: the outcome, a few key columns of a few rows, where the rest is."""
    main, frame = next(iter(tables.tables().items()))
    failed = tables.failed_ids
    print(f"{main}: {frame.height:,} rows, {len(failed):,} failed ids", file=out, end="")
    if "error_code" in frame.columns and failed:
        codes = frame.filter(~pl.col("success")).group_by("error_code").len().sort("error_code", nulls_last=True)
        print(
            " (" + ", ".join(f"{code or 'no answer'}: {n:,}" for code, n in codes.iter_rows()) + ")", file=out, end=""
        )
    print(file=out)
    if tables.provenance is not None:
        print(f"This run: {tables.provenance.run()}", file=out)
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_cols=-1, fmt_str_lengths=24):
        print(visible_table(frame.select(_KEY_COLUMNS[main]).head(_SHOWN_ROWS)), file=out)
    more = f"{frame.height - _SHOWN_ROWS:,} more rows, " if frame.height > _SHOWN_ROWS else ""
    tables_text = ", ".join(f"{name} {f.height:,}x{f.width}" for name, f in tables.tables().items())
    print(f"({more}{frame.width} columns; tables: {tables_text})", file=out)
    if written:
        print(f"Wrote {written}", file=out)
    else:
        print("Every column of every table: -o report.xlsx, or -o FOLDER (one file per table)", file=out)


def _client(args: argparse.Namespace) -> Client | None:
    """The sandbox, or None: the fetch reads CAPILLARY_*, and needs none of them when a snapshot
    (--cache-dir) holds everything asked."""
    options = {"batch_size": args.batch_size} if getattr(args, "batch_size", None) else {}
    return Client.sandbox(**options) if args.sandbox else None


def _customers(args: argparse.Namespace, out: TextIO) -> int:
    _refuse_conflicts(args, CustomerLookupTables.NAMES if args.identifier else CustomerTables.NAMES)
    if args.account_id is not None and not args.identifier:
        raise InvalidArgumentError("--account-id goes with --identifier: customer ids need no account")
    if args.identifier:
        ids: list[int] | list[str] = _read_values(args.ids, sys.stdin, args.column)
    else:
        ids = _read_ids(args.ids, sys.stdin, args.column)
    tables = fetch_customer_tables(
        ids,
        args.source,
        identifier=args.identifier,
        account_id=args.account_id,
        client=_client(args),
        batch_size=args.batch_size,
        progress=False if args.no_progress else None,
        cache_dir=args.cache_dir,
        max_age=args.max_age,
    )
    _report(tables, args, out)
    return 0


def _children(args: argparse.Namespace, out: TextIO) -> int:
    _refuse_conflicts(args, ChildrenTables.NAMES)
    tables = fetch_children_tables(
        args.parent if len(args.parent) > 1 else args.parent[0],
        source=args.source,
        client=_client(args),
        association=args.association,
        page_size=args.page_size,
        sort_order=args.sort_order,
        progress=False if args.no_progress else None,
        cache_dir=args.cache_dir,
        max_age=args.max_age,
    )
    _report(tables, args, out)
    return 0


def _report(tables: CustomerTables | ChildrenTables, args: argparse.Namespace, out: TextIO) -> None:
    written = _write(tables, args, out)
    _summarise(tables, written, sys.stderr if args.output == "-" else out)


def _duration(text: str) -> float:
    """30d, 12h, 15m, 90s or plain seconds -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number with d, h, m or s, such as 30d or 12h")
    seconds = float(match.group(1)) * {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
    if seconds > MOST_DAYS * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is over a thousand years: use at most {MOST_DAYS}d")
    return seconds


def _snapshot_info(args: argparse.Namespace, out: TextIO) -> int:
    print(Snapshot(args.dir).info(), file=out)
    return 0


def _snapshot_verify(args: argparse.Namespace, out: TextIO) -> int:
    damaged = Snapshot(args.dir).verify()
    for name in damaged:
        print(f"damaged: {visible(name)}", file=out)
    print(
        f"{len(damaged)} damaged file(s): the next fetch with this cache_dir fetches their units again"
        if damaged
        else f"{visible(args.dir)}: every file is intact",
        file=out,
    )
    return 1 if damaged else 0


def _snapshot_prune(args: argparse.Namespace, out: TextIO) -> int:
    removed = Snapshot(args.dir).prune(args.older_than)
    print(
        f"removed {removed:,} unit(s) fetched more than {timedelta(seconds=args.older_than)} ago from {args.dir}",
        file=out,
    )
    return 0


def _sandbox(args: argparse.Namespace, out: TextIO) -> int:
    from capframe.sandbox import Sandbox, serve

    faults = [kind for kind in args.faults.split(",") if kind] if args.faults else None
    org = Sandbox(
        args.customers,
        seed=args.seed,
        latency=args.latency,
        faults=faults,
        requests_per_minute=args.rpm,
        capacity=args.capacity,
    )
    if args.print_ids:
        print("\n".join(map(str, org.customer_ids(args.print_ids))), file=out)
        return 0
    with serve(org, port=args.port) as server:
        print(
            f"capframe sandbox: {args.customers:,} customers (seed {args.seed}) at {server.url}\n"
            f"  Basic auth: username {Sandbox.USERNAME!r}, password {Sandbox.PASSWORD!r}; "
            f"OAuth: key {Sandbox.CLIENT_KEY!r}, secret {Sandbox.CLIENT_SECRET!r}\n"
            f"  e.g. CAPILLARY_HOST={server.url} CAPILLARY_USERNAME={Sandbox.USERNAME} "
            f"CAPILLARY_PASSWORD={Sandbox.PASSWORD} capframe customers --ids ids.txt\n"
            "  Ctrl-C stops it.",
            file=out,
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.ids is not None:
        raise InvalidArgumentError(
            f"demo --ids {args.ids}: say --count {args.ids} (how many sandbox customers to fetch); --ids names a"
            " file of ids, in `capframe customers`"
        )
    if args.count < 1 or args.count > args.customers:
        raise InvalidArgumentError(
            f"--count {args.count}: fetch at least one customer"
            if args.count < 1
            else f"--count {args.count:,}: the sandbox has {args.customers:,} customers; ask fewer, or more --customers"
        )
    _refuse_conflicts(args, CustomerTables.NAMES)
    summary = sys.stderr if args.output == "-" else out  # stdout holds the CSV then
    client = Client.sandbox(args.customers, requests_per_minute=None)
    assert client.sandbox_org is not None
    org = client.sandbox_org
    ids = org.customer_ids(args.count)
    ids += [*org.unknown_ids(3), *[i for i in org.pii_deleted_ids() if i not in set(ids)][:2]]
    started = time.perf_counter()
    tables = fetch_customer_tables(ids, "INSTORE", client=client, progress=False if args.no_progress else None)
    seconds = time.perf_counter() - started
    customers = tables.customers
    print(
        f"Fetched {len(ids):,} ids from the embedded sandbox in {seconds:.2f} s: {visible(repr(tables))}\n",
        file=summary,
    )
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_rows=12):
        print("Outcome by error code (8109 PII-deleted, 8015 unknown, 8065 not in this source):", file=summary)
        print(customers.group_by("success", "error_code").len().sort("len", descending=True), file=summary)
        # Over the returned customers only: the API sends loyalty data with some failed ids too.
        returned = tables.returned().customers
        print("\nLifetime purchases of returned customers, by loyalty type:", file=summary)
        by_type = returned.group_by("loyalty_type").agg(
            pl.len().alias("customers"),
            pl.col("lifetime_purchases").sum().round().cast(pl.Int64).alias("lifetime_purchases"),
        )
        print(visible_table(by_type.sort("loyalty_type")), file=summary)
        print("\nIdentifier coverage (share of returned customers with one):", file=summary)
        print(
            returned.select(pl.col("mobile", "email", "external_id").is_not_null().mean().round(3)),
            file=summary,
        )
    print(f"\nWrote {_write(tables, args, out)}", file=summary)
    return 0


def _parser(width: int | None = None) -> argparse.ArgumentParser:
    """The parser; ``width`` fixes the help's width (the docs render it at 100 columns)."""
    formatter = functools.partial(argparse.HelpFormatter, width=width) if width else argparse.HelpFormatter
    parser = argparse.ArgumentParser(
        prog="capframe",
        formatter_class=formatter,
        description="Capillary CRM customers as tidy, validated tables (polars), from a cluster or the embedded sandbox.",
        epilog=_ENV_HELP,
    )
    parser.add_argument("--version", action="version", version=f"capframe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command = functools.partial(commands.add_parser, formatter_class=formatter)

    def spreadsheet_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--no-spreadsheet-safe",
            dest="spreadsheet_safe",
            action="store_false",
            help="CSV for programs: every text as it is (default: a text starting with = + - @, a tab, CR or LF, which"
            " a spreadsheet would run as a formula, gets a ' in front)",
        )

    demo = add_command("demo", help="fetch customers from the embedded sandbox, print a summary, write parquet")
    demo.add_argument("--count", type=int, default=3000, help="how many sandbox customers to fetch (default 3000)")
    demo.add_argument("--ids", help=argparse.SUPPRESS)  # its old name: refused with the new one
    demo.add_argument("--customers", type=int, default=10_000, help="size of the synthetic organisation")
    demo.add_argument(
        "-o",
        "--output",
        default="customers.parquet",
        help="the customers table to a .parquet (default customers.parquet), .csv or .ndjson file; every table"
        " to a .xlsx workbook or a FOLDER",
    )
    demo.set_defaults(table=None, format=None)  # the customers table; a folder gets parquet
    spreadsheet_option(demo)
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)

    def snapshot_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--cache-dir",
            help="a snapshot folder: what it holds is not asked again, and a complete one needs no credentials",
        )
        command.add_argument(
            "--max-age", type=_duration, help="with --cache-dir: fetch again what is older, such as 30d or 12h"
        )

    def common(command: argparse.ArgumentParser, tables: Iterable[str], main: str) -> None:
        command.add_argument(
            "--source", default="INSTORE", help=f"source (default INSTORE; one of {', '.join(sorted(_args.SOURCES))})"
        )
        command.add_argument("--sandbox", action="store_true", help="use the embedded sandbox instead of CAPILLARY_*")
        command.add_argument(
            "--table", help=f"which table -o FILE or -o - writes: {', '.join(tables)} (default {main})"
        )
        command.add_argument(
            "-o",
            "--output",
            help="every table: a .xlsx workbook (one sheet each) or a FOLDER (one file each); one table (--table):"
            " a .parquet, .csv or .ndjson file, or - for CSV on stdout. Default: print a summary",
        )
        command.add_argument("--format", choices=["parquet", "csv"], help="the files of -o FOLDER (default parquet)")
        spreadsheet_option(command)
        command.add_argument("--no-progress", action="store_true", help="no progress bar")

    customers = add_command("customers", help="Get Customers Bulk for a list of ids (or identifiers)", epilog=_ENV_HELP)
    customers.add_argument(
        "--ids",
        required=True,
        help="file of customer ids (commas, spaces or lines), or a CSV file with a header line; - for stdin;"
        " with --identifier, a file of identifier values, one a line (or a CSV column with --column)",
    )
    customers.add_argument(
        "--column", help="the CSV column holding the ids (default customer_id, or the file's only column)"
    )
    customers.add_argument(
        "--identifier",
        choices=list(_args.IDENTIFIER_TYPES.values()),
        help="the file holds identifier values of this type, not customer ids: each is looked up (one request a"
        " value), then its customer fetched; the lookups table maps every value",
    )
    customers.add_argument(
        "--account-id",
        help="with --identifier, in a source with several accounts (WECHAT, FACEBOOK, MARTJACK): the account"
        " the values are looked up in (sent as accountId)",
    )
    common(customers, CustomerLookupTables.NAMES, "customers")
    customers.add_argument("--batch-size", type=int, help="ids per request (default 100)")
    snapshot_options(customers)
    customers.set_defaults(run=_customers)

    children = add_command("children", help="the child customers of one or more parents", epilog=_ENV_HELP)
    children.add_argument(
        "--parent", required=True, action="append", type=_parent,
        help="TYPE:VALUE (mobile:917799889933, email:..., externalId:...) or a customer id; repeat for several",
    )  # fmt: skip
    common(children, ChildrenTables.NAMES, "children")
    children.add_argument("--association", default="parentCustomer", choices=ASSOCIATIONS)
    children.add_argument("--page-size", type=int, help="children per request (default 100)")
    children.add_argument("--sort-order", default="DESC", choices=SORT_ORDERS)
    snapshot_options(children)
    children.set_defaults(run=_children)

    snapshot = add_command("snapshot", help="inspect and manage a --cache-dir snapshot (docs/snapshots.md)")
    actions = snapshot.add_subparsers(dest="action", required=True, metavar="ACTION")
    info = actions.add_parser("info", help="hosts, sources, units, fetch times, size on disk, damaged files")
    verify = actions.add_parser("verify", help="check every file against the index; exit status 1 if any is damaged")
    prune = actions.add_parser("prune", help="remove units fetched longer ago than --older-than")
    prune.add_argument("--older-than", required=True, type=_duration, help="such as 30d, 12h, 15m or seconds")
    for action, run in ((info, _snapshot_info), (verify, _snapshot_verify), (prune, _snapshot_prune)):
        action.add_argument("dir", metavar="DIR", help="the snapshot folder (a --cache-dir)")
        action.set_defaults(run=run)

    sandbox = add_command("sandbox", help="serve the embedded sandbox over HTTP on loopback")
    sandbox.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks one)")
    sandbox.add_argument("--customers", type=int, default=10_000, help="size of the synthetic organisation")
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sandbox.add_argument("--rpm", type=int, help="enforce this many requests per minute with 429s")
    sandbox.add_argument(
        "--capacity",
        type=int,
        metavar="C",
        help="degrade past C requests in flight: latency grows in proportion, and past 2C the answer is a 503",
    )
    sandbox.add_argument("--faults", help="comma-separated faults for the first requests, e.g. 503,429,truncate")
    sandbox.add_argument("--print-ids", type=int, metavar="N", help="print N customer ids of the organisation and exit")
    sandbox.set_defaults(run=_sandbox)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code: int = args.run(args, out or sys.stdout)
    except CapframeError as exc:
        print(f"capframe: error: {visible(_for_the_command_line(exc))}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # a file that cannot be read or written
        print(f"capframe: error: {visible(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("capframe: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
