"""The command line: the library's features, one command each.

    capframe demo                                  fetch from the embedded sandbox, summarise, write parquet
    capframe customers --ids ids.txt --source INSTORE -o customers.parquet
    capframe children --parent mobile:917799889933 -o children.parquet
    capframe sandbox --port 8080                   serve the emulator on loopback for other tools

Credentials come from CAPILLARY_* variables, or ``--sandbox`` uses the emulator.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

import polars as pl

from capframe import _args
from capframe._children import ASSOCIATIONS, SORT_ORDERS, fetch_children_tables
from capframe._client import Client
from capframe._customers import fetch_customer_tables
from capframe._tables import ChildrenTables, CustomerTables
from capframe.errors import CapframeError, InvalidArgumentError

__all__ = ["main"]

_ENV_HELP = (
    "Credentials: set CAPILLARY_HOST (a cluster alias eu, apac, apac2, us, cn or a base URL) and "
    "CAPILLARY_USERNAME/CAPILLARY_PASSWORD (Basic auth: till code and password) or "
    "CAPILLARY_CLIENT_KEY/CAPILLARY_CLIENT_SECRET (OAuth); or pass --sandbox for the embedded emulator."
)


def _read_ids(source: str, stdin: TextIO) -> list[int]:
    """Ids separated by commas, spaces or new lines; lines starting with # are comments."""
    text = stdin.read() if source == "-" else Path(source).read_text()
    ids: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        for token in re.split(r"[\s,;]+", line.split("#", 1)[0].strip()):
            if not token:
                continue
            if not token.isdigit():
                raise InvalidArgumentError(
                    f"{source}: line {number}: {token[:20]!r} is not a customer id (digits only)"
                )
            ids.append(int(token))
    return ids


def _parent(text: str) -> tuple[str, str] | int:
    if text.isdigit():
        return int(text)
    kind, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: use TYPE:VALUE such as mobile:917799889933, or a customer id")
    return kind, value


def _write(frame: pl.DataFrame, output: str | None, out: TextIO) -> None:
    if output is None:
        with pl.Config(tbl_rows=20, tbl_cols=12):
            print(frame, file=out)
    elif output == "-":
        out.write(frame.write_csv())
    elif output.endswith(".parquet"):
        frame.write_parquet(output)
    elif output.endswith(".csv"):
        frame.write_csv(output)
    elif output.endswith((".ndjson", ".jsonl")):
        frame.write_ndjson(output)
    else:
        raise InvalidArgumentError(f"-o {output}: write to a .parquet, .csv or .ndjson file, or - for CSV on stdout")


def _client(args: argparse.Namespace) -> Client:
    options = {"batch_size": args.batch_size} if getattr(args, "batch_size", None) else {}
    return Client.sandbox(**options) if args.sandbox else Client.from_env(**options)


def _table(tables: CustomerTables | ChildrenTables, name: str) -> pl.DataFrame:
    available = tables.tables()
    if name not in available:
        raise InvalidArgumentError(f"--table {name}: use one of {', '.join(available)}")
    return available[name]


def _customers(args: argparse.Namespace, out: TextIO) -> int:
    ids = _read_ids(args.ids, sys.stdin)
    tables = fetch_customer_tables(
        ids, args.source, client=_client(args), progress=False if args.no_progress else None, cache_dir=args.cache_dir
    )
    _write(_table(tables, args.table), args.output, out)
    print(f"{tables!r}", file=sys.stderr)
    return 0


def _children(args: argparse.Namespace, out: TextIO) -> int:
    tables = fetch_children_tables(
        args.parent if len(args.parent) > 1 else args.parent[0],
        source=args.source,
        client=_client(args),
        association=args.association,
        page_size=args.page_size,
        sort_order=args.sort_order,
        progress=False if args.no_progress else None,
    )
    _write(_table(tables, args.table), args.output, out)
    print(f"{tables!r}", file=sys.stderr)
    return 0


def _sandbox(args: argparse.Namespace, out: TextIO) -> int:
    from capframe.sandbox import Sandbox, serve

    faults = [kind for kind in args.faults.split(",") if kind] if args.faults else None
    org = Sandbox(args.customers, seed=args.seed, latency=args.latency, faults=faults, requests_per_minute=args.rpm)
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
    client = Client.sandbox(args.customers, requests_per_minute=None)
    assert client.sandbox_org is not None
    org = client.sandbox_org
    ids = org.customer_ids(args.ids)
    ids += [*org.unknown_ids(3), *[i for i in org.pii_deleted_ids() if i not in set(ids)][:2]]
    started = time.perf_counter()
    tables = fetch_customer_tables(ids, "INSTORE", client=client, progress=False if args.no_progress else None)
    seconds = time.perf_counter() - started
    customers = tables.customers
    print(f"Fetched {len(ids):,} ids from the embedded sandbox in {seconds:.2f} s: {tables!r}\n", file=out)
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_rows=12):
        print("Outcome by error code (8109 PII-deleted, 8015 unknown, 8065 not in this source):", file=out)
        print(customers.group_by("success", "error_code").len().sort("len", descending=True), file=out)
        # Over the returned customers only: the API sends loyalty data with some failed ids too.
        returned = tables.returned().customers
        print("\nLifetime purchases of returned customers, by loyalty type:", file=out)
        print(
            returned.group_by("loyalty_type")
            .agg(
                pl.len().alias("customers"),
                pl.col("lifetime_purchases").sum().round().cast(pl.Int64).alias("lifetime_purchases"),
            )
            .sort("loyalty_type"),
            file=out,
        )
        print("\nIdentifier coverage (share of returned customers with one):", file=out)
        print(
            returned.select(pl.col("mobile", "email", "external_id").is_not_null().mean().round(3)),
            file=out,
        )
    customers.write_parquet(args.output)
    print(f"\nWrote {customers.height:,} rows to {args.output}", file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capframe",
        description="Capillary CRM customers as tidy, validated tables (polars), from a cluster or the embedded sandbox.",
        epilog=_ENV_HELP,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="fetch customers from the embedded sandbox, print a summary, write parquet")
    demo.add_argument("--ids", type=int, default=3000, help="how many sandbox customers to fetch (default 3000)")
    demo.add_argument("--customers", type=int, default=10_000, help="size of the synthetic organisation")
    demo.add_argument(
        "-o", "--output", default="customers.parquet", help="parquet file to write (default customers.parquet)"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)

    def common(command: argparse.ArgumentParser, tables: Iterable[str], main: str) -> None:
        command.add_argument(
            "--source", default="INSTORE", help=f"source (default INSTORE; one of {', '.join(sorted(_args.SOURCES))})"
        )
        command.add_argument("--sandbox", action="store_true", help="use the embedded sandbox instead of CAPILLARY_*")
        command.add_argument(
            "--table", default=main, help=f"which table to write: {', '.join(tables)} (default {main})"
        )
        command.add_argument(
            "-o", "--output", help="a .parquet, .csv or .ndjson file, or - for CSV on stdout (default: print)"
        )
        command.add_argument("--no-progress", action="store_true", help="no progress bar")

    customers = commands.add_parser("customers", help="Get Customers Bulk for a list of ids", epilog=_ENV_HELP)
    customers.add_argument(
        "--ids", required=True, help="file of customer ids (commas, spaces or lines), or - for stdin"
    )
    common(customers, CustomerTables.NAMES, "customers")
    customers.add_argument("--batch-size", type=int, help="ids per request (default 100)")
    customers.add_argument("--cache-dir", help="keep finished batches here; a rerun fetches only what is missing")
    customers.set_defaults(run=_customers)

    children = commands.add_parser("children", help="the child customers of one or more parents", epilog=_ENV_HELP)
    children.add_argument(
        "--parent", required=True, action="append", type=_parent,
        help="TYPE:VALUE (mobile:917799889933, email:..., externalId:...) or a customer id; repeat for several",
    )  # fmt: skip
    common(children, ChildrenTables.NAMES, "children")
    children.add_argument("--association", default="parentCustomer", choices=ASSOCIATIONS)
    children.add_argument("--page-size", type=int, help="children per request (default 100)")
    children.add_argument("--sort-order", default="DESC", choices=SORT_ORDERS)
    children.set_defaults(run=_children)

    sandbox = commands.add_parser("sandbox", help="serve the embedded sandbox over HTTP on loopback")
    sandbox.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080; 0 picks one)")
    sandbox.add_argument("--customers", type=int, default=10_000, help="size of the synthetic organisation")
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sandbox.add_argument("--rpm", type=int, help="enforce this many requests per minute with 429s")
    sandbox.add_argument("--faults", help="comma-separated faults for the first requests, e.g. 503,429,truncate")
    sandbox.add_argument("--print-ids", type=int, metavar="N", help="print N customer ids of the organisation and exit")
    sandbox.set_defaults(run=_sandbox)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args, out or sys.stdout)
    except CapframeError as exc:
        print(f"capframe: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # a file that cannot be read or written
        print(f"capframe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("capframe: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
